"""Calibration checked against exact enumeration of every genotype-pair combination."""

import itertools
import json

import numpy as np
import pytest

from dnatrack.genotypes import GenotypeTable
from matching.calibration import (
    Calibration,
    cached_calibrate,
    calibrate,
    calibration_key,
    default_cache_dir,
    resolve_cache_dir,
)
from matching.frequencies import allele_counts, point_frequencies
from matching.kinship import KinshipSearch
from matching.pair_search import loci_compared_shares, power_summary
from matching.relationships import (
    RELATIONSHIPS,
    ErrorModel,
    locus_log10_lr,
    observed_pair_probabilities,
)

THETA = 0.02
ERRORS = ErrorModel(0.01, 0.002)


def small_reference(n_loci=3, n_alleles=4, n=200, seed=0):
    rng = np.random.default_rng(seed)
    alleles = rng.integers(1, n_alleles + 1, size=(n, n_loci, 2))
    return GenotypeTable(alleles, [f"r{i}" for i in range(n)], [f"L{k}" for k in range(n_loci)])


def exact_tail(reference, relationship, cutoff):
    """Exact P(log10 LR ≥ cutoff) under unrelated and under the relationship, enumerating
    every combination of genotype pairs at all loci."""
    counts = allele_counts(reference)
    freqs = point_frequencies(counts)[0]
    r = list(RELATIONSHIPS).index(relationship)
    k = RELATIONSHIPS[relationship]
    lrs, p_unrelated, p_related = [], [], []
    for locus in range(reference.n_loci):
        f = freqs[locus, : counts.coding.n_alleles[locus]]
        q = observed_pair_probabilities(f, THETA, ERRORS)
        lrs.append(locus_log10_lr(f, THETA, errors=ERRORS)[:, :, r].ravel())
        p_unrelated.append(q[0].ravel())
        p_related.append(np.einsum("k,kgh->gh", np.array(k), q).ravel())
    total_lr = sum(np.ix_(*lrs))  # broadcast to every combination of loci
    unrelated = p_unrelated[0]
    related = p_related[0]
    for a, b in zip(p_unrelated[1:], p_related[1:], strict=True):
        unrelated = np.multiply.outer(unrelated, a)
        related = np.multiply.outer(related, b)
    passing = total_lr >= cutoff
    return float(unrelated[passing].sum()), float(related[passing].sum())


@pytest.mark.parametrize("relationship", ["parent_offspring", "full_sibling"])
def test_cutoff_controls_the_exact_false_positive_rate(relationship):
    reference = small_reference()
    alpha = 1e-3
    result = calibrate(reference, theta=THETA, errors=ERRORS, relationships=(relationship,),
                       false_positive_rate=alpha, loci_counts=(3,), n_simulations=60_000, seed=3)
    cutoff = result.cutoffs[relationship][3]
    fpr, power = exact_tail(reference, relationship, cutoff)
    # importance sampling is an estimate: allow its noise, but the rate is of order alpha
    assert fpr <= alpha * 1.3
    assert result.power[relationship][3] == pytest.approx(power, abs=0.01)
    # and the cutoff is not needlessly high: lowering it a little admits more than alpha
    lower_fpr, _ = exact_tail(reference, relationship, cutoff - 0.25)
    assert lower_fpr > alpha * 0.7


def test_unreachable_rates_fall_back_to_the_markov_bound():
    # Four loci cannot reach 1e-12 per pair (1 expected false pair in 1e12): the cutoff is
    # log10(n_relationships / alpha), which bounds the rate for any model since
    # E[LR | unrelated] = 1.
    reference = small_reference(n_loci=4, n=100, seed=1)
    result = calibrate(reference, theta=THETA, errors=ERRORS, pairs_compared=1e12,
                       n_simulations=2000, seed=2)
    assert result.false_positive_rate == pytest.approx(1e-12)
    assert result.expected_false_pairs == 1.0
    for name in RELATIONSHIPS:
        assert result.cutoffs[name][4] == pytest.approx(np.log10(4 / 1e-12))
        assert result.power[name][4] == 0.0
    assert {row["relationship"] for row in result.rows()} == set(RELATIONSHIPS)


