"""Unsampled-source detection: the exclusion test, its random numbers, and flagging."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from dnatrack.genotypes import GenotypeTable
from matching import _rng_kernels as rng
from matching.assignment import AssignmentModel, self_assign
from tests.assignment_formulas import (
    reference_and_queries,
    slow_counts,
    slow_genotype_distribution,
    slow_genotype_probability,
)
from tests.simulated_populations import SimulatedPopulations
from tests.splitmix_twin import PySplitMix, py_seed


def test_splitmix_reference_outputs():
    """First outputs of SplitMix64 from state 0, as printed by the reference C code."""
    state = np.zeros(1, dtype=np.uint64)
    outputs = [int(rng.next_uint64(state)) for _ in range(4)]
    assert outputs == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F,
                       0xF88BB8A8724C81EC]


def test_uniform_stream_equals_python_twin():
    state = rng.state_for(np.uint64(py_seed(5)), 17)
    twin = PySplitMix(py_seed(5), 17)
    assert [rng.uniform(state) for _ in range(50)] == [twin.uniform() for _ in range(50)]


@pytest.mark.parametrize("shape", [0.05, 0.7, 1.0, 3.3])
def test_gamma_stream_equals_python_twin(shape):
    state = rng.state_for(np.uint64(py_seed(6)), 2)
    twin = PySplitMix(py_seed(6), 2)
    got = [rng.gamma(state, shape) for _ in range(200)]
    want = [twin.gamma(shape) for _ in range(200)]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("shape", [0.01, 0.3, 1.0, 2.5, 40.0])
def test_gamma_moments(shape):
    state = rng.state_for(np.uint64(py_seed(1)), 0)
    draws = np.array([rng.gamma(state, shape) for _ in range(40_000)])
    assert (draws >= 0).all()
    standard_error = math.sqrt(shape / len(draws))
    assert abs(draws.mean() - shape) < 5 * standard_error
    if shape >= 0.3:  # below that the sample variance is too heavy-tailed to check
        assert draws.var() == pytest.approx(shape, rel=0.1)
    if shape < 1:
        # The boosted branch: P(X ≤ x) = x^a / Γ(a + 1) (1 + O(x)) for small x.
        x = 1e-6
        expected = x**shape / math.gamma(shape + 1)
        share = (draws <= x).mean()
        assert abs(share - expected) < 5 * math.sqrt(expected * (1 - expected) / len(draws))


def test_standard_normal_moments():
    state = rng.state_for(np.uint64(py_seed(2)), 0)
    draws = np.array([rng.standard_normal(state) for _ in range(40_000)])
    assert abs(draws.mean()) < 0.02
    assert draws.std() == pytest.approx(1.0, abs=0.02)


# ---------------------------------------------------------------------- exclusion twin
def py_simulated_scores(reference, population, population_index, n_simulations, seed):
    """Per-locus log-probabilities of genotypes simulated from one population, in plain
    Python: the population's own random stream, locus after locus."""
    counts, n_alleles = slow_counts(reference)
    generator = PySplitMix(py_seed(seed), population_index)
    scores = {}
    for locus in reference.loci:
        if n_alleles[locus] == 0:
            continue
        alleles = sorted(reference.alleles_at(locus).tolist())
        dist = slow_genotype_distribution(counts[(population, locus)], n_alleles[locus],
                                          alleles)
        scores[locus] = [math.log(dist[draw(generator, dist)][1])
                         for _ in range(n_simulations)]
    return scores


def draw(generator, dist):
    """Index of a genotype drawn by inverting the running sum of its probabilities."""
    cumulative = list(itertools.accumulate(p for _, p in dist))
    u = generator.uniform() * cumulative[-1]
    return next(k for k, c in enumerate(cumulative) if c > u)


def p_value(simulated, observed):
    limit = observed + 1e-9 * (1 + abs(observed))
    return (sum(v <= limit for v in simulated) + 1) / (len(simulated) + 1)


@pytest.mark.parametrize(("n_loci", "n_alleles", "missing", "seed"),
                         [(6, 4, 0.2, 1), (10, 2, 0.1, 2), (3, 1, 0.0, 3)])
