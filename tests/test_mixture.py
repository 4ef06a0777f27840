"""Mixture proportions: EM and Gibbs kernels against plain twins, and known-truth checks."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from dnatrack.formats import read_genotypes
from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import load_reference_set
from matching import _mixture_kernels as kernels
from matching._rng_kernels import state_for
from matching.assignment import AssignmentModel
from matching.mixture import estimate_mixture
from tests.simulated_populations import SimulatedPopulations
from tests.splitmix_twin import PySplitMix, py_seed


# ---------------------------------------------------------------------- twins
def numpy_em(likelihood, tolerance, max_iterations):
    """EM for one group, vectorised numpy."""
    n_pop = likelihood.shape[1]
    pi = np.full(n_pop, 1.0 / n_pop)
    iteration = 0
    while iteration < max_iterations:
        iteration += 1
        weights = pi * likelihood
        updated = (weights / weights.sum(axis=1, keepdims=True)).mean(axis=0)
        change = np.abs(updated - pi).max()
        pi = updated
        if change <= tolerance:
            break
    return pi, iteration


def python_gibbs(likelihood, prior, n_sweeps, burn_in, seed, key, pi_init=None):
    """The Gibbs sampler for one group in plain Python, with the same random stream."""
    generator = PySplitMix(py_seed(seed), key)
    n, n_pop = likelihood.shape
    start = prior if pi_init is None else pi_init
    pi = [p / sum(start) for p in start]
    trace = []
    membership = np.zeros((n, n_pop))
    for sweep in range(n_sweeps):
        counts = [0.0] * n_pop
        for i in range(n):
            weights = [pi[p] * likelihood[i, p] for p in range(n_pop)]
            total = sum(weights)
            target = generator.uniform() * total
            running, chosen = 0.0, n_pop - 1
            for p in range(n_pop):
                running += weights[p]
                if running > target:
                    chosen = p
                    break
            counts[chosen] += 1
            if sweep >= burn_in:
                membership[i] += np.array(weights) / total
        draws = [generator.gamma(prior[p] + counts[p]) for p in range(n_pop)]
        pi = [d / sum(draws) for d in draws]
        trace.append(pi)
    return np.array(trace), membership / (n_sweeps - burn_in)


def random_likelihood(n, n_pop, seed):
    rng = np.random.default_rng(seed)
    log_likelihood = rng.normal(0, 3, size=(n, n_pop))
    return np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))


@pytest.mark.parametrize(("sizes", "n_pop"), [([40], 3), ([25, 1, 60], 5), ([10, 12], 1)])
def test_em_kernel_equals_numpy_twin(sizes, n_pop):
    likelihood = random_likelihood(sum(sizes), n_pop, seed=sum(sizes))
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    proportions, iterations = kernels.em_mixtures(likelihood, starts, 1e-10, 5000)
    for g in range(len(sizes)):
        pi, n_iter = numpy_em(likelihood[starts[g]:starts[g + 1]], 1e-10, 5000)
        np.testing.assert_allclose(proportions[g], pi, rtol=0, atol=1e-12)
        assert iterations[g] == n_iter


@pytest.mark.parametrize(("sizes", "n_pop", "prior"),
                         [([30], 4, 0.25), ([12, 20], 3, 1.0), ([5], 1, 0.5)])
def test_gibbs_kernel_equals_python_twin(sizes, n_pop, prior):
    likelihood = random_likelihood(sum(sizes), n_pop, seed=7 + n_pop)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    priors = np.full(n_pop, prior)
    keys = np.array([3, 11], dtype=np.int64)[: len(sizes)]
    pi = np.tile(priors / priors.sum(), (len(sizes), 1))
    states = np.array([state_for(np.uint64(py_seed(4)), k)[0] for k in keys], dtype=np.uint64)
    sums = np.zeros_like(likelihood)
    # Two pieces of 25 and 35 sweeps: the chain carries over between them.
    first = kernels.gibbs_mixtures(likelihood, starts, priors, pi, states, 0, 25, 10, sums)
    second = kernels.gibbs_mixtures(likelihood, starts, priors, pi, states, 25, 35, 10, sums)
    trace = np.concatenate([first, second], axis=1)
    membership = sums / 50
    for g in range(len(sizes)):
        rows = slice(starts[g], starts[g + 1])
        want_trace, want_membership = python_gibbs(likelihood[rows], priors.tolist(), 60, 10,
                                                   4, int(keys[g]))
        np.testing.assert_allclose(trace[g], want_trace, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(membership[rows], want_membership, rtol=1e-11, atol=1e-14)


# ---------------------------------------------------------------------- known truth
TRUE_PROPORTIONS = np.array([0.45, 0.3, 0.15, 0.1, 0.0])


@pytest.fixture(scope="module")
def scenario():
    sim = SimulatedPopulations.random(5, 12, 8, concentration=0.7, seed=70,
                                      populations_per_unit=2)
    rng = np.random.default_rng(71)
    model = AssignmentModel.from_table(sim.reference(50, rng, missing=0.05))
    return sim, model, rng


def seizure(sim, rng, n, proportions, name):
    sources = rng.choice(len(proportions), size=n, p=proportions)
    parts = [sim.sample(k, int((sources == k).sum()), rng, 0.05, prefix=f"{name}-{k}-",
                        label=False) for k in range(len(proportions)) if (sources == k).any()]
    table = GenotypeTable.concat(parts)
    return table.replace(group=[name] * len(table)), sources


def test_em_and_gibbs_agree_and_intervals_cover_the_truth(scenario):
    sim, model, rng = scenario
    table, _ = seizure(sim, rng, 300, TRUE_PROPORTIONS, "S1")
    result = estimate_mixture(model.assign(table, exclusion_simulations=0), seed=2)
    assert result.groups == ("S1",)
    assert result.em_converged.all()
    np.testing.assert_allclose(result.posterior_mean[0], result.em_proportions[0], atol=0.02)
    low, high = result.credible_interval()
    present = TRUE_PROPORTIONS > 0
    assert ((low[0] <= TRUE_PROPORTIONS) & (TRUE_PROPORTIONS <= high[0]))[present].all()
    # Dirichlet draws are never exactly zero: an absent source gets an interval hugging zero.
    assert (high[0, ~present] < 0.02).all()
    # Reporting units (pairs of populations) are sums of the population proportions.
    units = result.repunit_posterior_mean[0]
    np.testing.assert_allclose(units, [0.75, 0.25, 0.0], atol=0.08)
    np.testing.assert_allclose(units.sum(), 1.0)
    unit_low, unit_high = result.repunit_credible_interval()
    truth_units = np.array([0.75, 0.25])
    assert ((unit_low[0, :2] <= truth_units) & (truth_units <= unit_high[0, :2])).all()
    assert unit_high[0, 2] < 0.02


def test_credible_interval_coverage_over_replicates(scenario):
    """Across replicate seizures, the 95% intervals cover the true proportions about 95% of
    the time (not fewer than 85% here)."""
    sim, model, rng = scenario
    covered = []
    for replicate in range(24):
        table, _ = seizure(sim, rng, 120, TRUE_PROPORTIONS[:4] / TRUE_PROPORTIONS[:4].sum(),
                           f"R{replicate}")
        result = estimate_mixture(model.assign(table, exclusion_simulations=0), n_sweeps=800,
                                  burn_in=100, seed=replicate)
        low, high = result.credible_interval()
        truth = np.r_[TRUE_PROPORTIONS[:4] / TRUE_PROPORTIONS[:4].sum(), 0.0]
        covered.extend(((low[0] <= truth) & (truth <= high[0]))[:4])
    assert np.mean(covered) >= 0.85


def test_seizures_are_assigned_to_their_true_source(scenario):
    sim, model, rng = scenario
    tables, truth = [], {}
    for k, source in enumerate([0, 2, 3, 1]):
        proportions = np.zeros(5)
        proportions[source] = 1.0
        table, _ = seizure(sim, rng, 15, proportions, f"seizure{k}")
        tables.append(table)
        truth[f"seizure{k}"] = source
    assignment = model.assign(GenotypeTable.concat(tables), exclusion_simulations=2000, seed=1)
    result = estimate_mixture(assignment, seed=3)
    for g, name in enumerate(result.groups):
        assert np.argmax(result.posterior_mean[g]) == truth[name]
        assert result.posterior_mean[g, truth[name]] > 0.8
        members = result.group_index == g
        assert (assignment.best[members] == truth[name]).mean() > 0.9
    assert assignment.unsampled.mean() < 0.1


def test_membership_and_records(scenario):
    sim, model, rng = scenario
    first, _ = seizure(sim, rng, 40, [0.5, 0.5, 0, 0, 0], "A")
    second, _ = seizure(sim, rng, 30, [0, 0, 0, 0.5, 0.5], "B")
    both = GenotypeTable.concat([second, first])  # groups interleave nothing, B first
    result = estimate_mixture(model.assign(both, exclusion_simulations=0), seed=5)
    assert result.groups == ("B", "A")
    np.testing.assert_allclose(result.membership.sum(axis=1), 1.0)
    np.testing.assert_allclose(result.em_membership.sum(axis=1), 1.0)
    np.testing.assert_allclose(result.repunit_membership.sum(axis=1), 1.0)
    # Membership at the EM estimate averages to the EM proportions (its fixed point).
    for g in range(2):
        rows = result.group_index == g
        np.testing.assert_allclose(result.em_membership[rows].mean(axis=0),
                                   result.em_proportions[g], atol=1e-6)
    records = result.proportion_records()
    assert len(records) == 2 * 5
    assert {r["mixture_collection"] for r in records} == {"A", "B"}
    assert all(r["pi_lo95"] <= r["pi"] <= r["pi_hi95"] for r in records)
    unit_rows = result.repunit_records()
    assert len(unit_rows) == 2 * 3
    long = result.membership_records()
    assert len(long) == len(both) * 5
    assert sum(r["PofZ"] for r in long if r["indiv"] == both.profile_ids[0]) == pytest.approx(1)
    assert len(result.membership_records(minimum=0.5)) < len(long)


def test_a_groups_chain_does_not_depend_on_the_other_groups(scenario):
    sim, model, rng = scenario
    first, _ = seizure(sim, rng, 25, [0.2, 0.2, 0.2, 0.2, 0.2], "X")
    second, _ = seizure(sim, rng, 25, [0.2, 0.2, 0.2, 0.2, 0.2], "Y")
    alone = estimate_mixture(model.assign(first, exclusion_simulations=0), seed=9)
    together = estimate_mixture(
        model.assign(GenotypeTable.concat([second, first]), exclusion_simulations=0), seed=9
    )
    np.testing.assert_array_equal(alone.trace[0], together.trace[1])
    np.testing.assert_array_equal(alone.membership, together.membership[25:])
    assert zlib.crc32(b"X") != zlib.crc32(b"Y")


def test_explicit_groups_and_errors(scenario):
    sim, model, rng = scenario
    table, _ = seizure(sim, rng, 20, [1, 0, 0, 0, 0], "G")
    assignment = model.assign(table, exclusion_simulations=0)
    split = estimate_mixture(assignment, groups=["a"] * 10 + ["b"] * 10, n_sweeps=50,
                             burn_in=5)
    assert split.groups == ("a", "b")
    assert split.trace.shape == (2, 50, 5)
    unlabeled = model.assign(table.replace(group=None), exclusion_simulations=0)
    assert estimate_mixture(unlabeled, n_sweeps=20, burn_in=0).groups == ("all",)
    with pytest.raises(ValueError, match="burn_in"):
        estimate_mixture(assignment, n_sweeps=10, burn_in=10)
    with pytest.raises(ValueError, match="n_sweeps"):
        estimate_mixture(assignment, n_sweeps=0)
    with pytest.raises(ValueError, match="prior"):
        estimate_mixture(assignment, prior=-1.0)
    with pytest.raises(ValueError, match="groups has 3 entries"):
        estimate_mixture(assignment, groups=["a", "b", "c"])
    with pytest.raises(ValueError, match="credible level"):
        split.credible_interval(1.5)
    with pytest.raises(ValueError, match="no samples"):
        estimate_mixture(model.assign(table.take([]), exclusion_simulations=0))


# ---------------------------------------------------------------------- real data
def test_chinook_mixtures_dominated_by_central_valley_fall(shared_datasets):
    reference = load_reference_set(shared_datasets / "chinook_baseline_rubias.csv")
    mixture = read_genotypes(shared_datasets / "chinook_mixture_rubias.csv")
    model = AssignmentModel.from_reference(reference)
    result = estimate_mixture(model.assign(mixture, exclusion_simulations=0), seed=1)
    assert sorted(result.groups) == ["rec1", "rec2", "rec3"]
    assert result.group_sizes.sum() == 2256
    unit = result.repunit_names.index("CentralValleyfa")
    means = result.repunit_posterior_mean
    low, _ = result.repunit_credible_interval()
    for g in range(3):
        assert np.argmax(means[g]) == unit
        assert low[g, unit] > 0.7
        assert result.repunit_em_proportions[g, unit] == pytest.approx(means[g, unit], abs=0.02)
