"""Panel statistics (Ho, He, PI, PI_sib) and Weir & Cockerham's θ.

Every number is checked against an independent computation written here: hand-worked values,
plain-Python loops over genotypes, a direct transcription of Weir & Cockerham (1984), and
scikit-allel where it computes the same quantity.
"""

from __future__ import annotations

import math
from collections import Counter

import allel
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnatrack.formats import read_genotypes
from dnatrack.genotypes import GenotypeTable
from matching.panel_stats import identity_probabilities, panel_stats
from matching.theta import (
    PUBLISHED_THETA,
    ThetaEstimate,
    ThetaNotEstimable,
    published_theta,
    select_theta,
    weir_cockerham_theta,
)


def small_table() -> GenotypeTable:
    # L0 pooled: 100 ×5, 102 ×3, 104 ×2 copies over 5 typed animals → p = .5, .3, .2
    # L1 pooled: 7 ×6, 9 ×4 over 5 typed animals → p = .6, .4
    return GenotypeTable(
        [
            [[100, 100], [7, 9]],
            [[100, 102], [7, 7]],
            [[100, 102], [9, 9]],
            [[102, 104], [7, 7]],
            [[100, 104], [-1, -1]],
            [[-1, -1], [7, 9]],
        ],
        ["s1", "s2", "s3", "s4", "s5", "s6"],
        ["L0", "L1"],
        population=["p", "p", "p", "q", "q", "q"],
    )


# ---------------------------------------------------------------- independent twin (loops)
def loop_locus_stats(genotypes: list[tuple[int, int]]) -> dict:
    """Ho, He, He_Nei, PI, PI_sib of one locus from a list of typed genotypes."""
    copies = Counter()
    heterozygotes = 0
    for first, second in genotypes:
        copies[first] += 1
        copies[second] += 1
        heterozygotes += first != second
    total = sum(copies.values())
    p = [count / total for count in copies.values()]
    sum_p2 = sum(x * x for x in p)
    sum_p4 = sum(x**4 for x in p)
    return {
        "n_alleles": len(copies),
        "n_typed": len(genotypes),
        "ho": heterozygotes / len(genotypes),
        "he": 1 - sum_p2,
        "he_nei": total / (total - 1) * (1 - sum_p2),
        "pi": 2 * sum_p2**2 - sum_p4,
        "pi_sib": 0.25 + 0.5 * sum_p2 + 0.5 * sum_p2**2 - 0.25 * sum_p4,
    }


def typed_genotypes(table: GenotypeTable, rows, locus: int) -> list[tuple[int, int]]:
    return [
        (int(table.alleles[i, locus, 0]), int(table.alleles[i, locus, 1]))
        for i in rows
        if table.alleles[i, locus, 0] >= 0
    ]


# ---------------------------------------------------------------- hand-computed values
def test_hand_computed_pooled_values():
    stats = panel_stats(small_table())
    l0, l1 = stats.locus_stats
    # L0: Σp² = .25+.09+.04 = .38, Σp⁴ = .0625+.0081+.0016 = .0722, 4 of 5 heterozygous
    assert (l0.n_alleles, l0.n_typed) == (3, 5)
    assert l0.ho == pytest.approx(0.8)
    assert l0.he == pytest.approx(0.62)
    assert l0.he_nei == pytest.approx(10 / 9 * 0.62)
    assert l0.pi == pytest.approx(2 * 0.38**2 - 0.0722)  # 0.2166
    assert l0.pi_sib == pytest.approx(0.25 + 0.19 + 0.5 * 0.1444 - 0.25 * 0.0722)  # 0.49415
    # L1: Σp² = .36+.16 = .52, Σp⁴ = .1296+.0256 = .1552, 2 of 5 heterozygous
    assert (l1.n_alleles, l1.n_typed) == (2, 5)
    assert l1.ho == pytest.approx(0.4)
    assert l1.he == pytest.approx(0.48)
    assert l1.pi == pytest.approx(0.3856)
    assert l1.pi_sib == pytest.approx(0.6064)
    panel = stats.panels[0]
    assert panel.population == "all" and panel.n_loci == 2
    assert panel.pi == pytest.approx(0.2166 * 0.3856)
    assert panel.pi_sib == pytest.approx(0.49415 * 0.6064)
    assert panel.mean_ho == pytest.approx(0.6)
    assert panel.mean_n_alleles == pytest.approx(2.5)


