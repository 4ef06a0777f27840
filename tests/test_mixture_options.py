"""Mixture options of rubias's ``infer_mixture`` and the assessment of a reference: each
changes what it should."""

from __future__ import annotations

import numpy as np
import pytest

from dnatrack.genotypes import GenotypeTable
from matching.assignment import AssignmentModel
from matching.mixture import (
    MixtureChain,
    assess_reference,
    bootstrap_repunit_proportions,
    dirichlet_prior,
    estimate_mixture,
)
from tests.simulated_populations import SimulatedPopulations
from tests.test_mixture import seizure as seizure_with_sources


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def scenario():
    # 6 populations in 3 reporting units of 2; moderately differentiated.
    sim = SimulatedPopulations.random(6, 10, 6, concentration=1.0, seed=80,
                                      populations_per_unit=2)
    rng = np.random.default_rng(81)
    model = AssignmentModel.from_table(sim.reference(40, rng, missing=0.05))
    return sim, model, rng


def seizure(sim, rng, n, proportions, name):
    """A seizure of ``n`` samples drawn with ``proportions`` (its true sources left out)."""
    return seizure_with_sources(sim, rng, n, proportions, name)[0]


# ---------------------------------------------------------------------- prior
def test_prior_by_population_and_by_reporting_unit():
    populations = ["a1", "a2", "a3", "b1"]
    units = ["A", "A", "A", "B"]
    np.testing.assert_allclose(dirichlet_prior(populations, units), 0.25)
    np.testing.assert_allclose(dirichlet_prior(populations, units, total=2.0), 0.5)
    # A unit's weight is spread over its populations, so A and B carry equal weight.
    np.testing.assert_allclose(dirichlet_prior(populations, units, {"A": 0.5, "B": 0.5}),
                               [0.5 / 3, 0.5 / 3, 0.5 / 3, 0.5])
    # rubias's DEFAULT_PI for every population not listed.
    np.testing.assert_allclose(dirichlet_prior(populations, units, {"a2": 4, "DEFAULT_PI": 0.1}),
                               [0.1, 4, 0.1, 0.1])
    with pytest.raises(ValueError, match="neither a population nor a reporting unit"):
        dirichlet_prior(populations, units, {"C": 1})
    with pytest.raises(ValueError, match="both alone and through"):
        dirichlet_prior(populations, units, {"A": 1, "a1": 2})
    with pytest.raises(ValueError, match="positive"):
        dirichlet_prior(populations, units, {"a1": 0})


def test_a_strong_prior_pulls_the_proportions(scenario):
    sim, model, rng = scenario
    table = seizure(sim, rng, 40, [0.5, 0.5, 0, 0, 0, 0], "P")
    assignment = model.assign(table, exclusion_simulations=0)
    plain = estimate_mixture(assignment, n_sweeps=600, burn_in=100, seed=1)
    weights = dirichlet_prior(model.populations, model.repunits, {"DEFAULT_PI": 0.1,
                                                                  model.populations[5]: 200.0})
    pulled = estimate_mixture(assignment, n_sweeps=600, burn_in=100, seed=1, prior=weights)
    # 200 pseudo-fish against 40 real ones: population 5 takes most of the posterior.
    assert plain.posterior_mean[0, 5] < 0.05
    assert pulled.posterior_mean[0, 5] > 0.7
    assert pulled.posterior_mean[0, :2].sum() < plain.posterior_mean[0, :2].sum() - 0.5
    # EM is maximum likelihood: no prior in it.
    np.testing.assert_array_equal(plain.em_proportions, pulled.em_proportions)