def test_the_rate_is_shared_among_the_relationships_tested():
    """One cutoff for all relationships, at which the exact rates of passing each one sum to
    at most α (up to the estimate's noise); more relationships tested raise it."""
    reference = small_reference(n=300, seed=6)
    options = dict(theta=THETA, errors=ERRORS, false_positive_rate=1e-3, loci_counts=(3,),
                   n_simulations=60_000, seed=7)
    alone = calibrate(reference, relationships=("parent_offspring",), **options)
    together = calibrate(reference, **options)
    po_alone = alone.cutoffs["parent_offspring"][3]
    common = together.cutoffs["parent_offspring"][3]
    assert {together.cutoffs[name][3] for name in RELATIONSHIPS} == {common}
    assert common > po_alone
    exact = {name: exact_tail(reference, name, common)[0] for name in RELATIONSHIPS}
    assert sum(exact.values()) <= 1e-3 * 1.3
    # not needlessly high: a little lower, the exact rates sum to more than α
    assert sum(exact_tail(reference, name, common - 0.25)[0] for name in RELATIONSHIPS) > 7e-4
    _, power_alone = exact_tail(reference, "parent_offspring", po_alone)
    assert together.power["parent_offspring"][3] <= power_alone


def test_more_loci_give_more_power_and_roundtrip_through_json(tmp_path):
    reference = small_reference(n_loci=8, n_alleles=6, n=300, seed=4)
    result = calibrate(reference, theta=THETA, errors=ERRORS, false_positive_rate=1e-4,
                       loci_counts=(4, 8), n_simulations=5000, seed=5)
    assert result.power["same_animal"][8] > result.power["same_animal"][4]
    assert result.power["parent_offspring"][8] > result.power["parent_offspring"][4]
    path = result.save(tmp_path)
    again = Calibration.load(path)
    assert again.to_dict() == result.to_dict()
    assert again.cutoff_for("parent_offspring", 7) == result.cutoffs["parent_offspring"][4]
    assert again.cutoff_for("parent_offspring", 3) == float("inf")
    matrix = again.cutoff_matrix(("same_animal", "half_sibling"), 8)
    assert matrix.shape == (9, 2) and matrix[8, 1] == result.cutoffs["half_sibling"][8]
    assert calibrate(reference, theta=THETA, errors=ERRORS, false_positive_rate=1e-4,
                     loci_counts=(4, 8), n_simulations=5000, seed=5).to_dict() == result.to_dict()


def test_invalid_calibration_requests(tmp_path):
    reference = small_reference()
    with pytest.raises(ValueError, match="false-positive rate"):
        calibrate(reference, theta=0.0, false_positive_rate=2.0)
    with pytest.raises(ValueError, match="loci counts must be between 1 and 3"):
        calibrate(reference, theta=0.0, loci_counts=(5,))
    with pytest.raises(ValueError, match="unknown relationship"):
        calibrate(reference, theta=0.0, relationships=("cousin",))
    (tmp_path / "calibration.json").write_text("{}")
    with pytest.raises(ValueError, match="not a calibration file"):
        Calibration.load(tmp_path)


def test_reported_standard_errors_cover_the_exact_rates():
    """The importance-sampling estimate of the false-positive rate at the cutoff and the power,
    each with its reported Monte-Carlo standard error, agree with exact enumeration."""
    reference = small_reference(seed=8)
    result = calibrate(reference, theta=THETA, errors=ERRORS, false_positive_rate=4e-3,
                       loci_counts=(3,), n_simulations=40_000, seed=9)
    estimates, variances = [], []
    for relationship in ("parent_offspring", "full_sibling", "half_sibling"):
        cutoff = result.cutoffs[relationship][3]
        exact_fpr, exact_power = exact_tail(reference, relationship, cutoff)
        estimate = result.false_positive_estimate[relationship][3]
        se = result.false_positive_se[relationship][3]
        if se > 0:
            assert abs(estimate - exact_fpr) <= 4 * se
        else:  # no simulated pair reached the common cutoff: the exact rate is negligible
            assert estimate == 0 and exact_fpr < 4e-3 / 100
        estimates.append(estimate)
        variances.append(se**2)
        power_se = result.power_se[relationship][3]
        if power_se > 0:
            assert abs(result.power[relationship][3] - exact_power) <= 4 * power_se
        else:
            assert result.power[relationship][3] == 0 and exact_power < 1e-3
    same = result.false_positive_estimate["same_animal"][3]
    same_se = result.false_positive_se["same_animal"][3]
    # the rule that chose the cutoff: the summed estimate plus two standard errors is within α
    total = sum(estimates) + same + 2 * np.sqrt(sum(variances) + same_se**2)
    assert total <= 4e-3 * (1 + 1e-6)


