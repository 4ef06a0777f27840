"""End to end on a simulated scenario with known truth: the searches find the planted
relationships and flag unrelated pairs no more often than the calibration promises."""

from itertools import combinations

import numpy as np
import pytest

from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import PopulationInfo, ReferenceSet
from dnatrack.simulate import ScenarioSpec, simulate
from matching.calibration import calibrate
from matching.identity import IdentityCriteria, identity_search
from matching.kinship import KinshipSearch
from matching.relationships import RELATIONSHIPS, ErrorModel
from matching.theta import select_theta


def synthetic_reference(n_loci=24, n_alleles=14, per_population=80, seed=7) -> ReferenceSet:
    """Four populations whose frequencies scatter around shared ones (F_ST of a few %).

    24 loci of 14 alleles: with 16 such STRs the calibrated parent–offspring power at
    α = 0.01 / pairs is only about 56 %, so "every parent–offspring pair is found" needs a
    panel this informative (RhODIS types 23 STRs).
    """
    rng = np.random.default_rng(seed)
    base = rng.dirichlet(np.full(n_alleles, 3.0), size=n_loci)
    populations, alleles, labels = [], [], []
    for k, (name, lat, lon) in enumerate(
        [("north", 1.0, 36.0), ("east", -3.0, 38.0), ("south", -20.0, 25.0),
         ("west", -2.0, 12.0)]
    ):
        freqs = np.array([rng.dirichlet(25 * f + 0.05) for f in base])
        draws = np.stack([rng.choice(n_alleles, size=(per_population, 2), p=freqs[locus])
                          for locus in range(n_loci)], axis=1)
        alleles.append(100 + 2 * draws)
        labels += [name] * per_population
        populations.append(PopulationInfo(name, f"site {k}", lat, lon, {"region": name}))
    table = GenotypeTable(np.concatenate(alleles), [f"ref{i}" for i in range(len(labels))],
                          [f"STR{j}" for j in range(n_loci)], population=labels)
    return ReferenceSet("synthetic_simulated", "test species", table, tuple(populations),
                        simulated=True, default_repunit_level="region")


@pytest.fixture(scope="module")
def scenario():
    reference = synthetic_reference()
    spec = ScenarioSpec(n_seizures=6, items_per_seizure=40, same_animal_pairs=12,
                        parent_offspring_pairs=12, full_sibling_pairs=6, half_sibling_pairs=6,
                        missing_rate=0.02, dropout_rate=0.01, miscall_rate=0.003)
    return reference, simulate(reference, spec, seed=11)


def truth_pairs(scenario, relationship):
    return [(r.item1, r.item2) for r in scenario.relationships if r.relationship == relationship]


def error_free(scenario):
    return {item.item_id for item in scenario.items if not item.errors}


def reported(hits, ids):
    return {frozenset((r["sample1"], r["sample2"])): r for r in hits.records(ids, ids)}


def test_planted_pairs_are_found_and_unrelated_pairs_are_not(scenario):
    reference, sim = scenario
    observed = sim.observed
    ids = observed.profile_ids
    theta = select_theta(reference.table).value
    errors = ErrorModel(dropout_rate=0.01, miscall_rate=0.003)
    n_pairs = len(observed) * (len(observed) - 1) / 2
    calibration = calibrate(reference.table, theta=theta, errors=errors,
                            pairs_compared=n_pairs, n_simulations=20_000, seed=3)
    search = KinshipSearch.from_reference(reference.table, observed, theta=theta, errors=errors,
                                          min_loci=8, calibration=calibration)
    found = reported(search.all_pairs(observed), ids)
    clean = error_free(sim)

    tusk_pairs = [p for p in truth_pairs(sim, "same_animal") if set(p) <= clean]
    po_pairs = [p for p in truth_pairs(sim, "parent_offspring") if set(p) <= clean]
    assert tusk_pairs and po_pairs
    for pair in tusk_pairs:
        assert found[frozenset(pair)]["relationship"] == "same_animal"
    for pair in po_pairs:
        assert frozenset(pair) in found, f"parent-offspring pair {pair} was not found"
        assert found[frozenset(pair)]["relationship"] in ("parent_offspring", "full_sibling")

    related = {frozenset((r.item1, r.item2)) for r in sim.relationships}
    false_positives = [pair for pair in found if pair not in related]
    # The calibrated rate is 0.01 / pairs compared per relationship: 0.04 expected in all.
    assert len(false_positives) <= 1


def test_false_positives_follow_a_looser_calibrated_rate(scenario):
    reference, sim = scenario
    observed = sim.observed
    theta = select_theta(reference.table).value
    errors = ErrorModel(dropout_rate=0.01, miscall_rate=0.003)
    alpha = 2e-3
    calibration = calibrate(reference.table, theta=theta, errors=errors,
                            false_positive_rate=alpha, n_simulations=20_000, seed=4)
    search = KinshipSearch.from_reference(reference.table, observed, theta=theta, errors=errors,
                                          min_loci=8, calibration=calibration)
    hits = search.all_pairs(observed)
    ids = observed.profile_ids
    related = {frozenset((r.item1, r.item2)) for r in sim.relationships}
    # Items of one animal, and items of parents and offspring, are related; so are
    # relatives of relatives. Count only pairs of items whose animals share no relative.
    family = _families(sim)
    unrelated_pairs = sum(
        1 for a, b in combinations(ids, 2)
        if frozenset((a, b)) not in related and family[a].isdisjoint(family[b])
    )
    for r, name in enumerate(RELATIONSHIPS):
        flagged = sum(
            1 for k in range(len(hits)) if hits.passes[k, r]
            and frozenset((ids[hits.query_index[k]], ids[hits.target_index[k]])) not in related
            and family[ids[hits.query_index[k]]].isdisjoint(family[ids[hits.target_index[k]]])
        )
        expected = alpha * unrelated_pairs
        assert flagged <= expected + 4 * np.sqrt(expected) + 2, (name, flagged, expected)


def _families(sim) -> dict[str, set[str]]:
    """Item → the animals it is or descends from (itself and its parents)."""
    parents = {a.animal_id: set(a.parents) for a in sim.animal_records}
    return {item.item_id: {item.animal_id, *parents[item.animal_id]} for item in sim.items}


def test_identity_search_tolerates_one_dropout_at_moderate_stringency(scenario):
    _, sim = scenario
    observed = sim.observed
    ids = list(observed.profile_ids)
    kinds = {item.item_id: [kind for _, kind in item.errors] for item in sim.items}
    moderate = {frozenset(p) for p in
                (tuple(r.values())[:2] for r in identity_search(
                    observed, IdentityCriteria("moderate", max_mismatches=1, min_loci=8)
                ).records(observed.profile_ids))}
    high = {frozenset(p) for p in
            (tuple(r.values())[:2] for r in identity_search(
                observed, IdentityCriteria("high", min_loci=8)).records(observed.profile_ids))}
    with_dropout = [
        pair for pair in truth_pairs(sim, "same_animal")
        if sorted(kinds[pair[0]] + kinds[pair[1]]) == ["dropout"]
    ]
    error_free_pairs = [p for p in truth_pairs(sim, "same_animal")
                        if not kinds[p[0]] and not kinds[p[1]]]
    for pair in error_free_pairs:
        assert frozenset(pair) in high
    for pair in with_dropout:
        assert frozenset(pair) in moderate
        assert frozenset(pair) not in high
    assert all(set(p) <= set(ids) for p in moderate)
