"""``dnatrack assign`` (population, mixture and geographic assignment) and ``dnatrack
self-assign`` (leave-one-out validation of a reference set), DESIGN 5.5.

Output tables use rubias's column names where the meaning is the same, so results can be
compared with rubias directly; the epilogs of the two commands say what each column means.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from dnatrack.cli._common import (
    add_format_option,
    progress_bar,
    read_table,
    write_columns,
    write_json,
    write_rows,
)
from dnatrack.reference import ReferenceSet, load_reference_set

ASSIGN_COLUMNS = """\
per-sample columns (rubias's names where the meaning is the same):
  inferred_collection        most likely reference population
  inferred_repunit           reporting unit of inferred_collection (as in rubias)
  scaled_likelihood          posterior of inferred_collection (equal population priors)
  repunit_scaled_likelihood  posterior summed over the populations of inferred_repunit
  repunit_max_posterior      reporting unit with the largest summed posterior; it can differ
                             from inferred_repunit when a unit holds many populations that
                             each explain the sample a little
  repunit_max_posterior_scaled_likelihood
                             that largest summed posterior
  z_score                    rubias's z-score of the log-likelihood under inferred_collection:
                             against the sums, over the sample's typed loci, of the mean and
                             variance of the reference animals' leave-one-out per-locus
                             log-likelihoods (quote it beside rubias's output)
  z_score_exact              the same log-likelihood against the exact mean and variance of
                             the posterior predictive at the typed loci; defined for any
                             population size, and the score the unsampled-source rule ranks
  exclusion_p_value          share of simulated new animals of inferred_collection fitting no
                             better (resampled from the reference animals' leave-one-out
                             scores); nan with --exclusion-sims 0. A reference animal scored
                             leave-one-out stops drawing once its p-value is settled at
                             --alpha or above (unless --exclusion-full): its p-value is then
                             over the animals drawn so far
  unsampled_source           the source may not be in the reference: exclusion_p_value below
                             --alpha, or without simulations a z_score_exact ranking below
                             --alpha among the reference animals' leave-one-out ones

The unsampled-source rule is calibrated on the reference animals, each scored leave-one-out
as a new sample would be; the share of them it flags, the false-flag rate to expect for
samples that do come from the reference, is printed and written to the summary JSON
(assignment.unsampled_calibration).
"""

SELF_ASSIGN_ACCURACY = """\
accuracy:
  to the population          inferred_collection is the animal's own population
  to the reporting unit      the unit with the largest summed posterior
                             (repunit_max_posterior) is the animal's own, as rubias's
                             self-assignment is summarised (scaled_likelihood summed by
                             inferred_repunit); inferred_repunit_accuracy in the summary
                             counts the unit of the most likely population instead

Columns are those of 'dnatrack assign' (see its help); unsampled_source flags are those of
the calibrated rule applied to each animal against the rest of the reference.
"""


def register(subparsers) -> None:
    from matching.assignment import DEFAULT_ALPHA, DEFAULT_CHUNK_SIZE, DEFAULT_EXCLUSION_SIMULATIONS
    from matching.geo import DEFAULT_CELLS
    from matching.mixture import DEFAULT_BURN_IN, DEFAULT_SWEEPS

    assign = subparsers.add_parser(
        "assign",
        help="assign samples to reference populations, seizures to mixtures, samples to a map",
        description=(
            "Assign each sample to the populations of a reference set (Rannala & Mountain "
            "posterior predictive), flag samples whose source is not in the reference, and "
            "optionally estimate each seizure's mixture proportions and place samples on a map."
        ),
        epilog=ASSIGN_COLUMNS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    assign.add_argument("samples", help="genotype file of the samples (any readable format)")
    assign.add_argument("--reference", required=True, action="append", metavar="REF",
                        help="bundled reference set name, reference folder, or genotype file "
                             "with populations (and optionally a repunit column); repeatable: "
                             "the sets are combined as in 'dnatrack analyze' (a population "
                             "name two sets share is qualified with its set's)")
    assign.add_argument("--out", required=True, metavar="TABLE.csv",
                        help="per-sample assignment table to write")
    add_format_option(assign)
    assign.add_argument("--repunit-level", metavar="LEVEL",
                        help="reporting-unit level of the reference set (default: its own)")
    assign.add_argument("--exclusion-sims", type=int, default=DEFAULT_EXCLUSION_SIMULATIONS,
                        metavar="N", help="simulated new animals per population for the "
                        "exclusion test, 0 to flag by z-score rank instead (default "
                        f"{DEFAULT_EXCLUSION_SIMULATIONS:,}); the reference animals are "
                        "simulated for too, to calibrate the flag")
    _add_exclusion_full_option(assign)
    assign.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help=f"level for flagging unsampled sources (default {DEFAULT_ALPHA}); "
                             "the false-flag rate to expect is estimated on the reference")
    assign.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    assign.add_argument("--mixture", action="store_true",
                        help="estimate mixture proportions of each group (seizure); writes "
                             "TABLE.mixture.csv, TABLE.mixture_repunits.csv and "
                             "TABLE.membership.csv")
    assign.add_argument("--group-column", choices=("group", "population"), default="group",
                        help="column that names each sample's seizure or mixture (default "
                             "group; rubias mixture rows put their collection there)")
    _add_mixture_options(assign, DEFAULT_SWEEPS, DEFAULT_BURN_IN)
    _add_geo_options(assign, DEFAULT_CELLS)
    _add_run_options(assign, DEFAULT_CHUNK_SIZE)
    _add_plots_option(assign, "mixture proportions with 95%% intervals (with --mixture) and "
                              "the z-score histogram")
    assign.add_argument("--summary", metavar="JSON",
                        help="parameters and reference citation (default: TABLE.json)")
    assign.set_defaults(func=run_assign)

    self_assign = subparsers.add_parser(
        "self-assign",
        help="leave-one-out self-assignment of a reference set",
        description=(
            "Assign every animal of a reference set leave-one-out: per-sample table, accuracy "
            "per population and reporting unit, confusion matrix and z-score summary."
        ),
        epilog=SELF_ASSIGN_ACCURACY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    self_assign.add_argument("reference", metavar="REF",
                             help="bundled reference set name, reference folder, or genotype "
                                  "file with populations")
    self_assign.add_argument("--out", required=True, metavar="TABLE.csv",
                             help="per-sample table to write")
    add_format_option(self_assign)
    self_assign.add_argument("--repunit-level", metavar="LEVEL",
                             help="reporting-unit level (default: the reference set's own)")
    self_assign.add_argument("--summary", metavar="JSON",
                             help="accuracy, confusion matrices and z-scores "
                                  "(default: TABLE.summary.json)")
    self_assign.add_argument("--confusion", metavar="CSV",
                             help="long-form confusion matrix (default: TABLE.confusion.csv)")
    self_assign.add_argument("--exclusion-sims", type=int, default=0, metavar="N",
                             help="simulated new animals per animal for the exclusion test "
                                  "(default 0: flag by z-score rank)")
    _add_exclusion_full_option(self_assign)
    self_assign.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                             help=f"level for flagging (default {DEFAULT_ALPHA})")
    self_assign.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    self_assign.add_argument("--geo", choices=("animal", "site"),
                             help="also place every animal on the map leaving out itself or "
                                  "its whole site (settings chosen by that cross-validation), "
                                  "and report the error in km against the most-likely-site "
                                  "and posterior-weighted site centroids, and the coverage of "
                                  "the 90%% region")
    self_assign.add_argument("--geo-cells", type=int, default=DEFAULT_CELLS,
                             help=f"grid cells along the longer side (default {DEFAULT_CELLS})")
    _add_geo_cache_option(self_assign)
    _add_run_options(self_assign, DEFAULT_CHUNK_SIZE)
    _add_plots_option(self_assign, "confusion matrices and the z-score histogram, and with "
                                   "--geo the leave-one-out error map")
    self_assign.set_defaults(func=run_self_assign)
    _register_assess_reference(subparsers)


def _add_exclusion_full_option(parser) -> None:
    parser.add_argument("--exclusion-full", action="store_true",
                        help="draw all --exclusion-sims animals for every reference animal; by "
                             "default its draws stop once enough fit no better to settle its "
                             "p-value at --alpha or above, which leaves every flag and every "
                             "p-value below --alpha as they are")


# ---------------------------------------------------------------------- mixture options
def _add_mixture_options(parser, default_sweeps: int, default_burn_in: int) -> None:
    """rubias's ``infer_mixture`` options (used with --mixture)."""
    group = parser.add_argument_group("mixture (with --mixture; rubias's infer_mixture options)")
    group.add_argument("--reps", "--sweeps", dest="sweeps", type=int, default=default_sweeps,
                       metavar="N", help=f"Gibbs sweeps in all (default {default_sweeps})")
    group.add_argument("--burn-in", type=int, default=default_burn_in, metavar="N",
                       help=f"sweeps discarded first (default {default_burn_in})")
    group.add_argument("--thin", type=int, default=1, metavar="K",
                       help="keep every K-th sweep in the trace and the estimates "
                            "(rubias's sample_int_Pi; default 1)")
    group.add_argument("--prior", metavar="CSV",
                       help="Dirichlet prior of the proportions: columns collection or repunit, "
                            "and pi_param; a repunit's weight is spread evenly over its "
                            "collections; DEFAULT_PI sets the rest (default: 1/P each)")
    group.add_argument("--prior-sum", type=float, default=1.0, metavar="W",
                       help="total weight of the default symmetric prior (rubias's "
                            "pi_prior_sum; default 1)")
    group.add_argument("--pi-init", metavar="CSV",
                       help="initial proportions: columns collection and pi_init, every "
                            "collection, positive (normalised)")
    group.add_argument("--known", metavar="CSV",
                       help="samples of known origin: columns indiv and known_collection; "
                            "their membership is fixed to that collection")
    group.add_argument("--trace", metavar="FILE.csv",
                       help="write the trace of the proportions (one row per kept sweep) and "
                            "save the chain to FILE.csv.state.npz as it runs")
    group.add_argument("--resume", metavar="FILE.csv",
                       help="continue the chain saved with --trace FILE.csv (same samples, "
                            "settings and seed; --reps may be larger): the result equals an "
                            "uninterrupted run")
    group.add_argument("--baseline-resampling", action="store_true",
                       help="the fully Bayesian model: allele frequencies learned from the "
                            "mixture too (rubias's method BR; slower, no --trace/--resume or "
                            "--bootstrap)")
    group.add_argument("--bootstrap", type=int, default=0, metavar="N",
                       help="parametric-bootstrap bias correction of reporting-unit "
                            "proportions with N simulated mixtures (rubias's method PB, "
                            "pb_iter; default 0: off); adds bs_corrected_repunit_ppn")


def _add_plots_option(parser, what: str) -> None:
    parser.add_argument("--plots", metavar="DIR",
                        help=f"write figures as PNG and SVG into DIR: {what}")


def _read_named_values(path: str, keys: tuple[str, ...], value: str,
                       numeric: bool = True) -> tuple[str, dict]:
    """Rows of a small CSV as ``{name: value}``; the name from the first of ``keys`` that is a
    column. Returns that column's name too. Errors name the file and line."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        key = next((k for k in keys if k in columns), None)
        if key is None or value not in columns:
            raise ValueError(f"{path}: needs columns {' or '.join(keys)} and {value}, "
                             f"has {', '.join(columns) or 'none'}")
        out: dict = {}
        for line, row in enumerate(reader, start=2):
            name = (row[key] or "").strip()
            if not name:
                raise ValueError(f"{path}, line {line}: empty {key}")
            if name in out:
                raise ValueError(f"{path}, line {line}: {name!r} given twice")
            text = (row[value] or "").strip()
            if numeric:
                try:
                    out[name] = float(text)
                except ValueError:
                    raise ValueError(f"{path}, line {line}, {value}: not a number: "
                                     f"{text!r}") from None
            else:
                out[name] = text
    return key, out


def _mixture_settings(args: argparse.Namespace, model, samples) -> dict:
    """Keyword arguments of ``estimate_mixture`` from the mixture options (checked before any
    work is done)."""
    from matching.mixture import MixtureChain, dirichlet_prior

    if args.baseline_resampling and (args.trace or args.resume or args.bootstrap):
        raise ValueError("--baseline-resampling runs without --trace, --resume and --bootstrap")
    if args.bootstrap < 0:
        raise ValueError(f"--bootstrap must be ≥ 0, got {args.bootstrap}")
    settings = {"n_sweeps": args.sweeps, "burn_in": args.burn_in, "thin": args.thin,
                "seed": args.seed}
    weights = None
    if args.prior:
        _, weights = _read_named_values(args.prior, ("collection", "repunit"), "pi_param")
    settings["prior"] = dirichlet_prior(model.populations, model.repunits, weights,
                                        total=args.prior_sum)
    if args.pi_init:
        _, values = _read_named_values(args.pi_init, ("collection",), "pi_init")
        missing = [p for p in model.populations if p not in values]
        extra = [name for name in values if name not in model.populations]
        if missing or extra:
            raise ValueError(f"{args.pi_init}: pi_init must list every collection exactly; "
                             + (f"missing {missing[:5]}" if missing else f"unknown {extra[:5]}"))
        settings["pi_init"] = [values[p] for p in model.populations]
    if args.known:
        _, values = _read_named_values(args.known, ("indiv",), "known_collection",
                                       numeric=False)
        ids = set(samples.profile_ids)
        absent = [name for name in values if name not in ids]
        if absent:
            raise ValueError(f"{args.known}: no sample {absent[0]!r} among the samples")
        settings["known"] = [values.get(pid) or None for pid in samples.profile_ids]
    if args.resume:
        settings["resume"] = MixtureChain.load(_chain_path(args.resume))
    return settings


def _chain_path(trace: str) -> Path:
    return Path(trace + ".state.npz")


def _run_mixture(args: argparse.Namespace, model, samples, result, groups, settings: dict):
    """Estimate the mixture (saving the chain as it runs with --trace), and bootstrap."""
    from matching.mixture import (
        bootstrap_repunit_proportions,
        estimate_mixture,
        estimate_mixture_resampling_baseline,
    )

    if args.baseline_resampling:
        return estimate_mixture_resampling_baseline(model, samples, groups, **settings), None
    trace = args.trace or args.resume
    checkpoint = None
    if trace:
        def checkpoint(chain) -> None:
            chain.save(_chain_path(trace))

    with progress_bar(args.sweeps, "mixture sweeps", unit="sweep") as update:
        done = [settings["resume"].sweeps_done if "resume" in settings else 0]

        def saved(chain) -> None:
            if checkpoint is not None:
                checkpoint(chain)
            update(chain.sweeps_done - done[0])
            done[0] = chain.sweeps_done

        mixture = estimate_mixture(result, groups, checkpoint=saved, **settings)
    if args.bootstrap:
        bootstrap_repunit_proportions(mixture, model, n_iterations=args.bootstrap)
    return mixture, trace


def _add_geo_options(parser, default_cells: int) -> None:
    parser.add_argument("--geo", action="store_true",
                        help="place samples on a map (reference populations need coordinates; "
                             "settings chosen by leave-one-animal-out cross-validation on the "
                             "reference); adds geo_* columns and writes TABLE.geojson")
    parser.add_argument("--geo-cells", type=int, default=default_cells,
                        help=f"grid cells along the longer side (default {default_cells})")
    _add_geo_cache_option(parser)


def _add_geo_cache_option(parser) -> None:
    parser.add_argument("--geo-cache", metavar="DIR",
                        help="keep fitted geographic models in DIR, one JSON file per "
                             "reference content hash, and reuse them instead of fitting "
                             "again")


def _geo_model(model_class, reference, args, leave_out: str):
    if args.geo_cache:
        return model_class.fit_cached(reference, args.geo_cache, leave_out=leave_out,
                                      n_cells=args.geo_cells)
    return model_class.from_reference(reference, leave_out=leave_out, n_cells=args.geo_cells)


def _add_run_options(parser, default_chunk: int) -> None:
    parser.add_argument("--chunk-size", type=int, default=default_chunk,
                        help=f"samples per chunk (default {default_chunk:,})")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="run the chunks on the Dask scheduler at ADDRESS")


def _sibling(out: str, suffix: str) -> Path:
    """``TABLE.csv`` → ``TABLE<suffix>``."""
    path = Path(out)
    return path.with_name(path.stem + suffix) if path.suffix else path.with_name(path.name + suffix)


def _load_reference(args: argparse.Namespace, path: str) -> ReferenceSet:
    options = {"format": args.input_format} if args.input_format and Path(path).is_file() else {}
    return load_reference_set(path, **options)


def run_assign(args: argparse.Namespace) -> int:
    from matching.analysis.references import assignment_model
    from matching.assignment import RECORD_COLUMNS
    from matching.geo import GEO_COLUMNS, SiteMixtureModel
    from matching.mixture import MEMBERSHIP_COLUMNS, PROPORTION_COLUMNS, REPUNIT_COLUMNS

    if len(set(args.reference)) != len(args.reference):
        raise ValueError("--reference names a reference set twice")
    references = [_load_reference(args, path) for path in args.reference]
    samples = read_table(args.samples, args.input_format)
    # The assignment stage of the analysis pipeline (matching.analysis.analyse).
    model, reference = assignment_model(references, repunit_level=args.repunit_level)
    # Everything that can fail on bad input runs before any file is written.
    mixture_settings = _mixture_settings(args, model, samples) if args.mixture else None
    geo = None
    if args.geo:
        geo = _geo_model(SiteMixtureModel, reference, args, "animal")
    with progress_bar(reference.table.n_profiles, "calibrating on the reference",
                      unit="animal") as update:
        model.flag_calibration(args.exclusion_sims, args.seed, args.alpha,
                               stop_early=not args.exclusion_full, chunk_size=args.chunk_size,
                               dask_client=args.dask, progress=update)
    with progress_bar(samples.n_profiles, "assigning", unit="sample") as update:
        result = model.assign(
            samples, exclusion_simulations=args.exclusion_sims, seed=args.seed,
            alpha=args.alpha, exclusion_stop_early=not args.exclusion_full,
            chunk_size=args.chunk_size, dask_client=args.dask, progress=update,
        )
    rows = result.records()
    columns = list(RECORD_COLUMNS)
    groups = _groups(samples, args.group_column)
    outputs: dict[str, tuple[Path, list[dict], list[str]]] = {}
    mixture = None
    if args.mixture:
        mixture, trace = _run_mixture(args, model, samples, result, groups, mixture_settings)
        if trace:
            outputs["trace"] = (Path(trace), mixture.trace_records(),
                                ["mixture_collection", "sweep", *mixture.populations])
        outputs["mixture"] = (_sibling(args.out, ".mixture.csv"),
                              mixture.proportion_records(), PROPORTION_COLUMNS)
        outputs["mixture_repunits"] = (_sibling(args.out, ".mixture_repunits.csv"),
                                       mixture.repunit_records(), REPUNIT_COLUMNS)
        outputs["membership"] = (_sibling(args.out, ".membership.csv"),
                                 mixture.membership_columns(), MEMBERSHIP_COLUMNS)
        for row, group in zip(rows, groups, strict=True):
            row["mixture_collection"] = group
    geojson = None
    if geo is not None:
        surfaces = geo.assign(samples)
        for row, geo_row in zip(rows, surfaces.records(), strict=True):
            row.update({k: v for k, v in geo_row.items() if k != "indiv"})
        columns += [c for c in GEO_COLUMNS if c != "indiv"]
        geojson = surfaces.to_geojson()
        if len(set(groups)) < len(groups):
            for feature in geo.seizure_surfaces(samples, groups).to_geojson()["features"]:
                feature["properties"]["scope"] = "seizure"
                geojson["features"].append(feature)

    written = {"assignments": str(args.out)}
    write_rows(args.out, rows, columns)
    for key, (path, records, names) in outputs.items():
        if isinstance(records, dict):  # columns
            write_columns(path, {name: records[name] for name in names})
        else:
            write_rows(path, records, names)
        written[key] = str(path)
    if geojson is not None:
        path = _sibling(args.out, ".geojson")
        write_json(path, geojson)
        written["geojson"] = str(path)
    if args.plots:
        from matching.plots import plot_mixture, plot_z_scores

        figures = plot_z_scores(result, args.plots)
        if mixture is not None:
            figures += plot_mixture(mixture, args.plots)
        written["plots"] = [str(path) for path in figures]
    summary_path = Path(args.summary) if args.summary else _sibling(args.out, ".json")
    write_json(summary_path, {
        "reference": reference.citation(),
        "samples": str(args.samples),
        "n_samples": len(result),
        "n_flagged_unsampled": int(result.unsampled.sum()),
        "assignment": result.parameters(),
        "mixture": mixture.parameters() if mixture is not None else None,
        "geo": geo.parameters() if geo is not None else None,
        "files": written,
    })
    print(f"assigned {len(result)} samples to {len(model.populations)} populations of "
          f"{reference.name}; {int(result.unsampled.sum())} flagged as from an unsampled "
          f"source ({_false_flag_note(result.calibration)}); wrote {args.out}")
    return 0


def _false_flag_note(calibration) -> str:
    """The false-flag rate to expect, in words."""
    summary = calibration.summary()
    rate = summary["expected_false_flag_rate"]
    if rate is None:
        return "no reference animal to estimate the false-flag rate on"
    low, high = summary["expected_false_flag_rate_95"]
    return (f"expected false-flag rate {rate:.1%}, 95% interval {low:.1%}–{high:.1%}: "
            f"{summary['reference_animals_flagged']} of {summary['reference_animals']} "
            "reference animals flagged leave-one-out")


def _groups(samples, column: str) -> list[str]:
    labels = samples.group if column == "group" else samples.population
    if labels is None:
        return ["all"] * samples.n_profiles
    return [str(label) or "all" for label in labels]


def run_self_assign(args: argparse.Namespace) -> int:
    from matching.analysis.references import assignment_model
    from matching.assignment import RECORD_COLUMNS, self_assign

    reference = _load_reference(args, args.reference)
    n = reference.table.n_profiles
    geo = None
    if args.geo:
        from matching.geo import SiteMixtureModel

        geo = _geo_model(SiteMixtureModel, reference, args, args.geo)
    # The assignment stage of the analysis pipeline (matching.analysis.analyse).
    model, _ = assignment_model([reference], repunit_level=args.repunit_level)
    with progress_bar(n, "self-assigning", unit="sample") as update:
        result = self_assign(
            model,
            exclusion_simulations=args.exclusion_sims, seed=args.seed, alpha=args.alpha,
            exclusion_stop_early=not args.exclusion_full, chunk_size=args.chunk_size,
            dask_client=args.dask, progress=update,
        )
    rows = result.assignment.records()
    columns = [c for c in RECORD_COLUMNS if c != "mixture_collection"]
    summary = result.summary()
    summary["reference"] = reference.citation()
    validation = None
    if geo is not None:
        validation = geo.leave_one_out(args.geo)
        by_id = {pid: k for k, pid in enumerate(validation.surfaces.names)}
        for row in rows:
            k = by_id.get(row["indiv"])
            if k is not None:
                row.update(geo_lat=float(validation.surfaces.point_lat[k]),
                           geo_lon=float(validation.surfaces.point_lon[k]),
                           geo_error_km=float(validation.error_km[k]),
                           geo_region90_holds_site=bool(validation.covered[k]))
        columns += ["geo_lat", "geo_lon", "geo_error_km", "geo_region90_holds_site"]
        summary["geo"] = {**geo.parameters(), "leave_one_out": validation.summary()}
    write_rows(args.out, rows, columns)
    if args.plots:
        from matching.plots import plot_confusion, plot_z_scores

        figures = plot_confusion(result, args.plots) + plot_z_scores(result.assignment,
                                                                     args.plots)
        if geo is not None:
            from matching.geo_plots import plot_leave_one_out_errors

            figures += plot_leave_one_out_errors(validation, geo, args.plots)
        summary["plots"] = [str(path) for path in figures]
    summary_path = Path(args.summary) if args.summary else _sibling(args.out, ".summary.json")
    write_json(summary_path, summary)
    confusion_path = Path(args.confusion) if args.confusion else _sibling(args.out,
                                                                          ".confusion.csv")
    write_rows(confusion_path, result.confusion_records(),
               ["collection", "inferred_collection", "n"])
    line = (f"self-assignment of {n} animals of {reference.name}: "
            f"{result.accuracy:.1%} to their population, "
            f"{result.repunit_accuracy:.1%} to their reporting unit "
            f"({result.inferred_repunit_accuracy:.1%} by the unit of the most likely "
            f"population); {int(result.assignment.unsampled.sum())} flagged as from an "
            "unsampled source")
    print(line)
    if validation is not None:
        print(_geo_error_lines(summary["geo"]["leave_one_out"]))
    return 0


# ---------------------------------------------------------------------- assess-reference
ASSESS_EPILOG = """\
Mixtures are simulated from the reference animals and estimated as 'dnatrack assign
--mixture' estimates them (rubias's assess_reference_loo / assess_reference_mc):
  --method loo   each simulated fish is a reference animal drawn with replacement and scored
                 leave-one-out against the whole reference (missing data as it is)
  --method mc    the mixture's animals are drawn without replacement, taken out of the
                 reference and scored against a reference rebuilt from the rest

TABLE.csv holds one row per mixture and reporting unit (true and estimated proportions and
the interval); TABLE.summary.csv per reporting unit: bias and RMSE of the posterior mean and
of EM, and the share of intervals holding the true proportion (coverage).
"""


def _register_assess_reference(subparsers) -> None:
    from matching.mixture import (
        DEFAULT_ALPHA_COLLECTION,
        DEFAULT_ALPHA_REPUNIT,
        DEFAULT_ASSESSMENT_ITERATIONS,
        DEFAULT_BURN_IN,
        DEFAULT_MIXTURE_SIZE,
        DEFAULT_SWEEPS,
    )

    parser = subparsers.add_parser(
        "assess-reference",
        help="predict mixture accuracy of a reference by simulated mixtures",
        description="Simulate mixtures from a reference set by leave-one-out or Monte-Carlo "
                    "resampling, estimate them, and report bias, RMSE and interval coverage "
                    "per reporting unit.",
        epilog=ASSESS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("reference", metavar="REF",
                        help="bundled reference set name, reference folder, or genotype file "
                             "with populations")
    parser.add_argument("--out", required=True, metavar="TABLE.csv",
                        help="per-mixture table to write")
    add_format_option(parser)
    parser.add_argument("--repunit-level", metavar="LEVEL",
                        help="reporting-unit level (default: the reference set's own)")
    parser.add_argument("--method", choices=("loo", "mc"), default="loo",
                        help="resampling (default loo)")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ASSESSMENT_ITERATIONS,
                        metavar="N", help="simulated mixtures (default "
                        f"{DEFAULT_ASSESSMENT_ITERATIONS})")
    parser.add_argument("--mixture-size", type=int, default=DEFAULT_MIXTURE_SIZE, metavar="N",
                        help=f"fish per mixture (default {DEFAULT_MIXTURE_SIZE})")
    parser.add_argument("--proportions", metavar="CSV",
                        help="fixed proportions: columns collection or repunit, and ppn "
                             "(collections within a unit then by Dirichlet(--alpha-collection));"
                             " default: random, Dirichlet(--alpha-repunit) over units")
    parser.add_argument("--alpha-repunit", type=float, default=DEFAULT_ALPHA_REPUNIT,
                        help=f"default {DEFAULT_ALPHA_REPUNIT}")
    parser.add_argument("--alpha-collection", type=float, default=DEFAULT_ALPHA_COLLECTION,
                        help=f"default {DEFAULT_ALPHA_COLLECTION}")
    parser.add_argument("--level", type=float, default=0.95,
                        help="credible level whose coverage is reported (default 0.95)")
    parser.add_argument("--reps", "--sweeps", dest="sweeps", type=int, default=DEFAULT_SWEEPS,
                        metavar="N", help=f"Gibbs sweeps per mixture (default {DEFAULT_SWEEPS})")
    parser.add_argument("--burn-in", type=int, default=DEFAULT_BURN_IN, metavar="N",
                        help=f"sweeps discarded first (default {DEFAULT_BURN_IN})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--summary", metavar="CSV",
                        help="per reporting unit (default: TABLE.summary.csv)")
    _add_plots_option(parser, "estimated against simulated proportions per reporting unit")
    parser.set_defaults(func=run_assess_reference)


def run_assess_reference(args: argparse.Namespace) -> int:
    from matching.assignment import AssignmentModel
    from matching.mixture import ASSESSMENT_COLUMNS, ASSESSMENT_SUMMARY_COLUMNS, assess_reference

    reference = _load_reference(args, args.reference)
    model = AssignmentModel.from_reference(reference, args.repunit_level)
    proportions = None
    if args.proportions:
        _, proportions = _read_named_values(args.proportions, ("collection", "repunit"), "ppn")
    with progress_bar(args.iterations, "simulating mixtures", unit="mixture") as update:
        result = assess_reference(
            model, method=args.method, iterations=args.iterations,
            mixture_size=args.mixture_size, proportions=proportions,
            alpha_repunit=args.alpha_repunit, alpha_collection=args.alpha_collection,
            level=args.level, n_sweeps=args.sweeps, burn_in=args.burn_in, seed=args.seed,
            progress=update,
        )
    write_rows(args.out, result.records(), ASSESSMENT_COLUMNS)
    summary_path = Path(args.summary) if args.summary else _sibling(args.out, ".summary.csv")
    write_rows(summary_path, result.summary_records(), ASSESSMENT_SUMMARY_COLUMNS)
    parameters = {"reference": reference.citation(), **result.parameters(),
                  "files": {"iterations": str(args.out), "summary": str(summary_path)}}
    if args.plots:
        from matching.plots import plot_assessment

        parameters["files"]["plots"] = [str(p) for p in plot_assessment(result, args.plots)]
    write_json(_sibling(args.out, ".json"), parameters)
    print(f"assessed {reference.name} with {args.iterations} simulated mixtures of "
          f"{args.mixture_size} ({args.method}): {result.level:.0%} intervals cover the true "
          f"reporting-unit proportion {result.coverage:.1%} of the time; wrote {args.out}")
    return 0


def _geo_error_lines(loo: dict) -> str:
    """Leave-one-out error of the map placement beside both centroid baselines."""
    overall = loo["overall"]
    lines = [f"leave-one-{loo['leave_out']}-out geographic error (median / 90th percentile km): "
             f"dnatrack {overall['median_km']:.0f} / {overall['p90_km']:.0f}, 90% region "
             f"holds the site for {overall['coverage90']:.1%}"]
    for name, label in (("most_likely_site_centroid", "most likely site's centroid"),
                        ("posterior_weighted_centroid", "posterior-weighted site centroid")):
        stats = loo["baselines"][name]["overall"]
        lines.append(f"  {label}: {stats['median_km']:.0f} / {stats['p90_km']:.0f}")
    return "\n".join(lines)