def test_by_population_agrees_with_loops():
    table = small_table()
    stats = panel_stats(table, by_population=True)
    assert stats.populations == ("p", "q")
    for record in stats.locus_stats:
        rows = np.flatnonzero(table.population == record.population)
        expected = loop_locus_stats(typed_genotypes(table, rows, table.locus_index(record.locus)))
        for key, value in expected.items():
            assert getattr(record, key) == pytest.approx(value), (record, key)
    # q at L0: 102/104 and 100/104 typed → p = .25, .25, .5; both heterozygous
    q_l0 = stats.locus_stats[2]
    assert (q_l0.population, q_l0.locus, q_l0.ho, q_l0.he) == ("q", "L0", 1.0, 0.625)


def test_untyped_locus_in_a_population_is_left_out_of_the_panel():
    table = small_table().replace(population=["p", "p", "p", "q", "q", "r"])  # r: s6 only
    stats = panel_stats(table, by_population=True)
    r_l1 = [s for s in stats.locus_stats if s.population == "r" and s.locus == "L1"][0]
    assert r_l1.n_typed == 1 and r_l1.ho == 1.0
    r_l0 = [s for s in stats.locus_stats if s.population == "r" and s.locus == "L0"][0]
    assert r_l0.n_typed == 0 and r_l0.n_alleles == 0
    assert all(math.isnan(v) for v in (r_l0.ho, r_l0.he, r_l0.he_nei, r_l0.pi, r_l0.pi_sib))
    row = r_l0.to_row()
    assert row["ho"] is None and row["pi"] is None
    panel = stats.panels[2]
    assert panel.n_loci == 1
    assert panel.pi == pytest.approx(r_l1.pi)
    assert panel.mean_ho == 1.0


def test_rows_carry_theta_columns():
    table = small_table()
    stats = panel_stats(table)
    estimate = weir_cockerham_theta(table)
    chosen = select_theta(override=0.05)
    rows = stats.rows(estimate, chosen)
    assert [r["locus"] for r in rows] == ["L0", "L1", "panel"]
    assert rows[0]["theta_wc"] == pytest.approx(estimate.per_locus[0])
    assert rows[2]["theta_wc"] == estimate.theta
    assert rows[2]["theta_used"] == 0.05
    assert rows[2]["pi"] == pytest.approx(0.2166 * 0.3856)
    assert "theta_wc" not in stats.rows()[0]


def test_by_population_needs_labels():
    table = small_table().replace(population=None)
    with pytest.raises(ValueError, match="need population labels"):
        panel_stats(table, by_population=True)
    assert panel_stats(table).populations == ("all",)


# ---------------------------------------------------------------- properties
@settings(deadline=None, max_examples=200)
@given(st.lists(st.floats(min_value=1e-3, max_value=1.0), min_size=1, max_size=30))
def test_pi_sib_at_least_pi(weights):
    freqs = np.array(weights) / sum(weights)
    pi, pi_sib = identity_probabilities(freqs)
    assert pi_sib >= pi - 1e-12
    assert 0.0 < pi <= 1.0 + 1e-12
    # PI is the chance two unrelated genotypes match: Σ over genotypes of P(genotype)².
    genotype_probs = [freqs[i] ** 2 for i in range(len(freqs))] + [
        2 * freqs[i] * freqs[j] for i in range(len(freqs)) for j in range(i + 1, len(freqs))
    ]
    assert pi == pytest.approx(sum(g * g for g in genotype_probs))


# ---------------------------------------------------------------- scikit-allel agreement
def allel_expected_heterozygosity(allele_freqs: np.ndarray) -> np.ndarray:
    """scikit-allel's He: the plain ``1 − Σp²``, no sample-size correction (like ``he``).

    scikit-allel returns NaN where its frequencies sum to less than one, which rounding alone
    can cause; there the frequencies are checked to sum to one and the same formula is applied
    to scikit-allel's own frequencies.
    """
    he = allel.heterozygosity_expected(allele_freqs, ploidy=2)
    rounded = np.isnan(he)
    assert np.allclose(allele_freqs[rounded].sum(axis=1), 1.0, rtol=0, atol=1e-12)
    he[rounded] = 1.0 - (allele_freqs[rounded] ** 2).sum(axis=1)
    return he


