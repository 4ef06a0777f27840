"""`dnatrack simulate`: seizures with known truth from a reference set (DESIGN 5.7)."""

from __future__ import annotations

import argparse
import math

from dnatrack.reference import load_reference_set
from dnatrack.simulate import (
    DEFAULT_ITEMS_PER_SEIZURE,
    DEFAULT_N_SEIZURES,
    SIMULATION_STAGES,
    ScenarioSpec,
    check_scenario_target,
    simulate,
    write_scenario,
)

# Below this many items a scenario is simulated and written in a few seconds; no progress bar.
PROGRESS_MIN_ITEMS = 100_000

_DEFAULTS = ScenarioSpec()


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate seizures with known truth from a reference set",
        description=(
            "Simulate seizures of items drawn from source populations of a reference set, "
            "with related items (same animal, parent-offspring, siblings) and genotyping "
            "errors; write the observed genotypes and the truth (items.csv, animals.csv, "
            "relationships.csv, errors.csv, seizures.csv, truth.json under truth/)."
        ),
    )
    parser.add_argument(
        "--reference",
        required=True,
        metavar="NAME_OR_PATH",
        help="bundled reference set name, reference-set folder, or genotype file with populations",
    )
    parser.add_argument("--out", required=True, metavar="FOLDER", help="output folder")
    parser.add_argument("--seed", type=int, help="random seed (default: a fresh one, reported)")
    parser.add_argument(
        "--seizures",
        type=int,
        default=DEFAULT_N_SEIZURES,
        metavar="N",
        help=f"number of seizures (default {DEFAULT_N_SEIZURES})",
    )
    parser.add_argument(
        "--items-per-seizure",
        "--animals-per-seizure",
        dest="items_per_seizure",
        type=int,
        default=DEFAULT_ITEMS_PER_SEIZURE,
        metavar="N",
        help=f"items per seizure, related ones included (default {DEFAULT_ITEMS_PER_SEIZURE})",
    )
    parser.add_argument(
        "--sources",
        metavar="POP[:WEIGHT],...",
        help="source populations of every seizure, with optional weights (default: one "
        "population per seizure, chosen at random)",
    )
    for option, relationship, what in (
        (
            "--tusk-pairs",
            "same_animal",
            "pairs of items of one animal (tusk pairs, horn and carcass)",
        ),
        ("--parent-offspring", "parent_offspring", "parent-offspring pairs"),
        ("--full-siblings", "full_sibling", "full-sibling pairs"),
        ("--half-siblings", "half_sibling", "half-sibling pairs"),
    ):
        default = _DEFAULTS.pair_counts[relationship]
        parser.add_argument(
            option,
            dest=f"{relationship}_pairs",
            type=int,
            default=default,
            metavar="N",
            help=f"number of {what} (default {default})",
        )
    parser.add_argument(
        "--same-seizure",
        action="store_true",
        help="put both items of each related pair in one seizure instead of two",
    )
    for name, what in (
        ("missing", "untyped loci"),
        ("dropout", "allelic dropout at heterozygous loci"),
        ("miscall", "miscalled alleles"),
    ):
        default = getattr(_DEFAULTS, f"{name}_rate")
        parser.add_argument(
            f"--{name}-rate",
            dest=f"{name}_rate",
            type=float,
            default=default,
            metavar="R",
            help=f"rate of {what} per item and locus (default {default})",
        )
    parser.add_argument(
        "--format",
        default="wide",
        metavar="FMT",
        help="format of the genotype files (default wide)",
    )
    parser.set_defaults(func=run)


def parse_sources(text: str) -> dict[str, float]:
    """``"A,B"`` or ``"A:0.7,B:0.3"`` → population → weight (1 where no weight is given)."""
    sources: dict[str, float] = {}
    for entry in text.split(","):
        entry = entry.strip()
        name, colon, weight_text = entry.rpartition(":")
        if not colon:
            name, weight = entry, 1.0
        else:
            try:
                weight = float(weight_text)
            except ValueError:
                raise ValueError(
                    f"--sources: weight {weight_text!r} of {name!r} is not a number"
                ) from None
            if not math.isfinite(weight):
                raise ValueError(f"--sources: weight of {name!r} must be finite")
        name = name.strip()
        if not name:
            raise ValueError(f"--sources: empty population name in {text!r}")
        if name in sources:
            raise ValueError(f"--sources: population {name!r} is listed twice")
        sources[name] = weight
    return sources


def run(args: argparse.Namespace) -> int:
    spec = ScenarioSpec(
        n_seizures=args.seizures,
        items_per_seizure=args.items_per_seizure,
        sources=None if args.sources is None else parse_sources(args.sources),
        same_animal_pairs=args.same_animal_pairs,
        parent_offspring_pairs=args.parent_offspring_pairs,
        full_sibling_pairs=args.full_sibling_pairs,
        half_sibling_pairs=args.half_sibling_pairs,
        pairs_across_seizures=not args.same_seizure,
        missing_rate=args.missing_rate,
        dropout_rate=args.dropout_rate,
        miscall_rate=args.miscall_rate,
    )
    from tqdm import tqdm

    check_scenario_target(args.out, args.format)
    reference = load_reference_set(args.reference)
    n_items = args.seizures * args.items_per_seizure
    with tqdm(
        total=len(SIMULATION_STAGES) + 1,
        desc="simulate",
        unit="stage",
        # None lets tqdm show the bar only on a terminal.
        disable=True if n_items < PROGRESS_MIN_ITEMS else None,
    ) as bar:

        def advance(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update()

        scenario = simulate(reference, spec, seed=args.seed, progress=advance)
        bar.set_postfix_str("writing")
        files = write_scenario(scenario, args.out, format=args.format)
        bar.update()

    relationships = scenario.relationship_counts()
    errors = scenario.error_counts()
    print(
        f"simulated {scenario.observed.n_profiles} items of {scenario.animals.n_profiles} "
        f"animals in {len(scenario.seizures)} seizures from {reference.name} "
        f"v{reference.version}, seed {scenario.seed}"
    )
    print("related pairs: " + ", ".join(f"{n} {name}" for name, n in relationships.items()))
    print("genotyping errors: " + ", ".join(f"{n} {kind}" for kind, n in errors.items()))
    print(f"wrote {files['genotypes']} and the truth in {files['summary'].parent}")
    return 0
