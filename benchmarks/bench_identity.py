"""Near-identity search speed at growing database sizes, against a numpy brute force.

    python -m benchmarks.bench_identity                       # 250k, 500k, 1M profiles
    python -m benchmarks.bench_identity --sizes 100000 200000 --new 500
    python -m benchmarks.bench_identity --sizes --new 0         # the Chinook case only

First, rubias-style close matching of the Chinook baseline (7,301 fish × 91 SNPs, all 26.6 M
pairs, ``min_frac_matching = 0.9``; rubias reports 881 pairs): time of the search on the table
already read, and the process's peak memory right after it (before any larger case runs).

Each database holds unrelated 16-STR profiles plus 1% near-copies (one dropout, a third with an
extra mismatch); every profile, copy or not, then loses each locus independently with
probability 3%. The numpy brute force compares every pair of a subset: its pairs are checked
against the block search's, and its time is scaled quadratically to each size for the ratio (it
cannot run at full size). The incremental search adds ``--new`` profiles (half of them
near-copies of existing ones) to the largest database and searches new-vs-all.

Time is sorting (N log N) plus verifying candidates. At a fixed number of blocks the random
candidates (unrelated pairs sharing a key) grow as N², so growth per doubling sits between 2
and 4: ``--blocks 3`` trades the guarantee (5 instead of 7 loci not identical) for
near-linear growth.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks._synthetic import peak_memory_mb, str_panel_table
from dnatrack.formats import read_genotypes
from dnatrack.genotypes import AlleleCoding, GenotypeTable
from matching.identity import IdentityCriteria, close_matching_samples, identity_search

MISSING_PER_LOCUS = 0.03
DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RUBIAS_CHINOOK_PAIRS_AT_0_9 = 881


def chinook_close_matching(datasets: Path) -> dict | None:
    """Close matching of the Chinook baseline at 0.9 (None when the data set is absent)."""
    path = datasets / "chinook_baseline_rubias.csv"
    if not path.is_file():
        return None
    table = read_genotypes(path)
    close_matching_samples(table.take(np.arange(200)), 0.9)  # compile outside the timing
    start, cpu_start = time.perf_counter(), time.process_time()
    found = close_matching_samples(table, 0.9)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"profiles": len(table), "loci": table.n_loci,
            "pairs_compared": len(table) * (len(table) - 1) // 2,
            "seconds": round(seconds, 2), "cpu_seconds_all_threads": round(cpu_seconds, 2),
            "pairs": len(found),
            "rubias_pairs": RUBIAS_CHINOOK_PAIRS_AT_0_9,
            "same_count_as_rubias": len(found) == RUBIAS_CHINOOK_PAIRS_AT_0_9,
            "peak_memory_mb_so_far": round(peak_memory_mb())}


def with_near_copies(table: GenotypeTable, fraction: float = 0.01, seed: int = 4,
                     prefix: str = "copy") -> GenotypeTable:
    """``table`` plus near-copies of ``fraction`` of its profiles, then independent missing
    loci in every profile (``table`` should have none of its own)."""
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
    alleles = np.concatenate([table.alleles, copies])
    alleles[rng.random(alleles.shape[:2]) < MISSING_PER_LOCUS] = -1
    ids = np.concatenate([table.profile_ids,
                          np.char.add(prefix, np.arange(k).astype(str)).astype(object)])
    return GenotypeTable(alleles, ids, table.loci)


def database(n: int, seed: int = 1) -> GenotypeTable:
    return with_near_copies(str_panel_table(n, missing=0.0, seed=seed))


def numpy_brute_force(table: GenotypeTable, criteria: IdentityCriteria):
    """Pairs matching ``criteria`` (dropouts unlimited), comparing every pair with numpy
    broadcasting; returns the pairs (n, 2) and their loci that are not identical."""
    codes = AlleleCoding.from_tables(table).encode(table).astype(np.int32)
    codes.sort(axis=2)
    n = len(codes)
    pairs, bad = [], []
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
        ok &= np.arange(n)[None, :] > rows
        i, j = np.nonzero(ok)
        pairs.append(np.c_[i + start, j])
        bad.append(codes.shape[1] - (typed & same)[i, j].sum(axis=1))
    return np.concatenate(pairs), np.concatenate(bad)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[250_000, 500_000, 1_000_000])
    parser.add_argument("--new", type=int, default=1_000,
                        help="new profiles searched against the largest database")
    parser.add_argument("--max-mismatches", type=int, default=2)
    parser.add_argument("--numpy-subset", type=int, default=4_000)
    parser.add_argument(
        "--blocks", type=int, default=None,
        help="fix the number of locus blocks (default: chosen from the data). Fewer blocks "
        "make stronger keys, so random candidates stay fewer and time grows closer to "
        "linearly, at a lower guarantee (every pair with up to 2B-1 loci not identical)")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS,
                        help="folder of the shared data sets (for the Chinook case)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    chinook = chinook_close_matching(args.datasets)
    print(json.dumps({"chinook_close_matching": chinook}), flush=True)
    criteria = IdentityCriteria("moderate", max_mismatches=args.max_mismatches, min_loci=8,
                                n_blocks=args.blocks)

    warm = database(2_000)
    identity_search(warm, criteria)  # compile outside the timing
    identity_search(warm, criteria, new=np.arange(len(warm)) < 10)
    subset = database(args.numpy_subset)
    start = time.perf_counter()
    numpy_pairs, numpy_bad = numpy_brute_force(subset, criteria)
    numpy_seconds = time.perf_counter() - start
    block = identity_search(subset, criteria)
    agree = np.array_equal(np.c_[block.query_index, block.target_index], numpy_pairs)
    result = {
        "chinook_close_matching": chinook,
        "criteria": criteria.as_dict(),
        "numpy_subset": {
            "profiles": len(subset), "seconds": round(numpy_seconds, 2),
            "numpy_pairs": len(numpy_pairs), "block_search_pairs": len(block),
            "same_pairs": bool(agree),
            "most_loci_not_identical_in_a_pair": int(numpy_bad.max(initial=0)),
            "n_blocks": block.n_blocks, "guaranteed_bad_loci": block.guaranteed_bad_loci,
        },
        "sizes": [],
    }
    print(json.dumps(result["numpy_subset"]), flush=True)
    for size in args.sizes:
        table = database(size)
        start = time.perf_counter()
        hits = identity_search(table, criteria)
        seconds = time.perf_counter() - start
        numpy_estimate = numpy_seconds * (len(table) / len(subset)) ** 2
        result["sizes"].append({
            "profiles": len(table), "seconds": round(seconds, 2), "pairs": len(hits),
            "n_blocks": hits.n_blocks, "guaranteed_bad_loci": hits.guaranteed_bad_loci,
            "numpy_brute_force_seconds_estimated": round(numpy_estimate),
            "speedup_over_numpy": round(numpy_estimate / seconds),
        })
        print(json.dumps(result["sizes"][-1]), flush=True)

    if args.new and args.sizes:
        # New profiles: half near-copies of profiles already in the largest database.
        fresh = str_panel_table(args.new - args.new // 2, missing=0.0, seed=99, prefix="N")
        copied = table.alleles[np.random.default_rng(5).integers(0, len(table), args.new // 2)]
        copied[:, 0, 1] = copied[:, 0, 0]  # a dropout (or still missing) at the first STR
        arrivals = GenotypeTable(np.concatenate([fresh.alleles, copied]),
                                 [f"new{k}" for k in range(args.new)], table.loci)
        combined = GenotypeTable.concat([table, arrivals])
        is_new = np.arange(len(combined)) >= len(table)
        start = time.perf_counter()
        hits = identity_search(combined, criteria, new=is_new)
        seconds = time.perf_counter() - start
        result["incremental"] = {"new": args.new, "existing": len(table),
                                 "seconds": round(seconds, 2), "pairs": len(hits)}
        print(json.dumps(result["incremental"]), flush=True)
    result["peak_memory_mb"] = round(peak_memory_mb())
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
