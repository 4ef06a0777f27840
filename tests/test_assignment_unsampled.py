"""Unsampled-source detection: the exclusion test, its random numbers, and flagging calibrated
on the reference animals scored leave-one-out."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter

import numpy as np
import pytest

from dnatrack.genotypes import MISSING, GenotypeTable
from matching import _assignment_kernels as kernels
from matching import _rng_kernels as rng
from matching._rng_kernels import seed_state
from matching.assignment import AssignmentModel, FlagCalibration, self_assign
from tests.assignment_formulas import (
    binomial_bounds,
    reference_and_queries,
    slow_counts,
    slow_genotype_distribution,
    slow_leave_one_out_pools,
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
def sparse_reference():
    """A small reference with an empty pool (nobody of ``pop3`` typed at L1) and a pool of one
    (only the first ``pop1`` animal typed at L2), plus queries."""
    reference, queries = reference_and_queries(6, 4, 0.2, 1)
    alleles = reference.alleles.copy()
    alleles[reference.population == "pop3", 1, :] = MISSING
    pop1 = np.flatnonzero(reference.population == "pop1")
    alleles[pop1[0], 2, :] = [100, 102]
    alleles[pop1[1:], 2, :] = MISSING
    return reference.replace(alleles=alleles), queries


def pool_draw(generator, size, skip):
    """Position drawn uniformly from a pool of ``size``, never ``skip`` (-1 for none)."""
    available = size - 1 if skip >= 0 else size
    k = min(int(generator.uniform() * available), available - 1)
    return k + 1 if 0 <= skip <= k else k


def draw(generator, dist):
    """Index of a genotype drawn by inverting the running sum of its probabilities."""
    cumulative = list(itertools.accumulate(p for _, p in dist))
    u = generator.uniform() * cumulative[-1]
    return next(k for k, c in enumerate(cumulative) if c > u)


def py_resampled_scores(reference, population, stream, n_simulations, seed, skip_row=-1):
    """Per-locus null scores of one population in plain Python, from random stream ``stream``,
    locus after locus: leave-one-out scores of its reference animals drawn at random (without
    animal ``skip_row``'s own), or genotypes from the predictive where no other animal is
    typed."""
    counts, n_alleles = slow_counts(reference)
    pools, slots = slow_leave_one_out_pools(reference)
    generator = PySplitMix(py_seed(seed), stream)
    scores = {}
    for j, locus in enumerate(reference.loci):
        if n_alleles[locus] == 0:
            continue
        skip = slots.get((skip_row, locus), -1)
        if skip_row >= 0 and skip < 0:
            continue  # the left-out animal is untyped here
        pool = pools.get((locus, population), [])
        if len(pool) > (1 if skip >= 0 else 0):
            scores[locus] = [pool[pool_draw(generator, len(pool), skip)]
                             for _ in range(n_simulations)]
            continue
        counter = Counter(counts[(population, locus)])
        if skip >= 0:
            for allele in reference.alleles[skip_row, j]:
                counter[int(allele)] -= 1
        alleles = sorted(reference.alleles_at(locus).tolist())
        dist = slow_genotype_distribution(counter, n_alleles[locus], alleles)
        scores[locus] = [math.log(dist[draw(generator, dist)][1]) for _ in range(n_simulations)]
    return scores


def p_value(simulated, observed):
    limit = observed + 1e-9 * (1 + abs(observed))
    return (sum(v <= limit for v in simulated) + 1) / (len(simulated) + 1)


def summed(scores, loci, n_simulations):
    totals = [0.0] * n_simulations
    for locus in loci:
        totals = [t + v for t, v in zip(totals, scores[locus], strict=True)]
    return totals


@pytest.mark.parametrize("case", [(6, 4, 0.2, 1), (10, 2, 0.1, 2), (3, 1, 0.0, 3), "sparse"])
def test_leave_one_out_pools_equal_python_twin(case):
    reference, _ = sparse_reference() if case == "sparse" else reference_and_queries(*case)
    model = AssignmentModel.from_table(reference)
    values, start, size, slot = model.leave_one_out_pools
    pools, slots = slow_leave_one_out_pools(reference)
    for j, locus in enumerate(model.loci):
        for k, population in enumerate(model.populations):
            got = values[start[j, k]:start[j, k] + size[j, k]]
            np.testing.assert_allclose(got, pools.get((locus, population), []), rtol=1e-12,
                                       atol=1e-12)
        for i in range(len(reference)):
            assert slot[i, j] == slots.get((i, locus), -1)


@pytest.mark.parametrize("case", [(6, 4, 0.2, 1), (3, 1, 0.0, 3), "sparse"])
def test_resampled_null_equals_python_twin(case):
    """Every population's null draws, including the predictive at a locus with an empty pool."""
    reference, _ = sparse_reference() if case == "sparse" else reference_and_queries(*case)
    model = AssignmentModel.from_table(reference)
    values, start, size, _ = model.leave_one_out_pools
    n_sim = 200
    for k, population in enumerate(model.populations):
        simulated = kernels.resample_population(
            values, start, size, model.kernel_counts, model.kernel_totals, model.prior,
            model.n_alleles, k, n_sim, seed_state(5),
        )
        twin = py_resampled_scores(reference, population, k, n_sim, 5)
        for j, locus in enumerate(model.loci):
            np.testing.assert_allclose(simulated[j], twin.get(locus, [0.0] * n_sim),
                                       rtol=1e-12, atol=1e-12)
    if case == "sparse":
        assert (model.leave_one_out_pools[2] == 0).any()


@pytest.mark.parametrize("case", [(6, 4, 0.2, 1), (10, 2, 0.1, 2), (3, 1, 0.0, 3), "sparse"])
def test_exclusion_p_values_equal_python_twin(case):
    reference, queries = sparse_reference() if case == "sparse" else reference_and_queries(*case)
    seed = 7
    model = AssignmentModel.from_table(reference)
    n_sim = 300
    result = model.assign(queries, exclusion_simulations=n_sim, seed=seed,
                          exclusion_stop_early=False)
    simulated = {}
    for i in range(len(queries)):
        best = int(result.best[i])
        if best not in simulated:
            simulated[best] = py_resampled_scores(reference, model.populations[best], best,
                                                  n_sim, seed)
        typed = [locus for j, locus in enumerate(queries.loci)
                 if queries.alleles[i, j, 0] >= 0 and locus in simulated[best]]
        totals = summed(simulated[best], typed, n_sim)
        assert result.exclusion_p_value[i] == p_value(totals, result.log_likelihood[i, best])


@pytest.mark.parametrize("case", [(5, 3, 0.1, 4), "sparse"])
def test_exclusion_leave_one_out_equals_python_twin(case):
    """Reference animals against their own population get their own draws, at their typed
    loci, from the pools without their own scores, from a stream of their row."""
    reference, _ = sparse_reference() if case == "sparse" else reference_and_queries(*case)
    model = AssignmentModel.from_table(reference)
    n_sim = 200
    result = self_assign(model, exclusion_simulations=n_sim, seed=9).assignment
    checked = 0
    for i in range(len(reference)):
        best = int(result.best[i])
        population = model.populations[best]
        if population != reference.population[i]:
            continue  # scored with the population's shared draws, checked above
        checked += 1
        scores = py_resampled_scores(reference, population, len(model.populations) + i, n_sim,
                                     9, skip_row=i)
        totals = summed(scores, list(scores), n_sim)
        assert result.exclusion_p_value[i] == p_value(totals, result.log_likelihood[i, best])
    assert checked > 10


def test_exclusion_p_value_matches_exact_enumeration():
    """Monte-Carlo p-value against the exact share of the resampled null at or below the
    sample, enumerated over every combination of pooled scores at three loci."""
    reference, queries = reference_and_queries(3, 3, 0.0, 8)
    model = AssignmentModel.from_table(reference)
    n_sim = 20_000
    result = model.assign(queries, exclusion_simulations=n_sim, seed=3,
                          exclusion_stop_early=False)
    pools, _ = slow_leave_one_out_pools(reference)
    for i in range(len(queries)):
        best = int(result.best[i])
        per_locus = [pools[(locus, model.populations[best])] for locus in reference.loci]
        observed = result.log_likelihood[i, best]
        combinations = list(itertools.product(*per_locus))
        exact = sum(sum(c) <= observed + 1e-9 for c in combinations) / len(combinations)
        standard_error = math.sqrt(max(exact * (1 - exact), 1e-4) / n_sim)
        assert abs(result.exclusion_p_value[i] - exact) < 5 * standard_error + 1 / n_sim


def test_stopping_once_decided_keeps_the_flags_of_the_full_run():
    """A reference animal's leave-one-out draws stop once enough fit no better to settle its
    p-value at alpha or above: every flag, and every p-value below alpha, is that of the run
    drawing all of them (whose first blocks it shares), and the stopped p-values are at least
    alpha although they rest on fewer draws."""
    reference, queries = reference_and_queries(25, 4, 0.1, 31, n_pop=6)
    n_sim, alpha = 3 * kernels.EXCLUSION_BLOCK + 17, 0.05
    runs = {}
    for stop_early in (True, False):
        model = AssignmentModel.from_table(reference)
        runs[stop_early] = (
            self_assign(model, exclusion_simulations=n_sim, seed=8, alpha=alpha,
                        exclusion_stop_early=stop_early).assignment,
            model.assign(queries, exclusion_simulations=n_sim, seed=8, alpha=alpha,
                         exclusion_stop_early=stop_early),
        )
    (stopped, stopped_queries), (full, full_queries) = runs[True], runs[False]
    assert full.unsampled.sum() > 0
    for early, complete in ((stopped, full), (stopped_queries, full_queries)):
        np.testing.assert_array_equal(early.unsampled, complete.unsampled)
        low = complete.exclusion_p_value < alpha
        np.testing.assert_array_equal(early.exclusion_p_value[low],
                                      complete.exclusion_p_value[low])
        assert (early.exclusion_p_value[~low] >= alpha).all()
        assert (early.exclusion_p_value != complete.exclusion_p_value).any()
    assert stopped_queries.calibration.n_flagged == full_queries.calibration.n_flagged
    drawn = stopped_queries.calibration.summary()["exclusion_simulations_drawn"]
    everything = full_queries.calibration.summary()["exclusion_simulations_drawn"]
    assert everything["mean"] == n_sim and not everything["stopped_once_decided"]
    assert drawn["stopped_once_decided"] and drawn["mean"] < n_sim / 2
    assert "stop once enough fit no better" in stopped_queries.calibration.rule


def test_p_values_do_not_depend_on_chunking():
    reference, queries = reference_and_queries(8, 5, 0.1, 10)
    model = AssignmentModel.from_table(reference)
    whole = model.assign(queries, exclusion_simulations=500, seed=4)
    chunked = model.assign(queries, exclusion_simulations=500, seed=4, chunk_size=3)
    np.testing.assert_array_equal(whole.exclusion_p_value, chunked.exclusion_p_value)
    np.testing.assert_array_equal(whole.z_score, chunked.z_score)
    np.testing.assert_array_equal(whole.z_score_exact, chunked.z_score_exact)
    np.testing.assert_array_equal(whole.log_likelihood, chunked.log_likelihood)
    other_seed = model.assign(queries, exclusion_simulations=500, seed=5)
    assert not np.array_equal(whole.exclusion_p_value, other_seed.exclusion_p_value)


# ---------------------------------------------------------------------- the calibration itself
def test_z_rule_ranks_among_the_reference_z_scores():
    """The conformal p-value ``(1 + #{z_i <= z}) / (m + 1)``, by brute force; a reference animal
    is ranked among the others only, and a sample without a z-score is never flagged."""
    loo = np.sort(np.random.default_rng(3).normal(size=299))
    no_p = np.full(299, np.nan)
    calibration = FlagCalibration(0.01, 0, loo, no_p)
    queries = np.array([loo[0] - 1, loo[0], loo[1], loo[2], loo[3], 0.0, np.nan])
    flags = calibration.flags(queries, no_p[:7], leave_one_out=False)
    expected = [np.isfinite(z) and (1 + (loo <= z).sum()) / 300 <= 0.01 for z in queries]
    np.testing.assert_array_equal(flags, expected)
    assert flags.tolist() == [True, True, True, False, False, False, False]
    assert calibration.z_threshold == loo[2]  # floor(0.01 · 300) = 3rd lowest
    own = [(1 + (np.delete(loo, i) <= loo[i]).sum()) / 299 <= 0.01 for i in range(299)]
    np.testing.assert_array_equal(calibration.flags(loo, no_p, leave_one_out=True), own)
    assert calibration.n_flagged == sum(own) == 2
    assert calibration.expected_false_flag_rate == 2 / 299
    assert "3rd lowest of the 299" in calibration.rule
    too_few = FlagCalibration(0.01, 0, loo[:90], np.full(90, np.nan))
    assert too_few.z_threshold == -math.inf
    assert not too_few.flags(queries, no_p[:7], leave_one_out=False).any()
    assert too_few.rule.startswith("none: 90 reference animals")


def test_expected_false_flag_rate_interval():
    """Wilson score intervals against Newcombe (1998, Stat Med 17:857, table I, method 3):
    1/29 gives 0.0061–0.1718 and 0/20 gives 0–0.1611."""
    p_values = np.array([0.001] + [0.5] * 28)
    summary = FlagCalibration(0.01, 100, np.zeros(29), p_values).summary()
    assert summary["reference_animals_flagged"] == 1
    assert summary["expected_false_flag_rate"] == 1 / 29
    np.testing.assert_allclose(summary["expected_false_flag_rate_95"], [0.0061, 0.1718],
                               atol=5e-5)
    none = FlagCalibration(0.01, 100, np.zeros(20), np.full(20, 0.5)).summary()
    np.testing.assert_allclose(none["expected_false_flag_rate_95"], [0.0, 0.1611], atol=5e-5)


def test_calibration_is_the_self_assignment():
    """The false-flag estimate of an assignment is the share of reference animals its rule
    flags in leave-one-out self-assignment with the same settings."""
    reference, queries = reference_and_queries(8, 5, 0.1, 12)
    for n_sim in (0, 300):
        model = AssignmentModel.from_table(reference)
        result = model.assign(queries, exclusion_simulations=n_sim, seed=2, alpha=0.05)
        own = self_assign(AssignmentModel.from_table(reference), exclusion_simulations=n_sim,
                          seed=2, alpha=0.05).assignment
        scored = np.isfinite(own.z_score_exact)
        assert result.calibration.n_animals == scored.sum()
        assert result.calibration.n_flagged == own.unsampled.sum() > 0
        np.testing.assert_array_equal(result.calibration.loo_z_scores, np.sort(own.z_score_exact))
        if n_sim:
            np.testing.assert_array_equal(result.calibration.loo_p_values,
                                          own.exclusion_p_value[scored])
        parameters = result.parameters()["unsampled_calibration"]
        assert parameters["reference_animals_flagged"] == own.unsampled.sum()
        assert parameters["expected_false_flag_rate"] == own.unsampled.sum() / scored.sum()


# ---------------------------------------------------------------------- false flags and power
def test_binomial_bounds_by_hand():
    """Binomial(10, 1/2): P(X < 2) = 11/1024, P(X < 3) = 56/1024."""
    assert binomial_bounds(10, 0.5, 0.05) == (2, 8)
    assert binomial_bounds(10, 0.5, 0.06) == (3, 7)


def flag_counts(n_per_population: int, n_references: int, per_population: int):
    """New animals of sampled populations and how many each rule flags, pooled over
    independent simulated references (fresh allele frequencies and animals each time).

    Eight populations with Dirichlet(0.8) frequencies over 8 alleles at 14 loci, 5% of loci
    untyped; each reference holds ``n_per_population`` animals of seven of them.
    """
    counts = {"n": 0, "exclusion 0.01": 0, "exclusion 0.05": 0, "z": 0, "z level": 0.0}
    for r in range(n_references):
        sim = SimulatedPopulations.random(8, 14, 8, concentration=0.8, seed=3000 + r)
        generator = np.random.default_rng(4000 + r)
        reference = sim.reference(n_per_population, generator, missing=0.05,
                                  populations=list(range(7)))
        new = GenotypeTable.concat([sim.sample(k, per_population, generator, 0.05,
                                               prefix=f"new{k}-") for k in range(7)])
        model = AssignmentModel.from_table(reference)
        result = model.assign(new, exclusion_simulations=1_000, seed=r, alpha=0.01)
        # The same scores under the other rules (z-scores do not depend on the simulations).
        at_five = dataclasses.replace(
            result, calibration=model.flag_calibration(1_000, r, alpha=0.05))
        by_z = dataclasses.replace(result, calibration=model.flag_calibration(0, r, alpha=0.01))
        counts["n"] += len(new)
        counts["exclusion 0.01"] += int(result.unsampled.sum())
        counts["exclusion 0.05"] += int(at_five.unsampled.sum())
        counts["z"] += int(by_z.unsampled.sum())
        counts["z level"] += len(new) * by_z.calibration.z_rank / (by_z.calibration.n_animals + 1)
    return counts


@pytest.mark.parametrize(("n_per_population", "n_references", "per_population"),
                         [(20, 50, 10), (100, 25, 20)])
def test_false_flag_rate_is_alpha_for_small_and_large_references(
    n_per_population, n_references, per_population
):
    """New animals from sampled populations are flagged at the nominal rate.

    Over 3,500 new animals the flagged count must lie within the binomial bounds at the
    nominal level whose tails hold 1e-4 each (about ±3.7 standard deviations: at alpha = 0.01,
    14–59 of 3,500, so a rate of 2% fails). The rate given one reference varies around alpha
    (the reference is itself a sample; over 30 references its spread was 0.6 percentage points
    with 20 animals per population and 0.3 with 100), so the count is spread over many
    references with few new animals each: that adds about a fifth to the binomial variance,
    which the 1e-4 tails absorb. Simulating the null from the predictive instead flagged 14%
    (20 animals) and 2.4% (100 animals) at alpha = 0.01.
    """
    counts = flag_counts(n_per_population, n_references, per_population)
    n = counts["n"]
    for alpha in (0.01, 0.05):
        low, high = binomial_bounds(n, alpha, 1e-4)
        assert low <= counts[f"exclusion {alpha}"] <= high, (alpha, counts)
    # The z rule's level is the conformal rank share floor(alpha (m + 1)) / (m + 1) ≤ alpha.
    level = counts["z level"] / n
    assert level <= 0.01
    low, high = binomial_bounds(n, level, 1e-4)
    assert low <= counts["z"] <= high, counts


@pytest.fixture(scope="module", params=[20, 100], ids=["20 per population", "100 per population"])
def held_out_scenario(request):
    """Eight clearly differentiated populations (Dirichlet(0.5) over 8 alleles, 16 loci); the
    reference holds seven of them."""
    sim = SimulatedPopulations.random(8, 16, 8, concentration=0.5, seed=50,
                                      populations_per_unit=2)
    generator = np.random.default_rng(51)
    reference = sim.reference(request.param, generator, missing=0.05, populations=list(range(7)))
    sampled = GenotypeTable.concat(
        [sim.sample(k, 30, generator, 0.05, prefix=f"in{k}-") for k in range(7)]
    )
    unsampled = sim.sample(7, 200, generator, 0.05, prefix="out-")
    return AssignmentModel.from_table(reference), sampled, unsampled


@pytest.mark.parametrize("exclusion_simulations", [10_000, 0])
def test_samples_of_an_unsampled_population_are_flagged(held_out_scenario,
                                                        exclusion_simulations):
    model, sampled, unsampled = held_out_scenario
    outside = model.assign(unsampled, exclusion_simulations=exclusion_simulations, seed=1)
    inside = model.assign(sampled, exclusion_simulations=exclusion_simulations, seed=1)
    assert outside.unsampled.mean() >= 0.95
    # 210 animals of sampled populations at alpha = 0.01: more than 9 flags has probability
    # below 1e-4 (the false-flag rate itself is tested above).
    assert inside.unsampled.sum() <= binomial_bounds(len(sampled), 0.01, 1e-4)[1]
    truth = np.array([model.populations.index(p) for p in sampled.population])
    assert (inside.best == truth).mean() > 0.95


def test_z_scores_are_low_for_an_unsampled_population(held_out_scenario):
    """New animals of sampled populations have z-scores distributed like the reference
    animals' leave-one-out ones, which the z rule ranks against; with 20 animals per
    population both are centred well below 0, so a standard-normal cut-off would not do."""
    model, sampled, unsampled = held_out_scenario
    inside = model.assign(sampled, exclusion_simulations=0)
    outside = model.assign(unsampled, exclusion_simulations=0)
    assert np.median(outside.z_score_exact) < -3
    deciles = [0.1, 0.5, 0.9]
    np.testing.assert_allclose(np.quantile(inside.z_score_exact, deciles),
                               np.quantile(inside.calibration.loo_z_scores, deciles), atol=0.5)
    assert inside.parameters()["unsampled_rule"].startswith("z_score_exact <")
    assert (outside.unsampled == (outside.z_score_exact < inside.calibration.z_threshold)).all()
    # rubias's z-score tells them apart as well.
    assert np.median(outside.z_score) < np.quantile(inside.z_score, 0.05)


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
    unit_summed = np.stack([assignment.posterior[:, [0, 1]].sum(axis=1),
                            assignment.posterior[:, [2, 3]].sum(axis=1)], axis=1)
    assert assignment.repunit_names == ("unit0", "unit1")
    assert result.repunit_accuracy == pytest.approx(
        (unit_truth == unit_summed.argmax(axis=1)).mean())
    assert result.inferred_repunit_accuracy == pytest.approx((unit_truth == inferred // 2).mean())
    np.testing.assert_allclose(
        result.population_accuracy,
        [(inferred[truth == k] == k).mean() for k in range(4)],
    )
    records = assignment.records()
    assert records[0]["collection"] == reference.population[0]
    assert records[0]["repunit"] == sim.repunits[truth[0]]
    for record, best in zip(records, inferred, strict=True):
        assert record["inferred_repunit"] == sim.repunits[best]
    assert sum(r["n"] for r in result.confusion_records()) == len(reference)
    z = result.z_score_summary()
    assert z["overall"]["n"] == len(reference)
    assert z["overall"]["mean"] == pytest.approx(np.nanmean(assignment.z_score))
    assert set(z["per_population"]) == set(sim.names)