def test_exclusion_p_values_equal_python_twin(n_loci, n_alleles, missing, seed):
    reference, queries = reference_and_queries(n_loci, n_alleles, missing, seed)
    model = AssignmentModel.from_table(reference)
    n_sim = 300
    result = model.assign(queries, exclusion_simulations=n_sim, seed=seed)
    simulated = {}
    for i in range(len(queries)):
        best = int(result.best[i])
        if best not in simulated:
            simulated[best] = py_simulated_scores(reference, model.populations[best], best,
                                                  n_sim, seed)
        typed = [locus for j, locus in enumerate(queries.loci)
                 if queries.alleles[i, j, 0] >= 0 and locus in simulated[best]]
        totals = [0.0] * n_sim
        for locus in typed:
            totals = [t + v for t, v in zip(totals, simulated[best][locus], strict=True)]
        assert result.exclusion_p_value[i] == p_value(totals, result.log_likelihood[i, best])


def test_exclusion_leave_one_out_equals_python_twin():
    """Reference animals against their own population get their own simulations, drawn at
    their typed loci from the predictive without their alleles, from their row's stream."""
    reference, _ = reference_and_queries(5, 3, 0.1, 4)
    model = AssignmentModel.from_table(reference)
    result = self_assign(model, exclusion_simulations=200, seed=9).assignment
    counts, n_alleles = slow_counts(reference)
    checked = 0
    for i in range(len(reference)):
        best = int(result.best[i])
        population = model.populations[best]
        if population != reference.population[i]:
            continue  # scored with the population's shared simulations, checked above
        checked += 1
        generator = PySplitMix(py_seed(9), i)
        totals = [0.0] * 200
        for j, locus in enumerate(reference.loci):
            a, b = (int(v) for v in reference.alleles[i, j])
            if a < 0 or n_alleles[locus] == 0:
                continue
            counter = Counter(counts[(population, locus)])
            counter[a] -= 1
            counter[b] -= 1
            alleles = sorted(reference.alleles_at(locus).tolist())
            dist = slow_genotype_distribution(counter, n_alleles[locus], alleles)
            totals = [t + math.log(dist[draw(generator, dist)][1]) for t in totals]
        assert result.exclusion_p_value[i] == p_value(totals, result.log_likelihood[i, best])
    assert checked > 10


def test_exclusion_p_value_matches_exact_enumeration():
    """Monte-Carlo p-value against the exact share of multilocus genotypes with a lower
    likelihood, enumerated over every genotype combination at three loci."""
    reference, queries = reference_and_queries(3, 3, 0.0, 8)
    model = AssignmentModel.from_table(reference)
    n_sim = 20_000
    result = model.assign(queries, exclusion_simulations=n_sim, seed=3)
    counts, n_alleles = slow_counts(reference)
    for i in range(len(queries)):
        population = model.populations[result.best[i]]
        per_locus = []
        for locus in reference.loci:
            alleles = sorted(reference.alleles_at(locus).tolist())
            per_locus.append(slow_genotype_distribution(counts[(population, locus)],
                                                        n_alleles[locus], alleles))
        observed = sum(
            math.log(slow_genotype_probability(counts[(population, locus)], n_alleles[locus],
                                               *queries.alleles[i, j].tolist()))
            for j, locus in enumerate(reference.loci)
        )
        exact = 0.0
        for combination in itertools.product(*per_locus):
            probability = math.prod(p for _, p in combination)
            if sum(math.log(p) for _, p in combination) <= observed + 1e-9:
                exact += probability
        standard_error = math.sqrt(max(exact * (1 - exact), 1e-4) / n_sim)
        assert abs(result.exclusion_p_value[i] - exact) < 5 * standard_error + 1 / n_sim


def test_p_values_do_not_depend_on_chunking():
    reference, queries = reference_and_queries(8, 5, 0.1, 10)
    model = AssignmentModel.from_table(reference)
    whole = model.assign(queries, exclusion_simulations=500, seed=4)
    chunked = model.assign(queries, exclusion_simulations=500, seed=4, chunk_size=3)
    np.testing.assert_array_equal(whole.exclusion_p_value, chunked.exclusion_p_value)
    np.testing.assert_array_equal(whole.z_score, chunked.z_score)
    np.testing.assert_array_equal(whole.log_likelihood, chunked.log_likelihood)
    other_seed = model.assign(queries, exclusion_simulations=500, seed=5)
    assert not np.array_equal(whole.exclusion_p_value, other_seed.exclusion_p_value)


