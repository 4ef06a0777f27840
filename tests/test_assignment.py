"""Individual assignment: the kernels against slow implementations written from the formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import load_reference_set
from matching.assignment import AssignmentModel, self_assign
from tests.assignment_formulas import (
    reference_and_queries,
    slow_log_likelihoods,
    slow_posterior,
    slow_rubias_z_scores,
    slow_z_score,
)
from tests.simulated_populations import SimulatedPopulations

LOG2 = math.log(2.0)


CASES = [
    # n_loci, n_alleles, missing, seed
    (10, 8, 0.1, 1),    # STR-like
    (25, 2, 0.2, 2),    # SNP-like
    (6, 1, 0.0, 3),     # single-allele loci
    (5, 4, 0.7, 4),     # mostly untyped
]


@pytest.mark.parametrize(("n_loci", "n_alleles", "missing", "seed"), CASES)
def test_log_likelihoods_match_slow_formula(n_loci, n_alleles, missing, seed):
    reference, queries = reference_and_queries(n_loci, n_alleles, missing, seed)
    model = AssignmentModel.from_table(reference)
    result = model.assign(queries, exclusion_simulations=0)
    expected = slow_log_likelihoods(reference, queries)
    np.testing.assert_allclose(result.log_likelihood, expected, rtol=0, atol=1e-9)
    for i in range(len(queries)):
        np.testing.assert_allclose(result.posterior[i], slow_posterior(expected[i]),
                                   rtol=0, atol=1e-9)


@pytest.mark.parametrize(("n_loci", "n_alleles", "missing", "seed"), CASES)
def test_leave_one_out_matches_slow_formula(n_loci, n_alleles, missing, seed):
    reference, _ = reference_and_queries(n_loci, n_alleles, missing, seed)
    model = AssignmentModel.from_table(reference)
    result = self_assign(model).assignment
    expected = slow_log_likelihoods(reference, reference, leave_one_out=True)
    np.testing.assert_allclose(result.log_likelihood, expected, rtol=0, atol=1e-9)
    units = np.array(model.repunits)
    for i in range(len(reference)):
        posterior = slow_posterior(expected[i])
        np.testing.assert_allclose(result.posterior[i], posterior, rtol=0, atol=1e-9)
        for k, unit in enumerate(result.repunit_names):
            assert result.repunit_posterior[i, k] == pytest.approx(
                sum(p for p, u in zip(posterior, units, strict=True) if u == unit), abs=1e-9
            )


def check_records_against_slow_posterior(result, expected_log_likelihood, units):
    for record, row in zip(result.records(), expected_log_likelihood, strict=True):
        posterior = slow_posterior(row)
        best = max(range(len(posterior)), key=posterior.__getitem__)
        summed = {}
        for p, unit in zip(posterior, units, strict=True):
            summed[unit] = summed.get(unit, 0.0) + p
        top_unit = max(summed, key=summed.get)
        assert record["inferred_collection"] == result.populations[best]
        assert record["inferred_repunit"] == units[best]
        assert record["scaled_likelihood"] == pytest.approx(posterior[best], abs=1e-9)
        assert record["repunit_scaled_likelihood"] == pytest.approx(summed[units[best]],
                                                                    abs=1e-9)
        assert record["repunit_max_posterior"] == top_unit
        assert record["repunit_max_posterior_scaled_likelihood"] == pytest.approx(
            summed[top_unit], abs=1e-9)


@pytest.mark.parametrize(("n_loci", "n_alleles", "missing", "seed"), CASES)
def test_records_report_both_reporting_unit_choices(n_loci, n_alleles, missing, seed):
    """``inferred_repunit`` is the unit of the most likely population (rubias's meaning);
    ``repunit_max_posterior`` the unit with the largest summed posterior."""
    reference, queries = reference_and_queries(n_loci, n_alleles, missing, seed)
    model = AssignmentModel.from_table(reference)
    result = model.assign(queries, exclusion_simulations=0)
    check_records_against_slow_posterior(result, slow_log_likelihoods(reference, queries),
                                         model.repunits)


def test_inferred_repunit_and_max_posterior_repunit_can_differ():
    """One locus; ``pop0`` (unit A) fits a 100/100 homozygote best, but ``pop1`` and ``pop2``
    (unit B, identical counts) together outweigh it: 12.5·13.5 against 2 × 10.5·11.5 (over
    the same 21·22), posteriors 0.41 / 0.29 / 0.29."""
    genotypes = ([[100, 100]] * 5 + [[100, 102]] * 2 + [[102, 102]] * 3  # 12 of 20 copies
                 + ([[100, 100]] * 4 + [[100, 102]] * 2 + [[102, 102]] * 4) * 2)  # 10 of 20
    populations = ["pop0"] * 10 + ["pop1"] * 10 + ["pop2"] * 10
    reference = GenotypeTable(np.array(genotypes)[:, None, :], [f"r{i}" for i in range(30)],
                              ["L0"], population=populations,
                              repunit=["A"] * 10 + ["B"] * 20)
    query = GenotypeTable(np.array([[[100, 100]]]), ["q"], ["L0"])
    result = AssignmentModel.from_table(reference).assign(query, exclusion_simulations=0)
    [record] = result.records()
    assert (record["inferred_collection"], record["inferred_repunit"]) == ("pop0", "A")
    assert record["repunit_max_posterior"] == "B"
    weight_a, weight_b = 12.5 * 13.5, 10.5 * 11.5
    assert record["scaled_likelihood"] == pytest.approx(weight_a / (weight_a + 2 * weight_b))
    assert record["repunit_max_posterior_scaled_likelihood"] == pytest.approx(
        2 * weight_b / (weight_a + 2 * weight_b))
    check_records_against_slow_posterior(result, slow_log_likelihoods(reference, query),
                                         ("A", "B", "B"))


def test_leave_one_out_differs_only_in_own_population():
    reference, _ = reference_and_queries(8, 5, 0.1, 7)
    model = AssignmentModel.from_table(reference)
    plain = model.assign(reference, exclusion_simulations=0).log_likelihood
    loo = self_assign(model).assignment
    own = np.array([model.populations.index(p) for p in reference.population])
    other = np.ones_like(plain, dtype=bool)
    other[np.arange(len(own)), own] = False
    np.testing.assert_array_equal(loo.log_likelihood[other], plain[other])
    # Taking an animal's own alleles out can only lower its likelihood under its population.
    assert (loo.log_likelihood[~other] < plain[~other]).all()


@settings(deadline=None, max_examples=30)
@given(
    n_loci=st.integers(1, 5),
    n_alleles=st.integers(1, 5),
    missing=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**31),
)
def test_random_tables_match_slow_formula(n_loci, n_alleles, missing, seed):
    reference, queries = reference_and_queries(n_loci, n_alleles, missing, seed,
                                               concentration=0.5)
    model = AssignmentModel.from_table(reference)
    plain = model.assign(queries, exclusion_simulations=0)
    np.testing.assert_allclose(plain.log_likelihood, slow_log_likelihoods(reference, queries),
                               rtol=0, atol=1e-9)
    loo = self_assign(model).assignment
    np.testing.assert_allclose(loo.log_likelihood,
                               slow_log_likelihoods(reference, reference, leave_one_out=True),
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(plain.posterior.sum(axis=1), 1.0)


def test_alleles_unseen_in_reference():
    reference, _ = reference_and_queries(4, 3, 0.0, 11)
    # Query alleles 500 and 502 are in no reference animal: a het of two unseen alleles, a
    # homozygote of one, and a het of a seen and an unseen allele.
    alleles = np.array([
        [[500, 502], [100, 102], [100, 100], [102, 104]],
        [[500, 500], [100, 502], [104, 104], [-1, -1]],
        [[100, 502], [500, 502], [102, 102], [100, 100]],
    ])
    queries = GenotypeTable(alleles, ["u1", "u2", "u3"], reference.loci)
    model = AssignmentModel.from_table(reference)
    result = model.assign(queries, exclusion_simulations=0)
    np.testing.assert_allclose(result.log_likelihood, slow_log_likelihoods(reference, queries),
                               rtol=0, atol=1e-9)


def test_loci_absent_from_samples_or_untyped_in_reference():
    reference, queries = reference_and_queries(6, 4, 0.1, 12)
    alleles = reference.alleles.copy()
    alleles[:, 2, :] = -1  # nobody in the reference is typed at L2: the locus is ignored
    reference = reference.replace(alleles=alleles)
    model = AssignmentModel.from_table(reference)
    partial = queries.select_loci(["L5", "L0", "L2"])  # other order, loci missing
    result = model.assign(partial, exclusion_simulations=0)
    np.testing.assert_allclose(result.log_likelihood, slow_log_likelihoods(reference, partial),
                               rtol=0, atol=1e-9)
    expected_typed = (partial.alleles[:, [0, 1], 0] >= 0).sum(axis=1)  # L2 does not count
    np.testing.assert_array_equal(result.n_typed, expected_typed)


def test_sample_with_no_typed_locus_gets_flat_posterior():
    reference, queries = reference_and_queries(5, 4, 0.0, 13)
    empty = queries.take([0]).replace(alleles=np.full((1, 5, 2), -1))
    result = AssignmentModel.from_table(reference).assign(empty, exclusion_simulations=100)
    np.testing.assert_array_equal(result.log_likelihood, 0.0)
    np.testing.assert_allclose(result.posterior, 0.25)
    assert np.isnan(result.z_score[0])
    assert result.exclusion_p_value[0] == 1.0  # every simulated (empty) genotype ties
    assert not result.unsampled[0]


def test_empty_input():
    reference, queries = reference_and_queries(5, 4, 0.0, 14)
    result = AssignmentModel.from_table(reference).assign(queries.take([]))
    assert result.log_likelihood.shape == (0, 4)
    assert result.records() == []


# ---------------------------------------------------------------------- kernel twins
def numpy_log_likelihoods(model: AssignmentModel, codes: np.ndarray, own: np.ndarray):
    """Vectorised numpy twin of ``population_log_likelihoods``."""
    log_x, log_x1, log_norm = model.tables
    n, n_loci, _ = codes.shape
    total = np.zeros((n, len(model.populations)))
    rows = np.arange(n)
    loo_rows = own >= 0
    own_total = np.zeros(n)
    for locus in range(n_loci):
        a = codes[:, locus, 0].astype(np.int64)
        b = codes[:, locus, 1].astype(np.int64)
        typed = a >= 0
        a_, b_ = np.where(typed, a, 0), np.where(typed, b, 0)
        hom = log_x[locus, a_] + log_x1[locus, a_]
        het = LOG2 + log_x[locus, a_] + log_x[locus, b_]
        term = np.where((a_ == b_)[:, None], hom, het) - log_norm[locus]
        total += np.where(typed[:, None], term, 0.0)
        q = np.where(loo_rows, own, 0)
        c_a = model.kernel_counts[locus, a_, q]
        c_b = model.kernel_counts[locus, b_, q]
        n_q = model.kernel_totals[locus, q]
        prior = model.prior[locus]
        with np.errstate(invalid="ignore", divide="ignore"):
            loo_hom = np.log(c_a - 2 + prior) + np.log(c_a - 1 + prior)
            loo_het = LOG2 + np.log(c_a - 1 + prior) + np.log(c_b - 1 + prior)
            loo = np.where(a_ == b_, loo_hom, loo_het) - np.log((n_q - 1) * n_q)
        own_total += np.where(typed & loo_rows, loo, 0.0)
    total[rows[loo_rows], own[loo_rows]] = own_total[loo_rows]
    return total


@pytest.mark.parametrize(("n_loci", "n_alleles", "missing", "seed"), [*CASES, (3, 5, 0.0, 9)])
@pytest.mark.parametrize("leave_one_out", [False, True])
def test_log_likelihood_kernel_equals_numpy_twin(n_loci, n_alleles, missing, seed,
                                                 leave_one_out):
    reference, queries = reference_and_queries(n_loci, n_alleles, missing, seed)
    model = AssignmentModel.from_table(reference)
    samples = reference if leave_one_out else queries
    codes = model.encode(samples)
    own = (model.own_populations(samples) if leave_one_out
           else np.full(len(samples), -1, dtype=np.int64))
    np.testing.assert_allclose(model.log_likelihoods(codes, own),
                               numpy_log_likelihoods(model, codes, own), rtol=1e-13, atol=1e-12)


def test_log_likelihood_kernel_on_empty_codes():
    reference, _ = reference_and_queries(4, 3, 0.0, 5)
    model = AssignmentModel.from_table(reference)
    out = model.log_likelihoods(np.empty((0, 4, 2), dtype=np.int16))
    assert out.shape == (0, 4)


def test_log_tables_equal_numpy():
    reference, _ = reference_and_queries(6, 5, 0.1, 6)
    model = AssignmentModel.from_table(reference)
    log_x, log_x1, log_norm = model.tables
    x = model.kernel_counts + model.prior[:, None, None]
    np.testing.assert_allclose(log_x, np.log(x), rtol=1e-15)
    np.testing.assert_allclose(log_x1, np.log(x + 1), rtol=1e-15)
    n = model.kernel_totals
    np.testing.assert_allclose(log_norm, np.log((n + 1) * (n + 2)), rtol=1e-15)


def test_encoding_of_unseen_alleles_uses_distinct_slots():
    reference, _ = reference_and_queries(2, 3, 0.0, 15)
    model = AssignmentModel.from_table(reference)
    queries = GenotypeTable([[[500, 502], [500, 500]], [[100, 502], [-1, -1]]], ["a", "b"],
                            reference.loci)
    codes = model.encode(queries)
    a = model.n_alleles
    assert codes[0, 0].tolist() == [a[0], a[0] + 1]
    assert codes[0, 1].tolist() == [a[1], a[1]]
    assert codes[1, 0].tolist() == [0, a[0]]
    assert codes[1, 1].tolist() == [-1, -1]


# ---------------------------------------------------------------------- z-scores
@pytest.mark.parametrize(("n_loci", "n_alleles", "missing", "seed"), CASES)
def test_rubias_z_scores_of_new_samples_match_the_definition(n_loci, n_alleles, missing, seed):
    reference, queries = reference_and_queries(n_loci, n_alleles, missing, seed)
    model = AssignmentModel.from_table(reference)
    result = model.assign(queries, exclusion_simulations=0)
    best = [model.populations[k] for k in result.best]
    expected = slow_rubias_z_scores(reference, queries, best, leave_one_out=False)
    np.testing.assert_allclose(result.z_score, expected, rtol=1e-10, atol=1e-10)
    assert np.isfinite(expected).any() or n_alleles == 1


@pytest.mark.parametrize(("n_loci", "n_alleles", "missing", "seed"), CASES)
def test_rubias_z_scores_of_self_assignment_match_the_definition(n_loci, n_alleles, missing,
                                                                 seed):
    reference, _ = reference_and_queries(n_loci, n_alleles, missing, seed)
    result = self_assign(AssignmentModel.from_table(reference)).assignment
    best = [result.populations[k] for k in result.best]
    expected = slow_rubias_z_scores(reference, reference, best, leave_one_out=True)
    np.testing.assert_allclose(result.z_score, expected, rtol=1e-10, atol=1e-10)


def test_single_allele_loci_give_no_rubias_z_score():
    """rubias treats a log-likelihood of zero as a missing locus: nothing varies."""
    reference, queries = reference_and_queries(6, 1, 0.0, 3)
    result = AssignmentModel.from_table(reference).assign(queries, exclusion_simulations=0)
    assert np.isnan(result.z_score).all()


@pytest.mark.parametrize(("file", "mean", "sd"), [
    # rubias 0.4.0 self_assign(), z_score of each fish's top collection; mean and sd as quoted
    # in issue 18 (measured side by side with rubias on this kind of machine).
    ("alewife_rubias.csv", 0.39, 0.82),
    ("chinook_baseline_rubias.csv", 0.12, 1.08),
])
def test_rubias_z_scores_on_rubias_data_sets(shared_datasets, file, mean, sd):
    reference = load_reference_set(shared_datasets / file)
    result = self_assign(reference).assignment
    # The plain-Python definition on every animal of (at most) the first 6 collections: the
    # whole Chinook baseline (664,000 genotypes) takes minutes in plain Python.
    kept = np.isin(reference.table.population, reference.table.unique_populations()[:6])
    table = reference.table.take(kept)
    part = self_assign(AssignmentModel.from_table(table)).assignment
    best = [part.populations[k] for k in part.best]
    expected = slow_rubias_z_scores(table, table, best, leave_one_out=True)
    np.testing.assert_allclose(part.z_score, expected, rtol=0, atol=1e-6)
    assert np.mean(result.z_score) == pytest.approx(mean, abs=0.005)
    assert np.std(result.z_score, ddof=1) == pytest.approx(sd, abs=0.005)
    # The exact-expectation score is a different statistic, well away from rubias's.
    assert np.mean(result.z_score_exact) < mean - 0.05


@pytest.mark.parametrize(("n_loci", "n_alleles", "missing", "seed"), CASES[:2] + [(4, 6, 0.3, 21)])
def test_exact_z_scores_match_enumeration(n_loci, n_alleles, missing, seed):
    reference, queries = reference_and_queries(n_loci, n_alleles, missing, seed)
    model = AssignmentModel.from_table(reference)
    result = model.assign(queries, exclusion_simulations=0)
    for i in range(len(queries)):
        population = model.populations[result.best[i]]
        expected = slow_z_score(reference, queries.alleles[i].tolist(), list(queries.loci),
                                population, leave_one_out=False)
        assert result.z_score_exact[i] == pytest.approx(expected, abs=1e-9)


def test_exact_z_scores_leave_one_out_match_enumeration():
    reference, _ = reference_and_queries(5, 4, 0.1, 22)
    model = AssignmentModel.from_table(reference)
    result = self_assign(model).assignment
    checked_loo = 0
    for i in range(len(reference)):
        population = model.populations[result.best[i]]
        loo = population == reference.population[i]
        checked_loo += loo
        expected = slow_z_score(reference, reference.alleles[i].tolist(), list(reference.loci),
                                population, leave_one_out=loo)
        assert result.z_score_exact[i] == pytest.approx(expected, abs=1e-9)
    assert checked_loo > 10


def numpy_locus_moments(model: AssignmentModel):
    """Twin of ``locus_log_moments`` by numpy over a dense genotype grid."""
    n_loci, width, n_pop = model.kernel_counts.shape
    mean = np.zeros((n_loci, n_pop))
    variance = np.zeros((n_loci, n_pop))
    for locus in range(n_loci):
        n_a = model.n_alleles[locus]
        if n_a == 0:
            continue
        x = model.kernel_counts[locus, :n_a, :] + model.prior[locus]  # (A, P)
        n = model.kernel_totals[locus]
        upper = np.triu(np.ones((n_a, n_a), dtype=bool))
        prob = 2 * x[:, None, :] * x[None, :, :]
        diag = np.arange(n_a)
        prob[diag, diag] = x * (x + 1)
        prob = prob[upper] / ((n + 1) * (n + 2))
        mean[locus] = (prob * np.log(prob)).sum(axis=0)
        variance[locus] = (prob * np.log(prob) ** 2).sum(axis=0) - mean[locus] ** 2
    return mean, np.maximum(variance, 0.0)


@pytest.mark.parametrize(("n_loci", "n_alleles", "missing", "seed"), CASES)
def test_locus_moment_kernel_equals_numpy_twin(n_loci, n_alleles, missing, seed):
    reference, _ = reference_and_queries(n_loci, n_alleles, missing, seed)
    model = AssignmentModel.from_table(reference)
    for got, want in zip(model.exact_locus_moments, numpy_locus_moments(model), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_exact_z_scores_are_standard_normal_for_samples_from_the_reference_populations():
    sim = SimulatedPopulations.random(3, 30, 6, concentration=2.0, seed=31)
    rng = np.random.default_rng(32)
    reference = sim.reference(300, rng)
    queries = GenotypeTable.concat([sim.sample(k, 300, rng, prefix=f"q{k}-") for k in range(3)])
    result = AssignmentModel.from_table(reference).assign(queries, exclusion_simulations=0)
    assert abs(result.z_score_exact.mean()) < 0.15
    assert abs(result.z_score_exact.std() - 1.0) < 0.15


# ---------------------------------------------------------------------- errors
def test_bad_input_raises_clear_errors():
    reference, queries = reference_and_queries(4, 3, 0.0, 40)
    model = AssignmentModel.from_table(reference)
    with pytest.raises(ValueError, match="alpha"):
        model.assign(queries, alpha=1.5)
    with pytest.raises(ValueError, match="seed"):
        model.assign(queries, seed=-1)
    with pytest.raises(ValueError, match="exclusion_simulations"):
        model.assign(queries, exclusion_simulations=-5)
    with pytest.raises(ValueError, match="chunk_size"):
        model.assign(queries, chunk_size=0)
    with pytest.raises(ValueError, match="not a reference animal"):
        model.assign(queries, leave_one_out=True)
    changed = reference.alleles.copy()
    changed[0, 0] = [100, 100] if changed[0, 0, 0] != 100 else [102, 102]
    with pytest.raises(ValueError, match="genotypes differ"):
        model.assign(reference.replace(alleles=changed), leave_one_out=True)
    relabelled = reference.replace(population=["pop1"] + list(reference.population[1:]))
    with pytest.raises(ValueError, match="population differs"):
        model.assign(relabelled, leave_one_out=True)
    other = GenotypeTable([[[100, 102]]], ["x"], ["OTHER"])
    with pytest.raises(ValueError, match="share no locus"):
        model.assign(other)
    with pytest.raises(ValueError, match="no population labels"):
        AssignmentModel.from_table(queries.replace(population=None))
    with pytest.raises(ValueError, match="no reporting unit for populations"):
        AssignmentModel.from_table(reference, repunits={"pop0": "a"})
    mixed = reference.replace(repunit=["a"] + ["b"] * (len(reference) - 1))
    with pytest.raises(ValueError, match="is in reporting units"):
        AssignmentModel.from_table(mixed)


# ---------------------------------------------------------------------- real data
def test_alewife_reporting_units_far_better_than_collections(shared_datasets):
    """Alewife collections within a reporting unit are barely differentiated (rubias data)."""
    reference = load_reference_set(shared_datasets / "alewife_rubias.csv")
    result = self_assign(reference)
    assert len(result.assignment) == 1070
    assert result.repunit_accuracy > 0.75
    assert result.inferred_repunit_accuracy > 0.75
    assert result.accuracy < 0.4
    assert result.repunit_accuracy - result.accuracy > 0.4
    # Every reporting unit is recovered well, not just the largest one.
    assert np.nanmin(result.repunit_unit_accuracy) > 0.6
    summary = result.summary()
    assert summary["repunit_confusion"]["repunits"] == list(result.assignment.repunit_names)
    assert sum(map(sum, summary["confusion"]["counts"])) == 1070
