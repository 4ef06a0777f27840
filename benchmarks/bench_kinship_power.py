"""Kinship power and false pairs at the default operating point, on simulated seizures.

    python -m benchmarks.bench_kinship_power                       # all four references
    python -m benchmarks.bench_kinship_power --references rich_panel_30str_simulated
    python -m benchmarks.bench_kinship_power --references savanna_elephant_simulated \\
        --replicates 5 --json power.json

Scenarios come from the project's simulator (:func:`dnatrack.simulate.simulate`) with the allele
frequencies of real data sets (the rubias alewife baseline, 11 STRs, 21 collections; the
adegenet Nancy cats, 9 STRs, 17 colonies; both from ``../shared/datasets``) and of the bundled
simulated elephant (16 STRs) and rhino (20 STRs) reference sets. No bundled or shipped set has
25 STRs or more, so ``rich_panel_30str_simulated`` (:func:`rich_panel_reference`) stands for a
richer panel: 30 loci with the pooled allele frequencies of loci drawn from the elephant and
rhino sets, 15 populations at F_ST 0.05, 40 reference animals each. Each scenario has
``--seizures`` seizures of ``--items`` items, every seizure drawn from one population (so the
search sees population structure: most unrelated pairs within a seizure share a population,
those across seizures mostly do not), with parent–offspring, full-sibling, half-sibling and
same-animal pairs placed across seizures, and genotyping errors at the simulator's default
rates. Every scenario is searched as ``dnatrack match`` searches it, with the same reference
(the real data set or the bundled set), at the panel's loci and at a subset of them.

Per reference, loci and scoring, over ``--replicates`` scenarios:

* **recall** per relationship: planted pairs called that relationship (and, apart, called
  anything);
* **false pairs**: unrelated pairs called anything, observed per search against the expected
  count the operating point states (``--expected-false-pairs``, default 1), with a one-sided
  95% Poisson upper bound of the observed mean;
* the **power** the run itself states (for the pairs' loci compared, scored as the search
  scores them), against the share of planted pairs that reached their relationship's cutoff
  (``observed_passing``; ``z`` is the difference in binomial plus Monte-Carlo standard errors),
  and the power at all loci (``power_at_all_loci``);
* the **oracle fixed cutoff**, the honest ceiling of any threshold rule: the one log10 LR
  cutoff, applied to every pair's largest kinship LR, that knowing the truth lets through
  exactly ``--expected-false-pairs`` unrelated pairs per search over the replicates, and the
  share of planted pairs of each relationship it finds (as any relationship).

The default scoring (population frequencies, within-population θ) is held against two
baselines: pooled frequencies with θ = F_ST (the old default) and pooled frequencies with
θ = 0 (the wrong frequencies for structured data, which inflate false pairs).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from dnatrack.reference import load_reference_set
from dnatrack.simulate import ScenarioSpec, simulate
from matching.identity import IdentityCriteria
from matching.kinship import KinshipSearch
from matching.pair_search import (
    MINIMUM_CUTOFF,
    Scoring,
    find_pairs,
    loci_compared_shares,
    pairs_compared,
    power_summary,
    search_calibration,
    theta_for,
)
from matching.relationships import ErrorModel

DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
REFERENCES = {
    "alewife": "alewife_rubias.csv",
    "nancycats": "nancycats.str",
    "savanna_elephant_simulated": None,
    "black_rhino_simulated": None,
    "rich_panel_30str_simulated": None,
}
#: The richer-panel reference (no bundled or shipped set has 25 STRs or more): loci, populations,
#: reference animals per population and F_ST between populations.
RICH_PANEL = {"n_loci": 30, "n_populations": 15, "per_population": 40, "fst": 0.05,
              "seed": 30}
SCORINGS = ("default", "pooled_fst", "pooled_theta0")
KINSHIP = ("parent_offspring", "full_sibling", "half_sibling")


def poisson_upper(count: int, confidence: float = 0.95) -> float:
    """Exact one-sided upper confidence bound of a Poisson mean from one ``count``: the ``λ``
    with ``P(X ≤ count | λ) = 1 − confidence`` (bisection)."""
    def cdf(lam: float) -> float:
        return sum(math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1))
                   for k in range(count + 1))

    low, high = 0.0, count + 10.0 * math.sqrt(count + 1) + 10.0
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) > 1 - confidence else (low, middle)
    return high


def load(name: str, datasets: Path):
    if name == "rich_panel_30str_simulated":
        return rich_panel_reference(**RICH_PANEL)
    file = REFERENCES.get(name)
    return load_reference_set(str(datasets / file) if file else name)


def rich_panel_reference(n_loci: int = 30, n_populations: int = 15, per_population: int = 40,
                         fst: float = 0.05, seed: int = 30):
    """A simulated reference with a richer STR panel than any bundled set: ``n_loci`` loci
    whose pooled allele frequencies are those of loci drawn at random (without replacement)
    from the bundled savanna elephant (16 STRs) and black rhino (20 STRs) sets, so the
    allele-frequency spectra are real ones; ``n_populations`` populations whose frequencies are
    Dirichlet around the pooled ones with F_ST ``fst`` (Balding–Nichols, precision
    ``(1 − F) / F``), ``per_population`` reference animals drawn from each."""
    from dnatrack.genotypes import GenotypeTable
    from dnatrack.reference import PopulationInfo, ReferenceSet
    from matching.frequencies import allele_counts, point_frequencies

    spectra = []
    for name in ("savanna_elephant_simulated", "black_rhino_simulated"):
        table = load_reference_set(name).table.replace(population=None)
        counts = allele_counts(table)
        freqs = point_frequencies(counts)[0]
        spectra += [freqs[k, :n] / freqs[k, :n].sum()
                    for k, n in enumerate(counts.coding.n_alleles) if n >= 2]
    if n_loci > len(spectra):
        raise ValueError(f"only {len(spectra)} real loci to draw {n_loci} from")
    rng = np.random.default_rng(seed)
    chosen = [spectra[k] for k in rng.choice(len(spectra), size=n_loci, replace=False)]
    precision = (1.0 - fst) / fst
    alleles, labels, populations = [], [], []
    for p in range(n_populations):
        draws = np.stack([rng.choice(len(f), size=(per_population, 2),
                                     p=rng.dirichlet(precision * f + 1e-6))
                          for f in chosen], axis=1)
        alleles.append(100 + 2 * draws)
        name = f"P{p + 1:02d}"
        labels += [name] * per_population
        populations.append(PopulationInfo(name, f"site {p + 1}", -10.0 + p, 20.0 + p,
                                          {"region": name}))
    table = GenotypeTable(np.concatenate(alleles), [f"ref{i}" for i in range(len(labels))],
                          [f"STR{j + 1}" for j in range(n_loci)], population=labels)
    return ReferenceSet("rich_panel_30str_simulated", "simulated species", table,
                        tuple(populations), simulated=True, default_repunit_level="region",
                        description=f"{n_loci} STRs with the bundled elephant and rhino sets' "
                                    f"allele-frequency spectra, {n_populations} populations, "
                                    f"F_ST {fst:g}")


def scoring_for(choice: str, reference, table, theta: float,
                errors: ErrorModel | None = None) -> Scoring:
    errors = ErrorModel() if errors is None else errors
    if choice == "default":
        return Scoring.for_reference(table, theta, errors)
    return Scoring(theta if choice == "pooled_fst" else 0.0, errors, "pooled")


def run_scenario(reference, loci, scoring: Scoring, spec: ScenarioSpec, seed: int,
                 expected_false_pairs: float, minimum_cutoff: float = MINIMUM_CUTOFF) -> dict:
    """Search one simulated scenario as ``dnatrack match`` does; count what it found."""
    scenario = simulate(reference, spec, seed=seed)
    observed = scenario.observed.select_loci(loci)
    ref_table = reference.table.select_loci(loci)
    n_pairs = pairs_compared(len(observed), 0)
    notes: list[str] = []
    calibration = search_calibration(
        reference, ref_table, scoring=scoring, relationships=tuple(KINSHIP) + ("same_animal",),
        pairs_compared=n_pairs, folder=None, notes=notes,
        expected_false_pairs=expected_false_pairs, new=observed,
        minimum_cutoff=minimum_cutoff)
    search = KinshipSearch.from_reference(
        ref_table, observed, **scoring.search_options(),
        relationships=("same_animal", *KINSHIP), min_loci=min(8, len(loci)),
        calibration=calibration)
    found = find_pairs(search, observed,
                       criteria=IdentityCriteria("moderate", min_loci=min(8, len(loci))))
    truth = {frozenset((t.item1, t.item2)): t.relationship for t in scenario.relationships}
    called = {frozenset((r["sample1"], r["sample2"])): r["relationship"] for r in found.rows}
    counts = {"pairs_compared": n_pairs, "false_pairs": 0, "related_called": 0,
              "within_share": float(calibration.notes.get("pairs_within_a_population", 1.0))}
    for relationship in ("same_animal", *KINSHIP):
        planted = [pair for pair, kind in truth.items() if kind == relationship]
        counts[f"{relationship}_planted"] = len(planted)
        counts[f"{relationship}_called_right"] = sum(called.get(p) == relationship
                                                     for p in planted)
        counts[f"{relationship}_called_any"] = sum(p in called for p in planted)
    counts["false_pairs"] = sum(pair not in truth for pair in called)
    # every pair's largest kinship LR, for the oracle cutoff
    rows, cols = np.triu_indices(len(observed), 1)
    log10_lr, compared = search.score_pairs(observed, rows, cols)
    kin = [search.relationships.index(r) for r in KINSHIP]
    best = log10_lr[:, kin].max(axis=1)
    ids = observed.profile_ids
    kinds = [truth.get(frozenset((ids[i], ids[j]))) for i, j in zip(rows, cols, strict=True)]
    counts["unrelated_scores"] = best[[kind is None for kind in kinds]]
    counts["planted_scores"] = {r: best[[kind == r for kind in kinds]] for r in KINSHIP}
    # planted pairs reaching their own relationship's cutoff: what the power predicts
    cutoffs = search.cutoffs_for(compared)
    for relationship in KINSHIP:
        r = search.relationships.index(relationship)
        mine = np.array([kind == relationship for kind in kinds])
        counts[f"{relationship}_passing"] = int(np.sum(
            (log10_lr[mine, r] >= cutoffs[mine, r]) & (compared[mine] >= search.min_loci)))
    power = power_summary(search, len(loci), loci_compared_shares(observed))
    counts["power"] = {name: row["power"] for name, row in power.items()}
    counts["power_se"] = {name: row["power_se"] for name, row in power.items()}
    counts["power_at_all_loci"] = {name: row["power_at_all_loci"]
                                   for name, row in power.items()}
    return counts


def neyman_pearson_ceiling(reference, loci, pairs: float, expected_false_pairs: float,
                           within_share: float, spec: ScenarioSpec,
                           n_simulations: int = 40_000) -> dict:
    """The most any decision rule can find at the operating point, per relationship: the power
    of the exact likelihood-ratio test of that relationship alone against unrelated
    (Neyman–Pearson), scored with each pair's true population's raw reference frequencies,
    θ = 0 and the simulator's error rates, at a false-positive rate of ``E / pairs`` (the whole
    budget spent on this one relationship) and, more generously still, ``E / (pairs ×
    within_share)`` (every pair across populations excluded for free). A rule that calls this
    relationship with at most ``E`` false pairs per search cannot find more true pairs than
    the first figure when the populations are known to it."""
    from matching.calibration import calibrate

    table = reference.table.select_loci(loci)
    errors = ErrorModel(spec.dropout_rate, spec.miscall_rate)
    out = {}
    for relationship in ("parent_offspring", "full_sibling"):
        row = {}
        for label, rate in (("all_pairs", expected_false_pairs / pairs),
                            ("within_population_pairs",
                             expected_false_pairs / max(pairs * within_share, 1.0))):
            # between_theta 0.999: each population's own counts (as the simulator draws)
            result = calibrate(table, theta=0.0, errors=errors, relationships=(relationship,),
                               false_positive_rate=min(rate, 0.5), loci_counts=(len(loci),),
                               n_simulations=n_simulations, frequencies="population",
                               between_theta=0.999)
            row[label] = round(result.power[relationship][len(loci)], 3)
        out[relationship] = row
    return out


def summarise(runs: list[dict], expected_false_pairs: float) -> dict:
    scores = ("within_share", "power", "power_se", "power_at_all_loci", "unrelated_scores",
              "planted_scores")
    total = {key: sum(run[key] for run in runs) for key in runs[0] if key not in scores}
    false = total["false_pairs"]
    summary = {
        "searches": len(runs),
        "pairs_compared_per_search": runs[0]["pairs_compared"],
        "false_pairs_per_search": round(false / len(runs), 3),
        "false_pairs_per_search_upper95": round(poisson_upper(false) / len(runs), 3),
        "expected_false_pairs_per_search": expected_false_pairs,
    }
    # the oracle: the cutoff letting exactly expected_false_pairs unrelated pairs per search in
    unrelated = np.sort(np.concatenate([run["unrelated_scores"] for run in runs]))[::-1]
    allowed = int(round(expected_false_pairs * len(runs)))
    oracle = float(unrelated[allowed]) if allowed < len(unrelated) else float("-inf")
    summary["oracle_cutoff"] = round(oracle, 3)
    for relationship in ("same_animal", *KINSHIP):
        planted = total[f"{relationship}_planted"]
        summary[relationship] = {
            "planted": planted,
            "recall": round(total[f"{relationship}_called_right"] / planted, 3) if planted
            else None,
            "found_as_any_relationship": round(total[f"{relationship}_called_any"] / planted, 3)
            if planted else None,
            "calibrated_power": round(float(np.mean([run["power"].get(relationship, np.nan)
                                                     for run in runs])), 3),
        }
        if relationship in KINSHIP and planted:
            # the power the runs stated against the share of planted pairs reaching their
            # relationship's cutoff, within binomial and Monte-Carlo error
            predicted = float(np.mean([run["power"][relationship] for run in runs]))
            observed = total[f"{relationship}_passing"] / planted
            spread = math.sqrt(predicted * (1 - predicted) / planted + float(np.mean(
                [run["power_se"][relationship] for run in runs])) ** 2)
            summary[relationship].update({
                "power_at_all_loci": round(float(np.mean(
                    [run["power_at_all_loci"][relationship] for run in runs])), 3),
                "observed_passing": round(observed, 3),
                "z": round((observed - predicted) / spread, 2) if spread > 0 else None})
            found = np.concatenate([run["planted_scores"][relationship] for run in runs])
            # strictly above: the unrelated pair at the oracle value itself is not let in
            summary[relationship]["oracle_recall"] = round(float(np.mean(found > oracle)), 3)
    return summary


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", nargs="+",
                        default=[r for r in REFERENCES if r != "rich_panel_30str_simulated"],
                        choices=list(REFERENCES),
                        help="reference sets (default: all but rich_panel_30str_simulated, a "
                             "30-STR panel simulated from the bundled sets' frequency spectra)")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--scorings", nargs="+", default=list(SCORINGS), choices=SCORINGS)
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--seizures", type=int, default=8)
    parser.add_argument("--items", type=int, default=25, help="items per seizure")
    parser.add_argument("--pairs", type=int, default=8,
                        help="planted pairs of each relationship per scenario")
    parser.add_argument("--expected-false-pairs", type=float, default=1.0)
    parser.add_argument("--miscall-rate", type=float, default=None,
                        help="miscall rate of the scoring error model (default: ErrorModel's; "
                             "the simulator miscalls at 0.005)")
    parser.add_argument("--dropout-rate", type=float, default=None,
                        help="dropout rate of the scoring error model (default: ErrorModel's)")
    parser.add_argument("--minimum-cutoff", type=float, default=MINIMUM_CUTOFF,
                        help=f"floor on the calibrated cutoffs (default {MINIMUM_CUTOFF:g})")
    parser.add_argument("--ceiling", action="store_true",
                        help="also compute the Neyman–Pearson ceiling of any decision rule "
                             "(neyman_pearson_ceiling)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    spec = ScenarioSpec(n_seizures=args.seizures, items_per_seizure=args.items,
                        same_animal_pairs=args.pairs // 2, parent_offspring_pairs=args.pairs,
                        full_sibling_pairs=args.pairs, half_sibling_pairs=args.pairs // 2)
    defaults = ErrorModel()
    errors = ErrorModel(
        defaults.dropout_rate if args.dropout_rate is None else args.dropout_rate,
        defaults.miscall_rate if args.miscall_rate is None else args.miscall_rate)
    results = []
    for name in args.references:
        reference = load(name, args.datasets)
        theta = theta_for(reference).value
        n_loci = reference.table.n_loci
        for n in sorted({n_loci, max(8, (2 * n_loci) // 3)}, reverse=True):
            loci = reference.table.loci[:n]
            for choice in args.scorings if n == n_loci else ["default"]:
                scoring = scoring_for(choice, reference, reference.table.select_loci(loci),
                                      theta, errors)
                start = time.perf_counter()
                runs = [run_scenario(reference, loci, scoring, spec, seed,
                                     args.expected_false_pairs, args.minimum_cutoff)
                        for seed in range(1, args.replicates + 1)]
                row = {"reference": name, "loci": n, "scoring": choice,
                       "description": scoring.describe(), "errors": errors.as_dict(),
                       "minimum_cutoff": args.minimum_cutoff,
                       **summarise(runs, args.expected_false_pairs),
                       **({"neyman_pearson_ceiling": neyman_pearson_ceiling(
                           reference, loci, runs[0]["pairs_compared"],
                           args.expected_false_pairs,
                           float(np.mean([run["within_share"] for run in runs])), spec)}
                          if args.ceiling else {}),
                       "seconds": round(time.perf_counter() - start, 1)}
                results.append(row)
                print(json.dumps(row), flush=True)
    print(table(results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return {"results": results}


def table(results: list[dict]) -> str:
    """The figures as a fixed-width table: recall per relationship, false pairs, the oracle
    cutoff and its recall, and the power the runs stated against the planted pairs that reached
    their relationship's cutoff (predicted / observed)."""
    lines = [f"{'reference':<28}{'loci':>5} {'scoring':<14}{'PO':>6}{'FS':>6}{'HS':>6}"
             f"{'SA':>6}   {'false/search':>12} {'(95% up)':>9} {'expected':>8}"
             f"   {'oracle cutoff':>13}{'PO':>6}{'FS':>6}{'HS':>6}"
             f"   {'PO pred/obs':>12}{'FS pred/obs':>12}"]
    for row in results:
        recall = [row[r]["recall"] for r in ("parent_offspring", "full_sibling",
                                             "half_sibling", "same_animal")]
        check = "".join(
            f"{row[r]['calibrated_power']:>6.0%}/{row[r].get('observed_passing', 0):<5.0%}"
            for r in ("parent_offspring", "full_sibling"))
        lines.append(
            f"{row['reference']:<28}{row['loci']:>5} {row['scoring']:<14}"
            + "".join(f"{'-' if v is None else f'{v:.0%}':>6}" for v in recall)
            + f"   {row['false_pairs_per_search']:>12.2f} "
              f"{row['false_pairs_per_search_upper95']:>9.2f} "
              f"{row['expected_false_pairs_per_search']:>8.2f}"
              f"   {row['oracle_cutoff']:>13.2f}"
            + "".join(f"{row[r].get('oracle_recall', 0):>6.0%}" for r in KINSHIP)
            + "   " + check)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