def test_ho_he_agree_with_scikit_allel(shared_datasets):
    table = read_genotypes(shared_datasets / "alewife_rubias.csv")
    genotypes = table.to_allel()
    pooled = panel_stats(table)
    allele_freqs = genotypes.count_alleles().to_frequencies()
    expected_he = allel_expected_heterozygosity(allele_freqs)
    expected_ho = allel.heterozygosity_observed(genotypes)
    n_called = genotypes.count_called(axis=1)
    assert [s.he for s in pooled.locus_stats] == pytest.approx(expected_he)
    assert [s.ho for s in pooled.locus_stats] == pytest.approx(expected_ho)
    assert [s.n_typed for s in pooled.locus_stats] == list(n_called)
    assert [s.he_nei for s in pooled.locus_stats] == pytest.approx(
        expected_he * 2 * n_called / (2 * n_called - 1)
    )

    by_population = panel_stats(table, by_population=True)
    n_loci = table.n_loci
    for k, population in enumerate(by_population.populations):
        members = np.flatnonzero(table.population == population)
        subset = genotypes.take(members, axis=1)
        freqs = subset.count_alleles(max_allele=genotypes.max()).to_frequencies()
        records = by_population.locus_stats[k * n_loci:(k + 1) * n_loci]
        assert [s.he for s in records] == pytest.approx(allel_expected_heterozygosity(freqs))
        assert [s.ho for s in records] == pytest.approx(allel.heterozygosity_observed(subset))


def test_alewife_numbers_are_sane(shared_datasets):
    table = read_genotypes(shared_datasets / "alewife_rubias.csv")
    pooled = panel_stats(table).panels[0]
    assert pooled.n_loci == 11
    assert 1e-10 < pooled.pi < 1e-6 < pooled.pi_sib < 1e-2
    # Pooling 21 partly differentiated collections gives a heterozygote deficit (Wahlund).
    assert pooled.mean_ho < pooled.mean_he
    estimate = weir_cockerham_theta(table)
    assert len(estimate.populations) == 21
    # Collections within three reporting units of one fish: small but clearly positive.
    assert 0.01 < estimate.theta < 0.1
    assert 0 < estimate.standard_error < estimate.theta / 2
    assert np.all(estimate.per_locus > 0)


# ---------------------------------------------------------------- θ: brute force WC84
def wc84_locus(samples: list[list[tuple[int, int]]]) -> tuple[float, float, float]:
    """Σ over alleles of Weir & Cockerham's (1984) a, b, c for one locus, written out from
    the paper. ``samples`` holds the typed genotypes of each population; populations with no
    typed animal are not sampled at this locus."""
    samples = [s for s in samples if s]
    r = len(samples)
    alleles = sorted({x for sample in samples for genotype in sample for x in genotype})
    n = [len(sample) for sample in samples]
    n_bar = sum(n) / r
    n_c = (r * n_bar - sum(x * x for x in n) / (r * n_bar)) / (r - 1)
    total_a = total_b = total_c = 0.0
    for allele in alleles:
        p = [sum(g.count(allele) for g in sample) / (2 * len(sample)) for sample in samples]
        h = [sum(1 for g in sample if g.count(allele) == 1) / len(sample) for sample in samples]
        p_bar = sum(n[i] * p[i] for i in range(r)) / (r * n_bar)
        s2 = sum(n[i] * (p[i] - p_bar) ** 2 for i in range(r)) / ((r - 1) * n_bar)
        h_bar = sum(n[i] * h[i] for i in range(r)) / (r * n_bar)
        within = p_bar * (1 - p_bar) - (r - 1) / r * s2
        total_a += n_bar / n_c * (s2 - (within - h_bar / 4) / (n_bar - 1))
        total_b += n_bar / (n_bar - 1) * (within - (2 * n_bar - 1) / (4 * n_bar) * h_bar)
        total_c += h_bar / 2
    return total_a, total_b, total_c


def brute_force_theta(table: GenotypeTable) -> tuple[float, list[float]]:
    populations = list(dict.fromkeys(table.population))
    members = [np.flatnonzero(table.population == p) for p in populations]
    per_locus, numerator, denominator = [], 0.0, 0.0
    for j in range(table.n_loci):
        a, b, c = wc84_locus([typed_genotypes(table, rows, j) for rows in members])
        per_locus.append(a / (a + b + c))
        numerator += a
        denominator += a + b + c
    return numerator / denominator, per_locus