def test_pi_init_and_thinning(scenario):
    sim, model, rng = scenario
    assignment = model.assign(seizure(sim, rng, 30, [0.3, 0.3, 0.4, 0, 0, 0], "T"),
                              exclusion_simulations=0)
    start = np.array([0.9, 0.02, 0.02, 0.02, 0.02, 0.02])
    default = estimate_mixture(assignment, n_sweeps=300, burn_in=50, seed=2)
    started = estimate_mixture(assignment, n_sweeps=300, burn_in=50, seed=2, pi_init=start * 5)
    np.testing.assert_allclose(started.pi_init, start)
    # The first sweep allocates the fish by the initial proportions.
    first = estimate_mixture(assignment, n_sweeps=1, burn_in=0, seed=2, pi_init=start)
    weights = start * np.exp(assignment.log_likelihood
                             - assignment.log_likelihood.max(axis=1, keepdims=True))
    np.testing.assert_allclose(first.membership, weights / weights.sum(axis=1, keepdims=True),
                               rtol=1e-12)
    # ... and the chain forgets where it started.
    np.testing.assert_allclose(started.posterior_mean, default.posterior_mean, atol=0.06)
    thinned = estimate_mixture(assignment, n_sweeps=300, burn_in=50, seed=2, thin=7)
    np.testing.assert_array_equal(thinned.trace_sweeps, np.arange(0, 300, 7))
    np.testing.assert_array_equal(thinned.trace[0], default.trace[0, ::7])
    np.testing.assert_array_equal(thinned.posterior_mean[0],
                                  default.trace[0, 56::7].mean(axis=0))
    # Membership averages every sweep after burn-in, thinned or not.
    np.testing.assert_array_equal(thinned.membership, default.membership)
    with pytest.raises(ValueError, match="pi_init"):
        estimate_mixture(assignment, pi_init=[1.0, 0.0, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="thin"):
        estimate_mixture(assignment, n_sweeps=20, burn_in=15, thin=30)


# ---------------------------------------------------------------------- trace and resume
def test_a_resumed_chain_equals_the_uninterrupted_one(scenario, tmp_path):
    sim, model, rng = scenario
    table = GenotypeTable.concat([seizure(sim, rng, 25, [0.2] * 5 + [0.0], "R1"),
                                  seizure(sim, rng, 15, [0, 0, 0.5, 0.5, 0, 0], "R2")])
    assignment = model.assign(table, exclusion_simulations=0)
    settings = dict(n_sweeps=1000, burn_in=150, thin=3, seed=7, checkpoint_every=200)
    whole = estimate_mixture(assignment, **settings)

    path = tmp_path / "chain.npz"

    def save_then_stop(chain):
        chain.save(path)
        if chain.sweeps_done == 600:
            raise Interrupted

    with pytest.raises(Interrupted):
        estimate_mixture(assignment, checkpoint=save_then_stop, **settings)
    saved = MixtureChain.load(path)
    assert saved.sweeps_done == 600
    resumed = estimate_mixture(assignment, resume=saved, **settings)
    np.testing.assert_array_equal(resumed.trace, whole.trace)
    np.testing.assert_array_equal(resumed.trace_sweeps, whole.trace_sweeps)
    np.testing.assert_array_equal(resumed.membership, whole.membership)
    np.testing.assert_array_equal(resumed.posterior_mean, whole.posterior_mean)
    # Resuming with other settings or another seed is refused.
    with pytest.raises(ValueError, match="cannot be resumed"):
        estimate_mixture(assignment, resume=MixtureChain.load(path),
                         **{**settings, "seed": 8})
    with pytest.raises(ValueError, match="not a saved mixture chain"):
        (tmp_path / "junk.npz").write_text("junk")
        MixtureChain.load(tmp_path / "junk.npz")


# ---------------------------------------------------------------------- known origin
def test_fish_of_known_origin_are_fixed(scenario):
    sim, model, rng = scenario
    table = seizure(sim, rng, 30, [0.5, 0, 0.5, 0, 0, 0], "K")
    assignment = model.assign(table, exclusion_simulations=0)
    known = [model.populations[4]] * 10 + [None] * 20
    result = estimate_mixture(assignment, known=known, n_sweeps=500, burn_in=50, seed=3)
    np.testing.assert_array_equal(result.membership[:10, 4], 1.0)
    np.testing.assert_array_equal(result.em_membership[:10, 4], 1.0)
    # 10 of 30 fish are fixed to population 4, which otherwise explains none of them.
    assert result.em_proportions[0, 4] == pytest.approx(1 / 3, abs=0.02)
    free = estimate_mixture(assignment, n_sweeps=500, burn_in=50, seed=3)
    assert free.posterior_mean[0, 4] < 0.1 < 0.25 < result.posterior_mean[0, 4]
    assert result.membership_records()[4]["known_collection"] == model.populations[4]
    with pytest.raises(ValueError, match="not a reference population"):
        estimate_mixture(assignment, known=["nowhere"] + [None] * 29)


# ---------------------------------------------------------------------- bootstrap
def test_bootstrap_moves_a_biased_estimate_towards_the_truth():
    """Weakly differentiated units: misassignment pulls a small unit's estimate up and a
    large one's down; the parametric bootstrap takes a good part of that bias back out (not
    all: its simulated fish are reference animals scored leave-one-out, which fit the
    reference a little better than new fish do)."""
    sim = SimulatedPopulations.random(4, 4, 4, concentration=4.0, seed=90,
                                      populations_per_unit=2)
    rng = np.random.default_rng(91)
    model = AssignmentModel.from_table(sim.reference(60, rng))
    truth = np.array([0.85, 0.15])
    plain_error, corrected_error = [], []
    for k in range(6):
        table = seizure(sim, rng, 150, [0.425, 0.425, 0.075, 0.075], f"B{k}")
        estimate = estimate_mixture(model.assign(table, exclusion_simulations=0),
                                    n_sweeps=400, burn_in=50, seed=k)
        plain = estimate.repunit_posterior_mean[0].copy()
        corrected = bootstrap_repunit_proportions(estimate, model, n_iterations=30,
                                                  n_sweeps=300, burn_in=50).bootstrap_repunit[0]
        np.testing.assert_allclose(corrected.sum(), 1.0)
        plain_error.append(plain - truth)
        corrected_error.append(corrected - truth)
    plain_bias = np.mean(plain_error, axis=0)
    corrected_bias = np.mean(corrected_error, axis=0)
    assert plain_bias[1] > 0.03  # the simulated estimate is biased
    assert abs(corrected_bias[1]) < 0.7 * plain_bias[1]
    assert np.abs(corrected_error).mean() < np.abs(plain_error).mean()
    records = estimate.repunit_records()
    assert records[0]["bs_corrected_repunit_ppn"] == pytest.approx(corrected[0])


# ---------------------------------------------------------------------- assessment
@pytest.mark.parametrize("method", ["loo", "mc"])
def test_assessment_interval_coverage_is_near_nominal(scenario, method):
    _, model, _ = scenario
    result = assess_reference(model, method=method, iterations=40, mixture_size=80,
                              n_sweeps=500, burn_in=100, seed=5)
    assert result.true_proportions.shape == (40, 6)
    np.testing.assert_array_equal(result.counts.sum(axis=1), 80)
    # 40 mixtures x 3 units = 120 intervals at 95%: a binomial 95% range is about 0.9-0.99.
    assert 0.88 <= result.coverage <= 1.0
    summary = result.summary_records()
    assert len(summary) == 3
    for row in summary:
        assert abs(row["bias"]) < 0.05
        assert row["rmse"] < 0.12
    assert len(result.records()) == 40 * 3


def test_assessment_with_chosen_proportions(scenario):
    _, model, _ = scenario
    units = {model.repunit_names[0]: 0.7, model.repunit_names[1]: 0.3,
             model.repunit_names[2]: 0.0}
    result = assess_reference(model, iterations=5, mixture_size=50, proportions=units,
                              n_sweeps=200, burn_in=20, seed=6)
    np.testing.assert_allclose(result.true_repunit, [[0.7, 0.3, 0.0]] * 5)
    fixed = {model.populations[0]: 1.0}
    only = assess_reference(model, iterations=2, mixture_size=20, proportions=fixed,
                            n_sweeps=100, burn_in=10)
    assert (only.counts[:, 0] == 20).all()
    with pytest.raises(ValueError, match="neither a population nor a reporting unit"):
        assess_reference(model, proportions={"elsewhere": 1.0})
    with pytest.raises(ValueError, match="method"):
        assess_reference(model, method="bootstrap")


# ---------------------------------------------------------------------- fully Bayesian model
def python_baseline_resampling(reference, samples, populations, prior, pi0, n_sweeps,
                               burn_in, seed, key):
    """One group's fully Bayesian chain in plain Python, from the model's definition: the
    predictive of each population's reference copies plus the other samples' copies as last
    allocated, with the package's random stream."""
    from collections import Counter

    from tests.assignment_formulas import slow_counts
    from tests.splitmix_twin import PySplitMix, py_seed

    counts, n_alleles = slow_counts(reference)
    generator = PySplitMix(py_seed(seed), key)
    n = samples.n_profiles
    pi = list(pi0)
    allocation = [None] * n
    trace, membership = [], np.zeros((n, len(populations)))
    for sweep in range(n_sweeps):
        chosen_now = []
        for i in range(n):
            logs = []
            for pop in populations:
                total = 0.0
                for j, locus in enumerate(samples.loci):
                    a, b = (int(v) for v in samples.alleles[i, j])
                    if a < 0 or n_alleles[locus] == 0:
                        continue
                    copies = Counter(counts[(pop, locus)])
                    for other in range(n):
                        if other != i and allocation[other] == pop:
                            c, d = (int(v) for v in samples.alleles[other, j])
                            if c >= 0:
                                copies[c] += 1
                                copies[d] += 1
                    prior_a = 1.0 / n_alleles[locus]
                    size = sum(copies.values())
                    x_a, x_b = copies[a] + prior_a, copies[b] + prior_a
                    p = (x_a * (x_a + 1) if a == b else 2 * x_a * x_b) / ((size + 1) * (size + 2))
                    total += np.log(p)
                logs.append(total)
            top = max(logs)
            weights = [pi[k] * np.exp(v - top) for k, v in enumerate(logs)]
            target = generator.uniform() * sum(weights)
            running, chosen = 0.0, len(populations) - 1
            for k, w in enumerate(weights):
                running += w
                if running > target:
                    chosen = k
                    break
            chosen_now.append(populations[chosen])
            if sweep >= burn_in:
                membership[i] += np.array(weights) / sum(weights)
        tally = [sum(c == pop for c in chosen_now) for pop in populations]
        draws = [generator.gamma(prior[k] + tally[k]) for k in range(len(populations))]
        pi = [d / sum(draws) for d in draws]
        trace.append(pi)
        allocation = chosen_now
    return np.array(trace), membership / (n_sweeps - burn_in)


def test_baseline_resampling_kernel_equals_python_twin():
    import zlib

    from matching.mixture import estimate_mixture_resampling_baseline

    sim = SimulatedPopulations.random(3, 4, 4, concentration=1.0, seed=95)
    rng = np.random.default_rng(96)
    reference = sim.reference(6, rng, missing=0.1)
    model = AssignmentModel.from_table(reference)
    table = GenotypeTable.concat([sim.sample(0, 6, rng, 0.1, prefix="m0-", label=False),
                                  sim.sample(2, 5, rng, 0.1, prefix="m2-", label=False)])
    result = estimate_mixture_resampling_baseline(model, table, ["g"] * len(table),
                                                  n_sweeps=12, burn_in=3, seed=4)
    prior = [1 / 3] * 3
    want_trace, want_membership = python_baseline_resampling(
        reference, table, list(model.populations), prior, [1 / 3] * 3, 12, 3, 4,
        zlib.crc32(b"g"))
    np.testing.assert_allclose(result.trace[0], want_trace, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(result.membership, want_membership, rtol=1e-10, atol=1e-13)


def test_baseline_resampling_learns_from_the_mixture():
    """With a poor reference (5 animals per population) and a large mixture, learning the
    frequencies from the mixture too places its fish better than the fixed reference does."""
    from matching.mixture import estimate_mixture_resampling_baseline

    sim = SimulatedPopulations.random(3, 6, 4, concentration=2.0, seed=97)
    rng = np.random.default_rng(98)
    model = AssignmentModel.from_table(sim.reference(5, rng))
    parts = [sim.sample(k, 100, rng, prefix=f"m{k}-", label=False) for k in (0, 1)]
    table = GenotypeTable.concat(parts)
    truth = np.repeat([0, 1], 100)
    fixed = estimate_mixture(model.assign(table, exclusion_simulations=0),
                             ["m"] * 200, n_sweeps=300, burn_in=50, seed=1)
    learned = estimate_mixture_resampling_baseline(model, table, ["m"] * 200, n_sweeps=300,
                                                   burn_in=50, seed=1)
    rows = np.arange(200)
    # Fixed reference: 0.78 of the membership on the true source; learned: 0.88.
    assert (learned.membership[rows, truth].mean()
            > fixed.membership[rows, truth].mean() + 0.05)
    assert learned.posterior_mean[0, 2] < fixed.posterior_mean[0, 2]  # the absent source
    assert learned.parameters()["model"].startswith("fully Bayesian")