def test_kinship_cutoffs_are_monotone_in_loci_compared():
    """One set of simulated pairs serves every loci count, so cutoffs do not jump with it (the
    old calibration gave 6.09, 3.71, 5.72 at 20, 22, 24 loci)."""
    reference = small_reference(n_loci=12, n_alleles=6, n=300, seed=4)
    result = calibrate(reference, theta=THETA, errors=ERRORS, false_positive_rate=4e-5, seed=5)
    for relationship in ("parent_offspring", "full_sibling", "half_sibling"):
        cutoffs = [result.cutoffs[relationship][m] for m in result.loci_counts]
        assert np.all(np.diff(cutoffs) > -0.05), (relationship, cutoffs)
    rows = result.rows()
    assert all(row["false_positive_rate_se"] is not None and row["power_se"] is not None
               for row in rows)



def two_population_reference(n_loci=3, n=150, seed=11):
    """Two populations with different allele frequencies at every locus."""
    rng = np.random.default_rng(seed)
    first = rng.choice(4, size=(n, n_loci, 2), p=[0.55, 0.25, 0.15, 0.05]) + 1
    second = rng.choice(4, size=(n, n_loci, 2), p=[0.05, 0.15, 0.25, 0.55]) + 1
    return GenotypeTable(np.concatenate([first, second]), [f"r{i}" for i in range(2 * n)],
                         [f"L{k}" for k in range(n_loci)],
                         population=np.array(["A"] * n + ["B"] * n))


def exact_search_rates(reference, between_theta, relationship, cutoff):
    """Exact rates at which an unrelated pair reaches ``cutoff`` as a search scores it with
    population frequencies, enumerating every combination of genotype pairs: within A, within
    B (each population's own frequencies), and across (one profile from each, the smaller LR of
    the two populations' frequencies)."""
    from matching.calibration import scoring_frequencies

    freq_sets = scoring_frequencies(reference, "population", between_theta)
    n_alleles = allele_counts(reference.replace(population=None)).coding.n_alleles
    r = list(RELATIONSHIPS).index(relationship)
    lr, within, marginal = {0: [], 1: []}, {0: [], 1: []}, {0: [], 1: []}
    for locus, count in enumerate(n_alleles):
        for s in (0, 1):
            f = freq_sets[s, locus, :count]
            q = observed_pair_probabilities(f, THETA, ERRORS)
            within[s].append(q[0].ravel())
            marginal[s].append(q[0].sum(axis=1))
            lr[s].append(locus_log10_lr(f, THETA, errors=ERRORS)[:, :, r].ravel())
    total = {s: sum(np.ix_(*lr[s])) for s in (0, 1)}

    def product(parts):
        out = parts[0]
        for part in parts[1:]:
            out = np.multiply.outer(out, part)
        return out

    across = product([np.outer(a, b).ravel() for a, b in zip(marginal[0], marginal[1],
                                                              strict=True)])
    smaller = np.minimum(total[0], total[1]) >= cutoff
    return (float(product(within[0])[total[0] >= cutoff].sum()),
            float(product(within[1])[total[1] >= cutoff].sum()),
            float(across[smaller].sum()))