# ---------------------------------------------------------------------- flagging
@pytest.fixture(scope="module")
def held_out_scenario():
    """Eight differentiated populations; the reference holds seven of them."""
    sim = SimulatedPopulations.random(8, 14, 8, concentration=0.8, seed=50,
                                      populations_per_unit=2)
    generator = np.random.default_rng(51)
    reference = sim.reference(40, generator, missing=0.05, populations=list(range(7)))
    sampled = GenotypeTable.concat(
        [sim.sample(k, 30, generator, 0.05, prefix=f"in{k}-") for k in range(7)]
    )
    unsampled = sim.sample(7, 40, generator, 0.05, prefix="out-")
    return AssignmentModel.from_table(reference), sampled, unsampled


def test_samples_of_an_unsampled_population_are_flagged(held_out_scenario):
    model, sampled, unsampled = held_out_scenario
    inside = model.assign(sampled, exclusion_simulations=10_000, seed=1)
    outside = model.assign(unsampled, exclusion_simulations=10_000, seed=1)
    assert outside.unsampled.mean() >= 0.9
    # At alpha = 0.01 about 1% of samples from sampled populations are flagged by chance.
    assert inside.unsampled.mean() <= 0.04
    # The samples that do come from the reference are assigned to their population.
    truth = np.array([model.populations.index(p) for p in sampled.population])
    assert (inside.best == truth).mean() > 0.95


def test_z_scores_flag_an_unsampled_population_without_simulation(held_out_scenario):
    model, sampled, unsampled = held_out_scenario
    inside = model.assign(sampled, exclusion_simulations=0)
    outside = model.assign(unsampled, exclusion_simulations=0)
    assert np.median(outside.z_score) < -3
    assert abs(np.median(inside.z_score)) < 0.5
    assert outside.unsampled.mean() >= 0.85
    # The log-likelihood is left-skewed with few loci, so the normal rule flags more than
    # alpha of the sampled animals; the simulated exclusion test above does not.
    assert inside.unsampled.mean() <= 0.08
    assert inside.z_threshold == pytest.approx(-2.3263478740408408)
    assert inside.parameters()["unsampled_rule"].startswith("z-score <")


def test_self_assignment_tables():
    sim = SimulatedPopulations.random(4, 6, 4, concentration=1.5, seed=60,
                                      populations_per_unit=2)
    reference = sim.reference([20, 15, 10, 25], np.random.default_rng(61), missing=0.1)
    result = self_assign(AssignmentModel.from_table(reference))
    assignment = result.assignment
    truth = np.array([int(p[3:]) for p in reference.population])
    inferred = assignment.best
    for i in range(4):
        for j in range(4):
            assert result.confusion[i, j] == ((truth == i) & (inferred == j)).sum()
    assert result.accuracy == pytest.approx((truth == inferred).mean())
    unit_truth = truth // 2
    unit_inferred = np.array([int(assignment.repunit_names[k][4:])
                              for k in assignment.best_repunit])
    assert result.repunit_accuracy == pytest.approx((unit_truth == unit_inferred).mean())
    np.testing.assert_allclose(
        result.population_accuracy,
        [(inferred[truth == k] == k).mean() for k in range(4)],
    )
    records = assignment.records()
    assert records[0]["collection"] == reference.population[0]
    assert records[0]["repunit"] == sim.repunits[truth[0]]
    assert {r["inferred_repunit"] for r in records} <= set(sim.repunits)
    assert sum(r["n"] for r in result.confusion_records()) == len(reference)
    z = result.z_score_summary()
    assert z["overall"]["n"] == len(reference)
    assert z["overall"]["mean"] == pytest.approx(np.nanmean(assignment.z_score))
    assert set(z["per_population"]) == set(sim.names)
