"""How often barcode reads are called, by length, over windows all along each reference.

    python -m benchmarks.species_windows               # every 10th window: about a minute
    python -m benchmarks.species_windows --step 25     # a quick look

Reads are cut from the bundled cytb references at every ``step``-th position, with 1-2% of
their bases substituted (seeded), half of them reverse-complemented; 150-bp reads are also
tried exact. Prints, per read length and species (the rhinos, hippopotamus and bovids pooled
as "others"), how many were identified, ambiguous, no match, or called as a wrong species, and
for 150-bp reads the same by the read's differences from its best reference. Then each
elephant is left out of the set and its 150- and 400-bp reads identified against the rest,
any call counted as a wrong species (none should be). The figures in
``reference_data/barcodes/README.md`` come from the default run.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict

import numpy as np
from Bio.Seq import reverse_complement

from benchmarks.bench_species import substituted
from matching.species import BarcodeSet, SpeciesIdentifier, default_barcode_set, make_query

ELEPHANTS = ("Loxodonta africana", "Mammuthus primigenius", "Elephas maximus")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)

    barcodes = default_barcode_set()
    identifier = SpeciesIdentifier(barcodes)
    rng = np.random.default_rng(args.seed)
    verdicts: dict[str, Counter] = defaultdict(Counter)
    by_differences: dict[str, Counter] = defaultdict(Counter)
    for length in (150, 400, 1000):
        for reference in barcodes.references_for("cytb"):
            group = reference.species if reference.species in ELEPHANTS else "others"
            for start in range(0, len(reference.sequence) - length + 1, args.step):
                window = reference.sequence[start : start + length]
                kinds = {"1-2%": substituted(window, rng.uniform(0.01, 0.02), rng)}
                if length == 150:
                    kinds["exact"] = window
                for kind, read in kinds.items():
                    result = identifier.identify(make_query(
                        "read", reverse_complement(read) if start % 2 else read))
                    wrong = result.call not in ("", barcodes.label(reference.species))
                    verdict = "wrong species" if wrong else result.verdict
                    verdicts[f"{length} bp {kind}, {group}"][verdict] += 1
                    if length == 150 and kind == "1-2%":
                        differences = result.best.aligned_length - result.best.identical
                        by_differences[f"{group}, {differences} differences"][verdict] += 1
    held_out: dict[str, Counter] = defaultdict(Counter)
    for species in ELEPHANTS:
        kept = BarcodeSet(f"without {species}", tuple(
            r for r in barcodes.references if r.species != species), barcodes.groups)
        without = SpeciesIdentifier(kept)
        (source,) = (r for r in barcodes.references_for("cytb") if r.species == species)
        for length in (150, 400):
            for start in range(0, len(source.sequence) - length + 1, args.step):
                read = substituted(source.sequence[start : start + length],
                                   rng.uniform(0.01, 0.02), rng)
                result = without.identify(make_query(
                    "read", reverse_complement(read) if start % 2 else read))
                verdict = "wrong species" if result.call else result.verdict
                held_out[f"{length} bp 1-2%, {species} left out"][verdict] += 1
    report = {
        "step": args.step,
        "reference_set_hash": barcodes.content_hash,
        "parameters": identifier.parameters.as_dict(),
        "verdicts": {key: dict(counts) for key, counts in verdicts.items()},
        "150 bp 1-2% by differences": {key: dict(counts)
                                       for key, counts in sorted(by_differences.items())},
        "held out": {key: dict(counts) for key, counts in held_out.items()},
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
