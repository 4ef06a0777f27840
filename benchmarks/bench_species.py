"""Species identification speed: barcode reads against the bundled reference set.

    python -m benchmarks.bench_species                      # 1,000 reads of 400 bp, all cores
    python -m benchmarks.bench_species --queries 200 --length 150 --workers 1

Reads are cut from the bundled cytb references at random places, with 1-2% random
substitutions, half of them reverse-complemented (seeded). ``dnatrack``'s identifier (seeded
windows, score-only alignment, identities for the competing references only) runs on all of them.
The naive approach, a full Biopython alignment of every read, both strands, against every whole
reference, runs on a subset in the same process; its time is scaled to the full batch, and its
calls (the most identical species over the aligned columns, among references covering enough of
the read) are compared with ours.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from Bio.Seq import reverse_complement

from benchmarks._synthetic import peak_memory_mb
from matching.species import (
    BarcodeQuery,
    IdentificationParameters,
    SpeciesIdentifier,
    available_cores,
    default_barcode_set,
    make_query,
)


def substituted(sequence: str, rate: float, rng: np.random.Generator) -> str:
    """``sequence`` with ``round(rate * len)`` bases changed to another base."""
    bases = np.frombuffer(sequence.encode(), dtype=np.uint8).copy()
    positions = rng.choice(len(bases), size=round(rate * len(bases)), replace=False)
    alphabet = np.frombuffer(b"ACGT", dtype=np.uint8)
    for position in positions:
        choices = alphabet[alphabet != bases[position]]
        bases[position] = choices[rng.integers(len(choices))]
    return bases.tobytes().decode()


def simulated_reads(n: int, length: int, marker: str = "cytb",
                    seed: int = 7) -> tuple[list[BarcodeQuery], list[str]]:
    """``n`` reads of ``length`` bp from the bundled references, with their true species."""
    rng = np.random.default_rng(seed)
    references = default_barcode_set().references_for(marker)
    reads, truth = [], []
    for number in range(n):
        reference = references[rng.integers(len(references))]
        start = int(rng.integers(0, len(reference.sequence) - length + 1))
        read = substituted(reference.sequence[start : start + length], rng.uniform(0.01, 0.02),
                           rng)
        if rng.random() < 0.5:
            read = reverse_complement(read)
        reads.append(make_query(f"read{number}", read))
        truth.append(reference.species)
    return reads, truth


def naive_call(query: BarcodeQuery, aligner, references,
               min_query_coverage: float) -> tuple[str, float]:
    """Best species and its identity, from full alignments to every reference, both strands.

    Each reference's better-scoring strand; of the references, the most identical of those
    whose alignment spans ``min_query_coverage`` percent of the query, ties to the higher score.
    """
    ranked = []
    for reference in references:
        alignment = max((aligner.align(reference.sequence, sequence)[0]
                         for sequence in (query.sequence, reverse_complement(query.sequence))),
                        key=lambda a: a.score)
        counts = alignment.counts()
        columns = counts.identities + counts.mismatches + counts.gaps
        covered = alignment.aligned[1][-1, 1] - alignment.aligned[1][0, 0]
        ranked.append((100.0 * covered / len(query.sequence) >= min_query_coverage,
                       100.0 * counts.identities / columns, alignment.score,
                       reference.species))
    _, identity, _, species = max(ranked)
    return species, identity


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--length", type=int, default=400)
    parser.add_argument("--marker", default="cytb")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: all cores)")
    parser.add_argument("--naive-subset", type=int, default=40)
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    barcodes = default_barcode_set()
    parameters = IdentificationParameters(marker=args.marker)
    identifier = SpeciesIdentifier(barcodes, parameters)
    reads, truth = simulated_reads(args.queries, args.length, args.marker)
    workers = args.workers or available_cores()

    start = time.perf_counter()
    results = identifier.identify_many(reads, workers=workers)
    seconds = time.perf_counter() - start
    correct = sum(r.verdict == "identified" and r.call == barcodes.label(t)
                  for r, t in zip(results, truth, strict=True))
    wrong = sum(r.verdict == "identified" and r.call != barcodes.label(t)
                for r, t in zip(results, truth, strict=True))

    subset = min(args.naive_subset, len(reads))
    start = time.perf_counter()
    serial = [identifier.identify(q) for q in reads[:subset]]
    serial_seconds = time.perf_counter() - start
    aligner = parameters.aligner()
    references = barcodes.references_for(args.marker)
    start = time.perf_counter()
    naive = [naive_call(q, aligner, references, parameters.min_query_coverage)
             for q in reads[:subset]]
    naive_seconds = time.perf_counter() - start
    same_species = sum(n[0] == r.best.species for n, r in zip(naive, serial, strict=True))
    identity_gap = max(abs(n[1] - r.best.identity) for n, r in zip(naive, serial, strict=True))

    result = {
        "queries": len(reads),
        "length_bp": args.length,
        "references": len(references),
        "reference_set_hash": barcodes.content_hash,
        "parameters": parameters.as_dict(),
        "workers": workers,
        "seconds": round(seconds, 2),
        "queries_per_second": round(len(reads) / seconds, 1),
        "identified_correctly": correct,
        "identified_wrongly": wrong,
        "ambiguous": sum(r.verdict == "ambiguous" for r in results),
        "serial_ms_per_query": round(1e3 * serial_seconds / subset, 2),
        "naive_subset": subset,
        "naive_ms_per_query": round(1e3 * naive_seconds / subset, 2),
        "naive_seconds_for_all_serial": round(naive_seconds / subset * len(reads), 1),
        "speedup_over_naive_serial": round(naive_seconds / serial_seconds, 1),
        "naive_same_best_species": f"{same_species}/{subset}",
        "naive_max_identity_difference": round(identity_gap, 3),
        "peak_memory_mb": round(peak_memory_mb()),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
