"""``dnatrack match`` (identity and kinship search) and ``dnatrack calibrate`` (cutoffs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dnatrack.cli._common import (
    add_format_option,
    parse_assignments,
    progress_bar,
    read_table,
    write_json,
    write_rows,
)
from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import ReferenceSet, load_reference_set

PAIR_COLUMNS = [
    "sample1", "seizure1", "sample2", "seizure2", "relationship", "log10_lr", "loci_compared",
    "evidence", "rmp", "identity", "loci_identical", "loci_dropout", "loci_mismatch",
]


def register(subparsers) -> None:
    from matching.calibration import DEFAULT_SIMULATIONS
    from matching.identity import STRINGENCIES
    from matching.relationships import RELATIONSHIPS

    match = subparsers.add_parser(
        "match",
        help="find the same animal and relatives across seizures",
        description=(
            "Search genotypes for pairs that are the same animal (identity search) or related "
            "(kinship likelihood ratios against the reference frequencies), and link their "
            "seizures."
        ),
    )
    match.add_argument("genotypes", help="genotype file (any readable format)")
    match.add_argument("--against", metavar="EXISTING",
                       help="search the genotypes against these existing profiles only "
                            "(new-vs-existing, plus pairs among the new ones)")
    match.add_argument("--reference", action="append", metavar="REF",
                       help="bundled reference set name, reference folder, or genotype file "
                            "with populations; its allele frequencies are used (required but "
                            "for close matching; repeatable: each profile is weighed with the "
                            "set it is assigned to, as in 'dnatrack analyze')")
    match.add_argument("--out", required=True, metavar="PAIRS.csv", help="pairs CSV to write")
    match.add_argument("--links", metavar="LINKS", help="seizure links as .json or .csv "
                       "(default: PAIRS.links.json)")
    match.add_argument("--groups", metavar="CSV",
                       help="CSV with columns sample,seizure (default: the file's group, "
                            "population or collection column)")
    add_format_option(match)
    match.add_argument("--theta", help="co-ancestry θ (F_ST), a number or a species name "
                       "(default: the reference species' published value, else estimated "
                       "from it)")
    _add_scoring_options(match)
    match.add_argument("--dropout-rate", type=float, default=None,
                       help="allelic dropout rate per heterozygous locus (default 0.01)")
    match.add_argument("--miscall-rate", type=float, default=None,
                       help="genotype miscall rate per locus (default 0.001)")
    match.add_argument("--relationships", default=",".join(RELATIONSHIPS),
                       help="comma-separated relationships to test (default: all four)")
    match.add_argument("--cutoff", action="append", metavar="REL=LOG10LR",
                       help="log10 LR cutoff for a relationship (repeatable)")
    match.add_argument("--calibration", metavar="FILE",
                       help="calibration.json from 'dnatrack calibrate' (default: the "
                            "reference folder's, when it matches; else cutoffs calibrated "
                            "now for this search's number of pairs)")
    match.add_argument("--calibration-cache", metavar="DIR", default=None,
                       help="keep the calibrations made for searches in DIR and reuse them "
                            "for the same reference, loci, parameters and profiles' mix "
                            "(default $DNATRACK_CALIBRATION_CACHE, else "
                            "~/.cache/dnatrack/calibrations; 'none': no cache)")
    match.add_argument("--min-loci", type=int, default=8, help="minimum loci compared (8)")
    match.add_argument("--stringency", choices=STRINGENCIES, default="moderate",
                       help="identity search stringency (default moderate)")
    match.add_argument("--max-mismatches", type=int, default=None,
                       help="mismatching loci allowed at moderate stringency (default 2)")
    match.add_argument("--max-dropouts", type=int, default=None,
                       help="dropout-compatible loci (a homozygote against a heterozygote "
                            "carrying its allele) allowed at moderate stringency (default 2)")
    match.add_argument("--candidates", metavar="CSV",
                       help="also write the identity candidates that were not called the same "
                            "animal, with the reason")
    match.add_argument("--min-fraction-matching", type=float, metavar="F",
                       help="instead of searching, list close-matching pairs as rubias's "
                            "close_matching_samples does: identical at a fraction >= F of the "
                            "loci typed in both (min_frac_matching)")
    match.add_argument("--min-fraction-typed", type=float, metavar="F", default=None,
                       help="with --min-fraction-matching: loci typed in both, as a fraction "
                            "of all loci, at least F (min_frac_non_miss; default 0.7)")
    match.add_argument("--no-identity", action="store_true", help="skip the identity search")
    match.add_argument("--no-kinship", action="store_true", help="skip the kinship search")
    match.add_argument("--dask", metavar="ADDRESS", help="run the kinship search on a Dask "
                       "scheduler at ADDRESS")
    match.set_defaults(func=run_match)

    calibrate = subparsers.add_parser(
        "calibrate",
        help="calibrate kinship cutoffs by simulation",
        description=(
            "Simulate related and unrelated pairs from a reference set's allele frequencies and "
            "report, per relationship and number of loci compared, the log10 LR cutoff that "
            "keeps the false-positive rate per pair below the target, with its power."
        ),
    )
    calibrate.add_argument("reference", help="bundled reference set, folder, or genotype file")
    calibrate.add_argument("--theta", help="θ (F_ST), a number or a species name (default "
                           "as for 'dnatrack match')")
    _add_scoring_options(calibrate)
    calibrate.add_argument("--dropout-rate", type=float, default=None)
    calibrate.add_argument("--miscall-rate", type=float, default=None)
    rate = calibrate.add_mutually_exclusive_group()
    rate.add_argument("--pairs", type=float, default=1e9,
                      help="pairs a search will compare; target rate per pair "
                           "--expected-false-pairs / pairs (1e9)")
    rate.add_argument("--fpr", type=float, help="target false-positive rate per pair")
    calibrate.add_argument("--simulations", type=int, default=DEFAULT_SIMULATIONS,
                           help=f"pairs simulated per relationship ({DEFAULT_SIMULATIONS})")
    calibrate.add_argument("--seed", type=int, default=1)
    calibrate.add_argument("--out", metavar="FILE.json",
                           help="write the calibration here (default: print a table only)")
    calibrate.add_argument("--save", action="store_true",
                           help="save calibration.json in the reference set's folder")
    calibrate.add_argument("--table", metavar="FILE.csv", help="also write the table as CSV")
    calibrate.set_defaults(func=run_calibrate)


# ---------------------------------------------------------------------------------- helpers
def _add_scoring_options(parser) -> None:
    from matching.calibration import DEFAULT_EXPECTED_FALSE_PAIRS, FREQUENCY_CHOICES
    from matching.kinship import DEFAULT_WITHIN_THETA

    parser.add_argument("--frequencies", choices=FREQUENCY_CHOICES, default=None,
                        help="score a pair with the frequencies of its profiles' reference "
                             "populations (the smaller LR of the two; default when the "
                             "reference has two populations or more) or with the pooled "
                             "frequencies and θ")
    parser.add_argument("--within-theta", type=float, default=None,
                        help=f"θ within a population, with population frequencies (default "
                             f"{DEFAULT_WITHIN_THETA})")
    parser.add_argument("--expected-false-pairs", type=float,
                        default=DEFAULT_EXPECTED_FALSE_PAIRS,
                        help="operating point: expected number of unrelated pairs a search "
                             "reports, over all relationships (default "
                             f"{DEFAULT_EXPECTED_FALSE_PAIRS:g})")


def _scoring(args, reference: ReferenceSet, table: GenotypeTable):
    from matching.pair_search import Scoring

    return Scoring.for_reference(table, _theta(args, reference), _error_model(args),
                                 args.frequencies, args.within_theta)


def _error_model(args):
    from matching.relationships import ErrorModel

    defaults = ErrorModel()
    return ErrorModel(
        dropout_rate=defaults.dropout_rate if args.dropout_rate is None else args.dropout_rate,
        miscall_rate=defaults.miscall_rate if args.miscall_rate is None else args.miscall_rate,
    )


def _theta(args, reference: ReferenceSet) -> float:
    """``--theta`` (a number or a species name), else the reference species' published value,
    else the Weir & Cockerham estimate from the reference populations."""
    from matching.pair_search import theta_for

    return theta_for(reference, args.theta).value


def _seizures(table: GenotypeTable, groups_path: str | None) -> dict[str, str]:
    ids = [str(i) for i in table.profile_ids]
    if groups_path:
        import csv

        with open(groups_path, newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"sample", "seizure"} <= set(reader.fieldnames):
                raise ValueError(f"{groups_path}, line 1: needs columns sample and seizure")
            mapping = {row["sample"]: row["seizure"] for row in reader}
        missing = [i for i in ids if i not in mapping]
        if missing:
            raise ValueError(f"{groups_path}: no seizure for sample {missing[0]!r}")
        return {i: mapping[i] for i in ids}
    labels = table.group if table.group is not None else table.population
    if labels is None:
        return {i: "" for i in ids}
    return dict(zip(ids, (str(x) for x in labels), strict=True))


def _shared_loci(references: list[ReferenceSet], tables: list[GenotypeTable], min_loci: int):
    from matching.analysis.references import shared_loci

    loci = [locus for locus in shared_loci(references) if all(locus in t.loci for t in tables)]
    if len(loci) < min_loci:
        what = "the reference" if len(references) == 1 else "the reference sets"
        raise ValueError(
            f"only {len(loci)} loci are shared by the genotypes and {what} "
            f"({', '.join(loci) or 'none'}); at least --min-loci {min_loci} are needed"
        )
    return loci


def _search_options(args, notes: list[str], kinship_progress, identity_progress, client):
    """The pipeline's :class:`~matching.analysis.pipeline.SearchOptions` from the options:
    ``--calibration`` (which must fit each set), else ``--cutoff`` as given, else cutoffs
    calibrated now (or the reference folder's standing calibration when it fits)."""
    from matching.analysis.pipeline import SearchOptions
    from matching.calibration import Calibration, resolve_cache_dir

    calibration = None
    cutoffs = parse_assignments(args.cutoff, "--cutoff") if args.cutoff else None
    if args.calibration:
        calibration = Calibration.load(args.calibration)
        notes.append(f"cutoffs from calibration {args.calibration}")
    elif cutoffs:
        notes.append("cutoffs given on the command line (not calibrated)")
    return SearchOptions(
        frequencies=args.frequencies, within_theta=args.within_theta, cutoffs=cutoffs,
        calibration=calibration, calibration_name=str(args.calibration),
        expected_false_pairs=args.expected_false_pairs, dask_client=client,
        kinship_progress=kinship_progress, identity_progress=identity_progress,
        calibration_cache=resolve_cache_dir(args.calibration_cache),
    )


# ---------------------------------------------------------------------------------- match
def run_match(args: argparse.Namespace) -> int:
    """The identity and kinship search of :func:`matching.analysis.analyse`
    (:func:`~matching.analysis.pipeline.search_pairs`), each profile weighed with the
    frequencies of the ``--reference`` set it is assigned to."""
    from dnatrack import __version__
    from dnatrack.cli.analyze import _reference_folder
    from matching.analysis import AnalysisSettings
    from matching.analysis.pipeline import search_pairs, search_power
    from matching.analysis.references import frequencies_record, frequency_groups
    from matching.links import link_seizures
    from matching.pair_search import low_power_warning, power_line

    if args.min_fraction_matching is not None:
        return run_close_matching(args)
    if args.min_fraction_typed is not None:
        raise ValueError("--min-fraction-typed goes with --min-fraction-matching")
    if args.no_identity and args.no_kinship:
        raise ValueError("--no-identity and --no-kinship leave nothing to do")
    if not args.reference:
        raise ValueError("--reference is required (its allele frequencies score the pairs)")
    if len(set(args.reference)) != len(args.reference):
        raise ValueError("--reference names a reference set twice")
    references = [load_reference_set(name) for name in args.reference]
    folders = {reference.name: _reference_folder(argument)
               for reference, argument in zip(references, args.reference, strict=True)}
    new = read_table(args.genotypes, args.input_format)
    existing = read_table(args.against, args.input_format) if args.against else None
    tables = [new] if existing is None else [new, existing]
    loci = _shared_loci(references, tables, args.min_loci)
    tables = [t.select_loci(loci) for t in tables]
    seizure_of = {}
    for table in tables:
        seizure_of.update(_seizures(table, args.groups))
    combined = _combined(tables, args)
    n_new = len(tables[0])
    others = tables[1] if existing is not None else tables[0].take(np.array([], dtype=np.int64))

    errors = _error_model(args)
    relationships = tuple(r.strip() for r in args.relationships.split(",") if r.strip())
    settings = AnalysisSettings(
        theta=args.theta, dropout_rate=errors.dropout_rate, miscall_rate=errors.miscall_rate,
        relationships=relationships, min_loci=args.min_loci, stringency=args.stringency,
        max_mismatches=args.max_mismatches, max_dropouts=args.max_dropouts)
    groups = frequency_groups(references, loci, tables[0], args.theta)
    criteria = None if args.no_identity else settings.identity_criteria()
    client = None
    if args.dask and not args.no_kinship:
        from matching.distributed import connect

        client = connect(args.dask)
    notes: list[str] = []
    identity_blocks = None if criteria is None else criteria.n_blocks
    with progress_bar(n_new, "kinship search") as kinship_update, \
            progress_bar(identity_blocks, "identity search", unit="block") as identity_update:
        options = _search_options(args, notes, kinship_update, identity_update, client)
        found = search_pairs(groups, tables[0], others, loci, settings, criteria,
                             kinship=not args.no_kinship, notes=notes,
                             reference_folder=lambda reference: folders.get(reference.name),
                             options=options)
    powers = {searched.group.reference.name: search_power(searched, tables[0], others, loci)
              for searched in found.searches}
    not_called = found.candidates_not_called()
    lr_columns = [f"log10_lr_{r}" for r in relationships]
    if criteria is not None:
        notes.append(
            f"identity search: candidates with at most {found.identity_guarantee} loci not "
            "identical (mismatching, dropout-compatible or untyped) are always found; "
            f"{len(not_called)} candidates were not called the same animal "
            "(their same-animal LR missed the cutoff or another relationship was as likely)"
        )
    if found.dropped:
        notes.append(
            f"{found.dropped} pair(s) of profiles assigned to different reference sets passed "
            "the cutoffs with one set's frequencies only and are not reported")
    if args.candidates:
        for row in not_called:
            row["seizure1"] = seizure_of[row["sample1"]]
            row["seizure2"] = seizure_of[row["sample2"]]
        write_rows(args.candidates, not_called, CANDIDATE_COLUMNS + lr_columns)
    ordered = found.rows
    several = len(references) > 1
    for row, k in found.chosen:
        row["seizure1"], row["seizure2"] = seizure_of[row["sample1"]], seizure_of[row["sample2"]]
        if "rmp" in row:
            row["rmp"] = f"{row['rmp']:.3e}"
        if several:
            row["frequency_reference"] = found.searches[k].group.reference.name
    write_rows(args.out, ordered, PAIR_COLUMNS + (["frequency_reference"] if several else [])
               + lr_columns)

    graph = link_seizures(ordered, seizure_of)
    links_path = Path(args.links) if args.links else Path(args.out).with_suffix(".links.json")
    if links_path.suffix.lower() == ".csv":
        write_rows(links_path, graph.link_rows(), LINK_COLUMNS)
    else:
        write_json(links_path, graph.as_dict())
    run_path = Path(args.out).with_suffix(".run.json")

    def kinship_record(searched) -> dict:
        return {**searched.search.parameters(), "expected_false_pairs": args.expected_false_pairs,
                "pairs_compared": found.pairs_compared,
                "power": powers[searched.group.reference.name]}

    def reference_record(reference) -> dict:
        return {"name": reference.name, "version": reference.version,
                "content_hash": reference.content_hash, "simulated": reference.simulated}

    run = {
        "software": f"dnatrack {__version__}",
        "reference": reference_record(references[0]) if not several
        else [reference_record(reference) for reference in references],
        "inputs": {"genotypes": args.genotypes, "against": args.against,
                   "profiles": len(combined), "loci": list(loci)},
        "kinship": None if args.no_kinship else (
            kinship_record(found.searches[0]) if not several else
            {searched.group.reference.name: kinship_record(searched)
             for searched in found.searches}),
        "identity": None if criteria is None else {
            **criteria.as_dict(), "guaranteed_bad_loci": found.identity_guarantee,
            "candidates_not_called": len(not_called)},
        "results": {"pairs": len(ordered), "seizure_links": len(graph.links),
                    "networks": len(graph.components)},
        "notes": notes,
    }
    if several:
        run["frequencies"] = frequencies_record(groups, references, tables[0])
    write_json(run_path, run)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for name, power in powers.items():
        warning = "" if args.no_kinship else low_power_warning(power)
        if warning:
            print(f"warning: {f'{name}: ' if several else ''}{warning}", file=sys.stderr)
    same = sum(1 for row in ordered if row.get("relationship") == "same_animal")
    print(
        f"{len(combined)} profiles at {len(loci)} loci: {len(ordered)} pairs "
        f"({same} same animal), {len(graph.links)} seizure links in "
        f"{len(graph.components)} networks -> {args.out}, {links_path}, {run_path}"
    )
    for name, power in powers.items():
        if power and not args.no_kinship:
            print(f"{name}: " * several + power_line(power, args.expected_false_pairs))
    return 0


CANDIDATE_COLUMNS = [
    "sample1", "seizure1", "sample2", "seizure2", "loci_compared", "identity", "loci_identical",
    "loci_dropout", "loci_mismatch", "called", "reason",
]
LINK_COLUMNS = ["seizure1", "seizure2", "n_pairs", "same_animal", "relationships",
                "max_log10_lr", "weight", "component"]


CLOSE_MATCH_COLUMNS = ["sample1", "seizure1", "sample2", "seizure2", "loci_typed_in_both",
                       "loci_identical"]


def run_close_matching(args: argparse.Namespace) -> int:
    """``--min-fraction-matching``: rubias's close-matching pairs of one file."""
    from matching.identity import DEFAULT_MIN_FRACTION_TYPED, close_matching_samples

    if args.against:
        raise ValueError("--min-fraction-matching lists close matches within one file; "
                         "it does not take --against")
    table = read_table(args.genotypes, args.input_format)
    typed = DEFAULT_MIN_FRACTION_TYPED if args.min_fraction_typed is None \
        else args.min_fraction_typed
    matches = close_matching_samples(table, args.min_fraction_matching, typed)
    seizure_of = _seizures(table, args.groups)
    rows = matches.records(table.profile_ids)
    for row in rows:
        row["seizure1"], row["seizure2"] = seizure_of[row["sample1"]], seizure_of[row["sample2"]]
    write_rows(args.out, rows, CLOSE_MATCH_COLUMNS)
    print(f"{len(table)} profiles at {table.n_loci} loci: {len(rows)} close-matching pairs "
          f"(identical at >= {args.min_fraction_matching:g} of the loci typed in both, typed in "
          f"both at >= {typed:g} of all loci) -> {args.out}")
    return 0


def _combined(tables: list[GenotypeTable], args) -> GenotypeTable:
    if len(tables) == 1:
        return tables[0]
    clash = set(tables[0].profile_ids) & set(tables[1].profile_ids)
    if clash:
        raise ValueError(
            f"sample {sorted(clash)[0]!r} is in both {args.genotypes} and {args.against}"
        )
    return GenotypeTable.concat(tables)


# ---------------------------------------------------------------------------------- calibrate
def run_calibrate(args: argparse.Namespace) -> int:
    from matching.calibration import calibrate

    reference = load_reference_set(args.reference)
    scoring = _scoring(args, reference, reference.table)
    with progress_bar(1, "simulating pairs", unit="run") as update:
        result = calibrate(
            reference.table, false_positive_rate=args.fpr, pairs_compared=args.pairs,
            expected_false_pairs=args.expected_false_pairs,
            n_simulations=args.simulations, seed=args.seed,
            reference_name=reference.name, reference_hash=reference.content_hash,
            **scoring.calibration_options(),
        )
        update(1)
    rows = result.rows()
    print(f"reference {reference.citation()}")
    print(f"{scoring.describe()}, dropout {scoring.errors.dropout_rate}, miscall "
          f"{scoring.errors.miscall_rate}, false-positive rate per pair "
          f"{result.false_positive_rate:.3g}")
    print(f"{'relationship':<18}{'loci':>5}{'cutoff':>9}{'power':>8}{'± se':>8}"
          f"{'false-pos. rate':>17}{'± se':>10}")
    for row in rows:
        print(f"{row['relationship']:<18}{row['loci_compared']:>5}"
              f"{row['log10_lr_cutoff']:>9.2f}{row['power']:>8.3f}{row['power_se']:>8.3f}"
              f"{row['false_positive_rate']:>17.3g}{row['false_positive_rate_se']:>10.2g}")
    if args.table:
        write_rows(args.table, rows, list(rows[0]))
    if args.out:
        result.save(args.out)
    if args.save:
        folder = Path(args.reference)
        if not folder.is_dir():
            from reference_data import reference_set_path

            folder = reference_set_path(args.reference)
        print(f"saved {result.save(folder)}")
    return 0