def random_populations(rng, freqs_per_population, n_per_population, missing=0.0):
    """Genotypes drawn under Hardy–Weinberg from per-population frequencies (list over
    populations of arrays (n_loci, n_alleles)); allele codes 1..n_alleles."""
    blocks, labels = [], []
    for k, (freqs, n) in enumerate(zip(freqs_per_population, n_per_population, strict=True)):
        loci = [rng.choice(len(f), size=(n, 2), p=f) + 1 for f in freqs]
        block = np.stack(loci, axis=1)
        block[rng.random((n, len(freqs))) < missing] = -1
        blocks.append(block)
        labels += [f"pop{k}"] * n
    alleles = np.concatenate(blocks)
    return GenotypeTable(
        alleles,
        [f"a{i}" for i in range(len(alleles))],
        [f"L{j}" for j in range(alleles.shape[1])],
        population=labels,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("missing", [0.0, 0.15])
def test_theta_matches_brute_force_wc84(seed, missing):
    rng = np.random.default_rng(seed)
    n_loci, n_alleles = 6, 4
    ancestral = rng.dirichlet(np.ones(n_alleles), size=n_loci)
    freqs = [np.array([rng.dirichlet(20 * f) for f in ancestral]) for _ in range(3)]
    table = random_populations(rng, freqs, [12, 7, 20], missing=missing)
    estimate = weir_cockerham_theta(table)
    theta, per_locus = brute_force_theta(table)
    assert estimate.theta == pytest.approx(theta)
    assert estimate.per_locus == pytest.approx(per_locus)
    assert estimate.populations == ("pop0", "pop1", "pop2")


def test_locus_untyped_in_one_population_drops_that_population_there():
    rng = np.random.default_rng(7)
    freqs = [rng.dirichlet(np.ones(3), size=3) for _ in range(3)]
    table = random_populations(rng, freqs, [10, 10, 10])
    alleles = table.alleles.copy()
    alleles[20:, 1] = -1  # pop2 untyped at L1
    table = table.replace(alleles=alleles)
    estimate = weir_cockerham_theta(table)
    theta, per_locus = brute_force_theta(table)
    assert estimate.theta == pytest.approx(theta)
    assert estimate.per_locus == pytest.approx(per_locus)
    only_two = table.take(np.arange(20)).select_loci(["L1"])
    assert estimate.per_locus[1] == pytest.approx(weir_cockerham_theta(only_two).theta)


def test_theta_agrees_with_scikit_allel_average_and_jackknife(shared_datasets):
    table = read_genotypes(shared_datasets / "alewife_rubias.csv")
    populations = table.unique_populations()
    subpops = [np.flatnonzero(table.population == p) for p in populations]
    theta, se, _, _ = allel.average_weir_cockerham_fst(table.to_allel(), subpops, blen=1)
    estimate = weir_cockerham_theta(table)
    assert estimate.theta == pytest.approx(theta)
    assert estimate.standard_error == pytest.approx(se)


def test_jackknife_standard_error_by_leaving_out_each_locus():
    rng = np.random.default_rng(11)
    ancestral = rng.dirichlet(np.ones(5), size=8)
    freqs = [np.array([rng.dirichlet(10 * f) for f in ancestral]) for _ in range(2)]
    table = random_populations(rng, freqs, [25, 30])
    estimate = weir_cockerham_theta(table)
    leave_one_out = [
        weir_cockerham_theta(table.select_loci([x for x in table.loci if x != locus])).theta
        for locus in table.loci
    ]
    mean = sum(leave_one_out) / len(leave_one_out)
    n = len(leave_one_out)
    expected_se = math.sqrt((n - 1) / n * sum((v - mean) ** 2 for v in leave_one_out))
    assert estimate.standard_error == pytest.approx(expected_se)


def test_fixed_differences_give_theta_one():
    # Two populations homozygous for different alleles: s² = ½, h̄ = 0 → a = ½, b = c = 0.
    alleles = [[[1, 1]]] * 4 + [[[2, 2]]] * 4
    table = GenotypeTable(alleles, list("abcdefgh"), ["L"], population=["x"] * 4 + ["y"] * 4)
    estimate = weir_cockerham_theta(table)
    assert estimate.theta == pytest.approx(1.0)
    assert estimate.components[0] == pytest.approx([1.0, 0.0, 0.0])  # summed over 2 alleles
    assert math.isnan(estimate.standard_error)


def test_theta_near_zero_for_one_population_split_and_positive_when_differentiated():
    rng = np.random.default_rng(2024)
    shared = rng.dirichlet(np.ones(6), size=20)
    same = weir_cockerham_theta(random_populations(rng, [shared, shared], [300, 300]))
    assert abs(same.theta) < 0.005
    assert abs(same.theta) < 3 * same.standard_error
    apart = [np.array([rng.dirichlet(5 * f) for f in shared]) for _ in range(2)]
    different = weir_cockerham_theta(random_populations(rng, apart, [300, 300]))
    assert different.theta > 0.05
    assert different.theta > 3 * different.standard_error


def test_theta_errors_name_the_problem():
    table = small_table()
    with pytest.raises(ThetaNotEstimable, match="needs population labels"):
        weir_cockerham_theta(table.replace(population=None))
    with pytest.raises(ThetaNotEstimable, match=r"at least 2 populations; .* 1 \('p'\)"):
        weir_cockerham_theta(table.replace(population=["p"] * 6))
    # Empty labels (mixture samples) are not a population.
    with pytest.raises(ThetaNotEstimable, match="at least 2 populations"):
        weir_cockerham_theta(table.replace(population=["p"] * 3 + [""] * 3))
    monomorphic = GenotypeTable([[[5, 5]]] * 4, list("abcd"), ["L"], population=list("xxyy"))
    with pytest.raises(ThetaNotEstimable, match="no locus is polymorphic"):
        weir_cockerham_theta(monomorphic)
    assert issubclass(ThetaNotEstimable, ValueError)


def test_theta_rows_and_dict():
    estimate = weir_cockerham_theta(small_table())
    rows = estimate.rows()
    assert [r["locus"] for r in rows] == ["L0", "L1"]
    assert rows[0]["theta"] == pytest.approx(estimate.per_locus[0])
    assert rows[0]["a"] == pytest.approx(estimate.components[0, 0])
    data = estimate.to_dict()
    assert data["populations"] == ["p", "q"]
    assert data["loci_used"] == 2


# ---------------------------------------------------------------- θ: choosing the value
def test_published_values_by_species_name():
    assert PUBLISHED_THETA == {"savanna elephant": 0.047, "forest elephant": 0.059, "rhino": 0.1}
    assert published_theta("Savanna_Elephant") == 0.047
    assert published_theta("Loxodonta cyclotis") == 0.059
    assert published_theta("white-rhino") == 0.1
    with pytest.raises(ValueError, match="no published θ for species 'mammoth'"):
        published_theta("mammoth")


def test_select_theta_prefers_the_override():
    table = small_table()
    assert select_theta(table, 0.03).value == 0.03
    assert select_theta(table, "0.03").source == "user override"
    choice = select_theta(override="forest_elephant")
    assert (choice.value, choice.source) == (0.059, "published value for forest elephant")
    for bad in (1.0, -0.1, "1.5", float("nan")):
        with pytest.raises(ValueError, match=r"θ override must be in \[0, 1\)"):
            select_theta(table, bad)
    with pytest.raises(ValueError, match="no published θ"):
        select_theta(table, "dodo")
    with pytest.raises(ValueError, match="give reference genotypes"):
        select_theta()


def test_select_theta_falls_back_to_the_estimate():
    rng = np.random.default_rng(5)
    freqs = [rng.dirichlet(np.ones(4), size=5) for _ in range(2)]
    table = random_populations(rng, freqs, [30, 30])
    estimate = weir_cockerham_theta(table)
    assert estimate.theta > 0
    choice = select_theta(table)
    assert choice.value == pytest.approx(estimate.theta)
    assert choice.source.startswith("Weir & Cockerham estimate over 2 populations")
    assert select_theta(estimate).value == estimate.theta


def test_negative_estimate_is_used_as_zero():
    # Two populations with identical samples and excess heterozygosity: θ < 0.
    alleles = [[[1, 2]], [[1, 2]], [[1, 1]], [[2, 2]]] * 2
    table = GenotypeTable(alleles, list("abcdefgh"), ["L"], population=["x"] * 4 + ["y"] * 4)
    estimate = weir_cockerham_theta(table)
    assert estimate.theta < 0
    choice = select_theta(estimate)
    assert choice.value == 0.0
    assert "is negative and is used as 0" in choice.source
    assert isinstance(estimate, ThetaEstimate)