def test_a_mix_of_population_pairs_is_calibrated_at_its_exact_rate():
    """Calibrated for a mix of pairs within and across two populations, the estimated rate at
    the cutoff is the exact rate of that mix as the search scores it (the smaller LR of the two
    populations' for a pair across them); the cutoff is lower than for pairs all within one."""
    reference = two_population_reference()
    between = 0.05
    options = dict(theta=THETA, errors=ERRORS, relationships=("parent_offspring",),
                   false_positive_rate=2e-3, loci_counts=(3,), n_simulations=80_000, seed=12,
                   frequencies="population", between_theta=between)
    mix = np.array([[0.1, 0.4], [0.4, 0.1]])
    mixed = calibrate(reference, pair_mix=mix, **options)
    within = calibrate(reference, **options)
    cutoff = mixed.cutoffs["parent_offspring"][3]
    assert cutoff < within.cutoffs["parent_offspring"][3]
    in_a, in_b, across = exact_search_rates(reference, between, "parent_offspring", cutoff)
    exact = 0.1 * in_a + 0.1 * in_b + 0.8 * across
    estimate = mixed.false_positive_estimate["parent_offspring"][3]
    se = mixed.false_positive_se["parent_offspring"][3]
    assert se > 0 and abs(estimate - exact) <= 4 * se
    assert exact <= 2e-3 * 1.3
    # not needlessly high: a little lower, the exact rate of the mix exceeds the target
    lower = exact_search_rates(reference, between, "parent_offspring", cutoff - 0.25)
    assert 0.1 * lower[0] + 0.1 * lower[1] + 0.8 * lower[2] > 2e-3 * 0.7
    assert mixed.notes["pairs_within_a_population"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="pair_mix must be"):
        calibrate(reference, pair_mix=np.array([[0.5, 0.1], [0.3, 0.1]]), **options)


def test_population_pair_mix_follows_the_searched_profiles():
    from matching.pair_search import population_pair_mix

    reference = two_population_reference(n_loci=12, n=150)
    a_rows, b_rows = np.arange(10), 150 + np.arange(10)
    only_a = reference.take(a_rows).replace(population=None)
    mix = population_pair_mix(reference, 0.05, only_a)
    assert mix.shape == (2, 2) and mix.sum() == pytest.approx(1.0) and mix[0, 0] > 0.99
    half = reference.take(np.concatenate([a_rows[:5], b_rows[:5]])).replace(population=None)
    mix = population_pair_mix(reference, 0.05, half)
    # 2 × C(5, 2) of the C(10, 2) = 45 pairs are within a population
    assert np.trace(mix) == pytest.approx(20 / 45, abs=0.02) and np.allclose(mix, mix.T)
    # 5 new of A against 10 existing of B: C(5, 2) = 10 of the 60 pairs within one
    mix = population_pair_mix(reference, 0.05, only_a.take(np.arange(5)),
                              reference.take(b_rows).replace(population=None))
    assert np.trace(mix) == pytest.approx(10 / 60, abs=0.02)


def _profiles_with_gaps(n, n_loci, seed, prefix):
    rng = np.random.default_rng(seed)
    alleles = rng.integers(1, 5, size=(n, n_loci, 2))
    alleles[rng.random((n, n_loci)) < 0.3] = -1
    return GenotypeTable(alleles, [f"{prefix}{i}" for i in range(n)],
                         [f"L{k}" for k in range(n_loci)])


def test_loci_compared_shares_count_every_pair_the_search_compares():
    new, existing = _profiles_with_gaps(9, 3, 1, "n"), _profiles_with_gaps(5, 3, 2, "e")
    pairs = [(new.typed[i], new.typed[j]) for i, j in itertools.combinations(range(9), 2)]
    pairs += [(new.typed[i], existing.typed[j]) for i in range(9) for j in range(5)]
    brute = np.bincount([int((a & b).sum()) for a, b in pairs], minlength=4) / len(pairs)
    assert loci_compared_shares(new, existing) == pytest.approx(brute, abs=1e-12)
    # more patterns than max_patterns: estimated from random pairs
    sampled = loci_compared_shares(new, existing, max_patterns=0, sample=200_000)
    assert sampled == pytest.approx(brute, abs=0.01)
    assert loci_compared_shares(new.take([0])).sum() == 0.0  # one profile: no pairs


