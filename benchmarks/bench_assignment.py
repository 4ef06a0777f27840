"""Assignment speed on the Chinook data sets shipped with rubias (DESIGN 8).

    python -m benchmarks.bench_assignment
    python -m benchmarks.bench_assignment --datasets ../shared/datasets --json figures.json

Times, after loading and compiling:

* leave-one-out self-assignment of ``chinook_baseline_rubias.csv`` (7,301 fish, 91 SNPs, 69
  collections): the log-likelihood kernel alone, and the whole ``self_assign`` (encoding,
  leave-one-out checks, posteriors, exact z-scores, accuracy tables); against a vectorised
  numpy implementation of the same leave-one-out log-likelihoods, checked equal;
* the calibration of the unsampled-source exclusion test on the same reference (every fish
  scored leave-one-out against ``--calibration-sims`` resampled new fish), timed once;
* the mixture of the three Chinook mixture samples (2,256 fish): Gibbs sampling with 2,000
  sweeps, and EM; the parametric-bootstrap correction of its reporting-unit proportions
  (``--bootstrap-iterations`` simulated mixtures per sample, timed once);
* ``assess_reference`` on the Chinook baseline by leave-one-out and by Monte-Carlo
  resampling (``--assess-iterations`` mixtures of 100 fish, 2,000 sweeps each, timed once),
  with the 95% interval coverage of the reporting-unit proportions.

The z-scores (rubias's ``z_score`` and ``z_score_exact``) of the self-assignments are
summarised by their mean and sd; rubias 0.4.0 gives 0.39 / 0.82 (alewife) and 0.12 / 1.08
(Chinook).

Each figure is the best of ``--repeats`` runs. Self-assignment accuracies are reported for the
Chinook and alewife (``alewife_rubias.csv``, 1,070 fish) references: to the collection, and to
the reporting unit both by the largest summed posterior and by the unit of the most likely
collection.

Geographic assignment (a separate section, ``--geo-only`` runs it alone): leave-one-animal-out
and leave-one-site-out error in km (median, 90th percentile) of dnatrack's site-mixture
placement beside the centroid of the most likely site and the posterior-weighted centroid of
the sites, and the share of animals whose 90% region holds their site, on every bundled
reference set and, when msprime is installed, on a set simulated like a real georeferenced STR
survey (40 sites scattered over East and Southern Africa, 10 STRs, 8–14 animals per site,
isolation by distance).

    python -m benchmarks.bench_assignment --geo-only
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from dnatrack.formats import read_genotypes
from dnatrack.reference import load_reference_set
from matching import _mixture_kernels
from matching._rng_kernels import seed_state, state_for
from matching.assignment import AssignmentModel, self_assign
from matching.geo import BASELINES, SiteMixtureModel
from matching.mixture import assess_reference, bootstrap_repunit_proportions, estimate_mixture
from reference_data import list_reference_sets

DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
LOG2 = math.log(2.0)


def numpy_leave_one_out(model: AssignmentModel, codes: np.ndarray, own: np.ndarray):
    """Leave-one-out log-likelihoods (n, P) with numpy, one vectorised step per locus."""
    log_x, log_x1, log_norm = model.tables
    n, n_loci, _ = codes.shape
    rows = np.arange(n)
    total = np.zeros((n, len(model.populations)))
    own_total = np.zeros(n)
    for locus in range(n_loci):
        a = codes[:, locus, 0].astype(np.intp)
        b = codes[:, locus, 1].astype(np.intp)
        typed = a >= 0
        a, b = np.where(typed, a, 0), np.where(typed, b, 0)
        hom = (a == b)[:, None]
        term = np.where(hom, log_x1[locus, a], LOG2 + log_x[locus, b]) + log_x[locus, a]
        total += np.where(typed[:, None], term - log_norm[locus], 0.0)
        c_a = model.kernel_counts[locus, a, own]
        c_b = model.kernel_counts[locus, b, own]
        n_own = model.kernel_totals[locus, own]
        prior = model.prior[locus]
        with np.errstate(invalid="ignore", divide="ignore"):
            x_a = c_a - np.where(hom[:, 0], 2.0, 1.0) + prior
            loo = np.where(hom[:, 0], np.log(x_a) + np.log(x_a + 1.0),
                           LOG2 + np.log(x_a) + np.log(c_b - 1.0 + prior))
            own_total += np.where(typed, loo - np.log((n_own - 1.0) * n_own), 0.0)
    total[rows, own] = own_total
    return total


def best_of(repeats: int, function, *args, **kwargs):
    """(fastest wall time in seconds, last result)."""
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS,
                        help="folder with the rubias Chinook CSV files")
    parser.add_argument("--sweeps", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calibration-sims", type=int, default=1_000,
                        help="simulated fish per reference fish for the calibration timing")
    parser.add_argument("--bootstrap-iterations", type=int, default=100,
                        help="simulated mixtures per sample for the bootstrap timing")
    parser.add_argument("--assess-iterations", type=int, default=50,
                        help="simulated mixtures for the assess_reference timings")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--geo-only", action="store_true",
                        help="only the geographic leave-one-out section")
    args = parser.parse_args(argv)
    if args.geo_only:
        result = {"geographic_leave_one_out": geographic_errors()}
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        return result

    start = time.perf_counter()
    reference = load_reference_set(args.datasets / "chinook_baseline_rubias.csv")
    mixture = read_genotypes(args.datasets / "chinook_mixture_rubias.csv")
    load_seconds = time.perf_counter() - start
    model = AssignmentModel.from_reference(reference)
    self_assign(model)  # compile (or load cached machine code) outside the timings

    codes = model.encode(reference.table)
    own = model.own_populations(reference.table)
    kernel_seconds, kernel_result = best_of(args.repeats, model.log_likelihoods, codes, own)
    numpy_seconds, numpy_result = best_of(args.repeats, numpy_leave_one_out, model, codes, own)
    self_seconds, validation = best_of(args.repeats, self_assign, model)
    calibration_seconds, calibration = best_of(1, model.flag_calibration,
                                               args.calibration_sims, 1, 0.01)
    alewife = self_assign(load_reference_set(args.datasets / "alewife_rubias.csv"))

    assigned = model.assign(mixture, exclusion_simulations=0)
    estimate_mixture(assigned, n_sweeps=20, burn_in=2)  # compile
    log_likelihood = assigned.log_likelihood
    groups = np.unique(assigned.group, return_inverse=True)[1].ravel()
    order = np.argsort(groups, kind="stable")
    starts = np.searchsorted(groups[order], np.arange(groups.max() + 2)).astype(np.int64)
    scaled = np.ascontiguousarray(
        np.exp(log_likelihood[order] - log_likelihood[order].max(axis=1, keepdims=True)))
    prior = np.full(scaled.shape[1], 1.0 / scaled.shape[1])
    keys = np.arange(len(starts) - 1, dtype=np.int64)

    def gibbs():
        pi = np.tile(prior, (len(keys), 1))
        states = np.array([state_for(seed_state(1), k)[0] for k in keys], dtype=np.uint64)
        return _mixture_kernels.gibbs_mixtures(scaled, starts, prior, pi, states, 0,
                                               args.sweeps, 100, np.zeros_like(scaled))

    gibbs_seconds, _ = best_of(args.repeats, gibbs)
    em_seconds, _ = best_of(args.repeats, _mixture_kernels.em_mixtures, scaled, starts, 1e-8,
                            10_000)
    mixture_seconds, estimate = best_of(args.repeats, estimate_mixture, assigned,
                                        n_sweeps=args.sweeps, seed=1)
    unit = estimate.repunit_names.index("CentralValleyfa")
    bootstrap_repunit_proportions(estimate_mixture(assigned, n_sweeps=20, burn_in=2), model,
                                  n_iterations=1, n_sweeps=20, burn_in=2)  # compile
    bootstrap_seconds, corrected = best_of(1, bootstrap_repunit_proportions, estimate, model,
                                           n_iterations=args.bootstrap_iterations)
    assessments = {}
    for method in ("loo", "mc"):
        seconds, assessment = best_of(1, assess_reference, model, method=method,
                                      iterations=args.assess_iterations, mixture_size=100,
                                      seed=1)
        assessments[method] = {"iterations": args.assess_iterations, "mixture_size": 100,
                               "seconds": round(seconds, 2),
                               "coverage_95": round(assessment.coverage, 4)}

    result = {
        "load_seconds": round(load_seconds, 2),
        "self_assignment": {
            "fish": len(reference.table),
            "loci": len(model.loci),
            "collections": len(model.populations),
            "loo_kernel_seconds": round(kernel_seconds, 4),
            "numpy_loo_seconds": round(numpy_seconds, 4),
            "speedup_over_numpy": round(numpy_seconds / kernel_seconds, 1),
            "numba_equals_numpy": bool(np.allclose(kernel_result, numpy_result, rtol=1e-12,
                                                   atol=1e-10)),
            "self_assign_seconds": round(self_seconds, 4),
            "accuracy_collection": round(validation.accuracy, 4),
            "accuracy_repunit": round(validation.repunit_accuracy, 4),
            "accuracy_inferred_repunit": round(validation.inferred_repunit_accuracy, 4),
            "calibration_sims": args.calibration_sims,
            "calibration_seconds": round(calibration_seconds, 2),
            "expected_false_flag_rate": round(calibration.expected_false_flag_rate, 4),
        },
        "alewife_self_assignment": {
            "fish": len(alewife.assignment),
            "accuracy_collection": round(alewife.accuracy, 4),
            "accuracy_repunit": round(alewife.repunit_accuracy, 4),
            "accuracy_inferred_repunit": round(alewife.inferred_repunit_accuracy, 4),
        },
        "mixture": {
            "fish": len(mixture),
            "mixtures": list(estimate.groups),
            "sweeps": args.sweeps,
            "gibbs_kernel_seconds": round(gibbs_seconds, 3),
            "em_kernel_seconds": round(em_seconds, 3),
            "estimate_mixture_seconds": round(mixture_seconds, 3),
            "central_valley_fall_share": {
                group: round(float(estimate.repunit_posterior_mean[g, unit]), 3)
                for g, group in enumerate(estimate.groups)
            },
            "bootstrap_iterations": args.bootstrap_iterations,
            "bootstrap_seconds": round(bootstrap_seconds, 2),
            "central_valley_fall_share_bootstrap_corrected": {
                group: round(float(corrected.bootstrap_repunit[g, unit]), 3)
                for g, group in enumerate(estimate.groups)
            },
        },
        "assess_reference": assessments,
        "z_scores": {name: _z_summary(result.assignment)
                     for name, result in (("chinook", validation), ("alewife", alewife))},
    }
    print(json.dumps(result, indent=2))
    result["geographic_leave_one_out"] = geographic_errors()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def _z_summary(assignment) -> dict:
    out = {}
    for label, z in (("z_score", assignment.z_score), ("z_score_exact", assignment.z_score_exact)):
        finite = z[np.isfinite(z)]
        out[label] = {"mean": round(float(finite.mean()), 3),
                      "sd": round(float(finite.std(ddof=1)), 3)}
    return out


# ---------------------------------------------------------------------- geographic assignment
def survey_like_reference():
    """40 sites scattered over East and Southern Africa, 10 STRs, 8–14 animals a site,
    simulated with msprime as the bundled sets are; ``None`` without msprime."""
    try:
        import msprime  # noqa: F401
    except ImportError:
        return None
    from dataclasses import replace

    from dnatrack.panels import load_panel
    from reference_data.make_reference_sets import Locality, design, simulate

    rng = np.random.default_rng(40)
    lat, lon = rng.uniform(-25, 2, 40), rng.uniform(22, 40, 40)
    localities = tuple(
        Locality(f"S{k:02d}", f"S{k:02d}", f"simulated site {k}", float(a), float(o),
                 {"region": "north" if a > -12 else "south"})
        for k, (a, o) in enumerate(zip(lat, lon, strict=True)))
    panel = load_panel("elephant_16str")
    panel = replace(panel, name="elephant_10str", loci=panel.loci[:10])
    survey = replace(design("savanna_elephant_simulated"), name="survey_like_simulated",
                     localities=localities, animals_per_locality=(8, 14),
                     default_repunit_level="region", seed=40)
    return simulate(survey, panel)


def geographic_errors() -> dict:
    """Leave-one-out geographic error of dnatrack and both centroid baselines, per set."""
    sets = [(name, load_reference_set(name)) for name in list_reference_sets()]
    survey = survey_like_reference()
    if survey is not None:
        sets.append((survey.name, survey))
    figures = {}
    header = (f"{'reference set':28s} {'leave out':9s} {'dnatrack med/p90 (cov90)':>26s} "
              f"{'most likely site':>17s} {'weighted centroid':>18s}")
    print(header)
    for name, reference in sets:
        for leave_out in ("animal", "site"):
            start = time.perf_counter()
            model = SiteMixtureModel.from_reference(reference, leave_out=leave_out)
            summary = model.leave_one_out(leave_out).summary()
            seconds = time.perf_counter() - start
            overall = summary["overall"]
            row = {"dnatrack": _geo_figures(overall), "seconds": round(seconds, 1),
                   "settings": model.settings.to_dict(),
                   **{b: _geo_figures(summary["baselines"][b]["overall"]) for b in BASELINES}}
            figures[f"{name}/{leave_out}"] = row
            best, weighted = (row[b] for b in BASELINES)
            print(f"{name:28s} {leave_out:9s} "
                  f"{overall['median_km']:8.0f} / {overall['p90_km']:5.0f} "
                  f"({overall['coverage90']:.3f}) "
                  f"{best['median_km']:8.0f} / {best['p90_km']:5.0f} "
                  f"{weighted['median_km']:9.0f} / {weighted['p90_km']:5.0f}")
    return figures


def _geo_figures(stats: dict) -> dict:
    figures = {"median_km": round(stats["median_km"], 1), "p90_km": round(stats["p90_km"], 1)}
    if "coverage90" in stats:
        figures["coverage90"] = round(stats["coverage90"], 3)
    return figures


if __name__ == "__main__":
    main()
