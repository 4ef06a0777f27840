"""Near-identity search speed at growing database sizes, against a numpy brute force.

    python -m benchmarks.bench_identity                       # 250k, 500k, 1M profiles
    python -m benchmarks.bench_identity --sizes 100000 200000

Each database holds unrelated profiles plus 1% near-copies (one dropout, a third with an extra
mismatch). The numpy brute force compares every pair of a subset; its time is scaled
quadratically to each size for the ratio (it cannot run at full size).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks._synthetic import peak_memory_mb, str_panel_table
from dnatrack.genotypes import AlleleCoding, GenotypeTable
from matching.identity import IdentityCriteria, identity_search


def with_near_copies(table: GenotypeTable, fraction: float = 0.01, seed: int = 4):
    rng = np.random.default_rng(seed)
    k = int(len(table) * fraction)
    source = rng.integers(0, len(table), size=k)
    copies = table.alleles[source].copy()
    loci = rng.integers(0, table.n_loci, size=(k, 2))
    rows = np.arange(k)
    copies[rows, loci[:, 0], 1] = copies[rows, loci[:, 0], 0]  # dropout
    third = rows[rows % 3 == 0]
    copies[third, loci[third, 1]] = table.alleles[rng.integers(0, len(table), len(third)),
                                                  loci[third, 1]]
    ids = np.char.add("copy", np.arange(k).astype(str)).astype(object)
    return GenotypeTable.concat([table, GenotypeTable(copies, ids, table.loci)])


def numpy_brute_force(table: GenotypeTable, criteria: IdentityCriteria) -> int:
    """Pairs matching ``criteria``, comparing every pair with numpy broadcasting."""
    codes = AlleleCoding.from_tables(table).encode(table).astype(np.int32)
    n = len(codes)
    found = 0
    for start in range(0, n, 500):
        a = codes[start : start + 500][:, None]
        b = codes[None, :]
        typed = (a[..., 0] >= 0) & (b[..., 0] >= 0)
        same = (a[..., 0] == b[..., 0]) & (a[..., 1] == b[..., 1])
        hom_a = a[..., 0] == a[..., 1]
        hom_b = b[..., 0] == b[..., 1]
        drop = ~same & ((hom_a & ((b[..., 0] == a[..., 0]) | (b[..., 1] == a[..., 0])))
                        | (hom_b & ((a[..., 0] == b[..., 0]) | (a[..., 1] == b[..., 0]))))
        mismatch = (typed & ~same & ~drop).sum(axis=2)
        ok = (typed.sum(axis=2) >= criteria.min_loci) & (
            mismatch <= criteria.mismatches_allowed)
        rows = np.arange(start, min(start + 500, n))[:, None]
        found += int((ok & (np.arange(n)[None, :] > rows)).sum())
    return found


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    parser.add_argument("--max-mismatches", type=int, default=2)
    parser.add_argument("--numpy-subset", type=int, default=4_000)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    criteria = IdentityCriteria("moderate", max_mismatches=args.max_mismatches, min_loci=8)

    warm = with_near_copies(str_panel_table(2_000))
    identity_search(warm, criteria)  # compile outside the timing
    subset = with_near_copies(str_panel_table(args.numpy_subset))
    start = time.perf_counter()
    numpy_pairs = numpy_brute_force(subset, criteria)
    numpy_seconds = time.perf_counter() - start
    block_pairs = len(identity_search(subset, criteria))

    result = {"criteria": criteria.as_dict(), "numpy_subset_profiles": len(subset),
              "numpy_subset_seconds": round(numpy_seconds, 2),
              "numpy_subset_pairs": numpy_pairs, "block_search_subset_pairs": block_pairs,
              "sizes": []}
    for size in args.sizes:
        table = with_near_copies(str_panel_table(size))
        start = time.perf_counter()
        hits = identity_search(table, criteria)
        seconds = time.perf_counter() - start
        numpy_estimate = numpy_seconds * (len(table) / len(subset)) ** 2
        result["sizes"].append({
            "profiles": len(table), "seconds": round(seconds, 2), "pairs": len(hits),
            "numpy_brute_force_seconds_estimated": round(numpy_estimate),
            "speedup_over_numpy": round(numpy_estimate / seconds),
        })
        print(json.dumps(result["sizes"][-1]), flush=True)
    result["peak_memory_mb"] = round(peak_memory_mb())
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