def test_stated_power_is_the_exact_power_at_the_pairs_loci_compared():
    """The power a run states weighs the calibrated power at each loci count by the share of
    the search's pairs compared at it; checked against exact enumeration over every subset of
    loci of each count, pairs below the search's minimum counting as missed."""
    reference = small_reference()
    relationships = ("parent_offspring", "full_sibling")
    result = calibrate(reference, theta=THETA, errors=ERRORS, relationships=relationships,
                       false_positive_rate=1e-2, loci_counts=(1, 2, 3), n_simulations=60_000,
                       seed=5)
    new, existing = _profiles_with_gaps(12, 3, 3, "n"), _profiles_with_gaps(6, 3, 4, "e")
    search = KinshipSearch.from_reference(reference, new, existing, theta=THETA, errors=ERRORS,
                                          frequencies="pooled", relationships=relationships,
                                          min_loci=2, calibration=result)
    shares = loci_compared_shares(new, existing)
    assert shares[1] > 0 and shares[2] > 0 and shares[3] > 0
    summary = power_summary(search, 3, shares)
    for name in relationships:
        expected = 0.0
        for m in (2, 3):  # pairs at fewer than min_loci = 2 are never reported
            subsets = list(itertools.combinations(range(3), m))
            exact = np.mean([exact_tail(reference.select_loci([f"L{k}" for k in subset]),
                                        name, result.cutoffs[name][m])[1]
                             for subset in subsets])
            expected += shares[m] * exact
        row = summary[name]
        assert row["power"] == pytest.approx(expected, abs=4 * row["power_se"] + 1e-3)
        assert row["power_at_all_loci"] == result.power[name][3]
        assert row["mean_loci_compared"] == pytest.approx(np.arange(4) @ shares)
        assert row["power"] < row["power_at_all_loci"]


def _cache_options(**changes):
    options = dict(theta=THETA, errors=ERRORS, relationships=("parent_offspring",),
                   false_positive_rate=1e-3, loci_counts=(2, 3), n_simulations=2_000, seed=3,
                   reference_hash="abc")
    return {**options, **changes}


def test_calibration_cache_returns_what_calibrate_returns(tmp_path, monkeypatch):
    import matching.calibration as calibration_module

    reference = small_reference()
    fresh = calibrate(reference, **_cache_options())
    first = cached_calibrate(reference, tmp_path, **_cache_options())
    [stored] = tmp_path.glob("calibration-*.json")
    assert first.cutoffs == fresh.cutoffs and first.power == fresh.power

    def no_calibration(*args, **kwargs):
        raise AssertionError("calibrated again instead of loading the cache")

    monkeypatch.setattr(calibration_module, "calibrate", no_calibration)
    again = cached_calibrate(reference, tmp_path, **_cache_options())
    assert again.to_dict() == first.to_dict()
    monkeypatch.undo()
    # another seed, other loci or another parameter is another calibration
    cached_calibrate(reference, tmp_path, **_cache_options(seed=4))
    cached_calibrate(reference.select_loci(["L0", "L1"]), tmp_path,
                     **_cache_options(loci_counts=(2,)))
    cached_calibrate(reference, tmp_path, **_cache_options(errors=ErrorModel(0.01, 0.005)))
    assert len(list(tmp_path.glob("calibration-*.json"))) == 4
    # other genotypes under the same reference name and hash are another key too
    other = small_reference(seed=9)
    assert calibration_key(other, "abc", _cache_options()) != calibration_key(
        reference, "abc", _cache_options())
    assert stored.is_file()


