"""Kinship search speed: all pairs and new-vs-existing, against a vectorised numpy twin.

    python -m benchmarks.bench_kinship                  # 100,000 profiles × 16 STRs
    python -m benchmarks.bench_kinship --profiles 20000 --existing 200000

Prints pairs per second for the numba search and for the numpy implementation of the same
computation (on a subset it can hold in memory), their ratio, the exactness check on that
subset, and peak memory.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks._synthetic import peak_memory_mb, str_panel_table
from matching.kinship import KinshipSearch
from matching.relationships import ErrorModel


def numpy_all_pairs(search: KinshipSearch, codes: np.ndarray) -> np.ndarray:
    """Summed log10 LRs of every pair of ``codes`` (upper triangle), vectorised numpy."""
    tables = search.tables
    total = np.zeros((len(codes), len(codes), len(search.relationships)))
    for locus in range(codes.shape[1]):
        block = tables.locus_table(locus)
        total += block[codes[:, locus][:, None], codes[:, locus][None, :]]
    return total


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--existing", type=int, default=0,
                        help="also time new-vs-existing: 1,000 new against this many")
    parser.add_argument("--numpy-subset", type=int, default=3_000)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    table = str_panel_table(args.profiles)
    search = KinshipSearch.from_reference(table, theta=0.047, errors=ErrorModel())
    search.all_pairs(table.take(np.arange(200)))  # compile outside the timing

    subset = table.take(np.arange(min(args.numpy_subset, len(table))))
    n_sub = len(subset)
    start = time.perf_counter()
    total = numpy_all_pairs(search, search.codes(subset))
    numpy_seconds = time.perf_counter() - start
    numba_sub = search.all_pairs(subset)
    upper = np.triu(np.ones((n_sub, n_sub), dtype=bool), k=1)
    keep = (total >= search.cutoff_array).any(axis=2) & upper
    pairs = np.argwhere(keep)
    exact = np.array_equal(np.c_[numba_sub.query_index, numba_sub.target_index], pairs) and (
        np.array_equal(numba_sub.log10_lr, total[keep])
    )
    numpy_rate = n_sub * (n_sub - 1) / 2 / numpy_seconds

    n = len(table)
    start = time.perf_counter()
    hits = search.all_pairs(table)
    seconds = time.perf_counter() - start
    rate = n * (n - 1) / 2 / seconds
    result = {
        "profiles": n,
        "loci": table.n_loci,
        "relationships": list(search.relationships),
        "all_pairs_seconds": round(seconds, 2),
        "pairs_per_second": round(rate),
        "pairs_reported": len(hits),
        "numpy_pairs_per_second": round(numpy_rate),
        "numpy_subset_profiles": n_sub,
        "speedup_over_numpy": round(rate / numpy_rate, 1),
        "numba_equals_numpy_on_subset": bool(exact),
    }
    if args.existing:
        existing = str_panel_table(args.existing, seed=2, prefix="E")
        new = str_panel_table(1_000, seed=3, prefix="N")
        search_new = KinshipSearch.from_reference(existing, new, theta=0.047)
        search_new.new_vs_existing(new.take(np.arange(10)), existing.take(np.arange(100)))
        start = time.perf_counter()
        found = search_new.new_vs_existing(new, existing)
        result["new_vs_existing"] = {
            "new": len(new), "existing": len(existing),
            "seconds": round(time.perf_counter() - start, 2), "pairs_reported": len(found),
        }
    result["peak_memory_mb"] = round(peak_memory_mb())
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