def test_corrupt_cache_file_is_refitted_and_a_foreign_one_refused(tmp_path, caplog):
    reference = small_reference()
    first = cached_calibrate(reference, tmp_path, **_cache_options())
    [stored] = tmp_path.glob("calibration-*.json")
    stored.write_text("{not json")
    with caplog.at_level("WARNING", logger="matching.calibration"):
        refitted = cached_calibrate(reference, tmp_path, **_cache_options())
    assert "unreadable" in caplog.text and "calibrating again" in caplog.text
    assert refitted.cutoffs == first.cutoffs
    assert Calibration.load(stored).cutoffs == first.cutoffs  # rewritten whole
    data = json.loads(stored.read_text())
    data["reference_hash"] = "another reference"
    stored.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="refused"):
        cached_calibrate(reference, tmp_path, **_cache_options())


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DNATRACK_CALIBRATION_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.setenv("DNATRACK_CALIBRATION_CACHE", "none")
    assert default_cache_dir() is None
    monkeypatch.delenv("DNATRACK_CALIBRATION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "dnatrack" / "calibrations"
    assert resolve_cache_dir(None) == default_cache_dir()
    assert resolve_cache_dir("none") is None and resolve_cache_dir(" ") is None
    assert resolve_cache_dir(str(tmp_path / "x")) == tmp_path / "x"


def exact_assigned_power(reference, between_theta, relationship, cutoff):
    """Exact share of ``relationship`` pairs (each population's in turn, equal weight) reaching
    ``cutoff`` as the search scores them, enumerating every combination of genotype pairs at
    all loci: each profile assigned to the population with the larger Hardy–Weinberg
    likelihood of its genotypes (the first on ties), the pair given the smaller of its LRs
    under the two assigned populations' frequencies; also the share when each pair is scored
    with its own population's frequencies."""
    from matching.calibration import scoring_frequencies
    from matching.relationships import genotype_alleles

    freq_sets = scoring_frequencies(reference, "population", between_theta)
    n_alleles = allele_counts(reference.replace(population=None)).coding.n_alleles
    r = list(RELATIONSHIPS).index(relationship)
    k = np.array(RELATIONSHIPS[relationship])
    lr, related, first, second = ({0: [], 1: []} for _ in range(4))
    for locus, count in enumerate(n_alleles):
        a, b = genotype_alleles(int(count))
        for s in (0, 1):
            f = freq_sets[s, locus, :count]
            q = observed_pair_probabilities(f, THETA, ERRORS)
            related[s].append(np.einsum("k,kgh->gh", k, q).ravel())
            lr[s].append(locus_log10_lr(f, THETA, errors=ERRORS)[:, :, r].ravel())
            hw = np.log(np.where(a == b, 1.0, 2.0) * f[a] * f[b])
            first[s].append(np.repeat(hw, len(hw)))   # profile 1's genotype is the row
            second[s].append(np.tile(hw, len(hw)))
    total = {s: sum(np.ix_(*lr[s])) for s in (0, 1)}
    in_b_first = sum(np.ix_(*first[1])) > sum(np.ix_(*first[0]))
    in_b_second = sum(np.ix_(*second[1])) > sum(np.ix_(*second[0]))
    score = np.minimum(np.where(in_b_first, total[1], total[0]),
                       np.where(in_b_second, total[1], total[0]))
    joints = [_outer(related[s]) for s in (0, 1)]
    assigned = np.mean([joints[s][score >= cutoff].sum() for s in (0, 1)])
    own = np.mean([joints[s][total[s] >= cutoff].sum() for s in (0, 1)])
    return float(assigned), float(own)


def _outer(parts):
    out = parts[0]
    for part in parts[1:]:
        out = np.multiply.outer(out, part)
    return out


def test_power_is_that_of_pairs_scored_with_their_assigned_populations():
    """With population frequencies the power is that of related pairs scored as the search
    scores them — each profile assigned to its most likely population, the smaller LR of the
    two — checked against exact enumeration; populations this close are often confused, so it
    differs from the power of pairs scored with their own population's frequencies."""
    rng = np.random.default_rng(4)
    n = 150
    first = rng.choice(4, size=(n, 3, 2), p=[0.4, 0.3, 0.2, 0.1]) + 1
    second = rng.choice(4, size=(n, 3, 2), p=[0.15, 0.25, 0.3, 0.3]) + 1
    reference = GenotypeTable(np.concatenate([first, second]), [f"r{i}" for i in range(2 * n)],
                              [f"L{k}" for k in range(3)],
                              population=np.array(["A"] * n + ["B"] * n))
    between = 0.05
    result = calibrate(reference, theta=THETA, errors=ERRORS,
                       relationships=("parent_offspring", "full_sibling"),
                       false_positive_rate=2e-2, loci_counts=(3,), n_simulations=60_000,
                       seed=8, frequencies="population", between_theta=between)
    for name in ("parent_offspring", "full_sibling"):
        cutoff = result.cutoffs[name][3]
        assigned, own = exact_assigned_power(reference, between, name, cutoff)
        se = result.power_se[name][3]
        assert 0 < se and abs(result.power[name][3] - assigned) <= 4 * se
        assert abs(own - assigned) > 8 * se  # the assignment matters here
