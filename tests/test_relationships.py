"""Relationship LRs checked against closed forms and a brute-force enumeration.

The brute force below is written from first principles and shares nothing with
``matching.relationships``: allele sequences are scored with the Dirichlet-multinomial
(the distribution the Balding–Nichols formula is a predictive form of), all ordered allele draws
are enumerated, and IBD sharing is modelled by copying an allele.
"""

import itertools
import math

import numpy as np
import pytest

from matching.relationships import (
    RELATIONSHIPS,
    ErrorModel,
    genotype_alleles,
    genotype_codes,
    ibd_pair_probabilities,
    kinship_tables,
    locus_log10_lr,
    observation_matrix,
    observed_pair_probabilities,
)

FREQS = np.array([0.1, 0.15, 0.3, 0.45])


def sequence_probability(alleles, p, theta):
    """P(ordered allele draws) under a Dirichlet(α p) prior, α = (1 − θ)/θ."""
    if theta == 0:
        return math.prod(p[a] for a in alleles)
    alpha = (1 - theta) / theta
    n = len(alleles)
    value = math.lgamma(alpha) - math.lgamma(alpha + n)
    for allele in set(alleles):
        k = alleles.count(allele)
        value += math.lgamma(alpha * p[allele] + k) - math.lgamma(alpha * p[allele])
    return math.exp(value)


def genotype_of(x, y, index):
    return index[tuple(sorted((x, y)))]


def brute_force(p, theta):
    n_alleles = len(p)
    a, b = genotype_alleles(n_alleles)
    index = {(int(x), int(y)): g for g, (x, y) in enumerate(zip(a, b))}
    g = len(index)
    out = np.zeros((3, g, g))
    for seq in itertools.product(range(n_alleles), repeat=4):
        out[0, genotype_of(*seq[:2], index), genotype_of(*seq[2:], index)] += (
            sequence_probability(list(seq), p, theta)
        )
    for seq in itertools.product(range(n_alleles), repeat=3):
        prob = sequence_probability(list(seq), p, theta)
        for shared in seq[:2]:  # the offspring/sibling copy of one of G1's alleles
            out[1, genotype_of(*seq[:2], index), genotype_of(shared, seq[2], index)] += prob / 2
    for seq in itertools.product(range(n_alleles), repeat=2):
        g1 = genotype_of(*seq, index)
        out[2, g1, g1] += sequence_probability(list(seq), p, theta)
    return out


@pytest.mark.parametrize("theta", [0.0, 0.01, 0.05, 0.2])
def test_ibd_probabilities_match_brute_force(theta):
    assert np.allclose(ibd_pair_probabilities(FREQS, theta), brute_force(FREQS, theta), atol=1e-14)


def closed_form_x_y(g1, g2, p):
    """Brenner's X (parent–offspring LR) and Y (identity LR) at θ = 0."""
    (a, b), (c, d) = g1, g2
    shared = set(g1) & set(g2)
    if a == b and c == d:
        x = 1 / p[a] if a == c else 0.0
    elif a == b or c == d:
        hom = a if a == b else c
        x = 1 / (2 * p[hom]) if hom in shared else 0.0
    elif {a, b} == {c, d}:
        x = (p[a] + p[b]) / (4 * p[a] * p[b])
    elif shared:
        x = 1 / (4 * p[shared.pop()])
    else:
        x = 0.0
    if sorted(g1) != sorted(g2):
        y = 0.0
    else:
        y = 1 / p[a] ** 2 if a == b else 1 / (2 * p[a] * p[b])
    return x, y


def test_every_allele_sharing_case_against_closed_forms_at_theta_zero():
    lr = 10 ** locus_log10_lr(FREQS, 0.0)
    names = list(RELATIONSHIPS)
    a, b = genotype_alleles(len(FREQS))
    genotypes = list(zip(a.tolist(), b.tolist()))
    cases_seen = set()
    for i, g1 in enumerate(genotypes):
        for j, g2 in enumerate(genotypes):
            x, y = closed_form_x_y(g1, g2, FREQS)
            expected = {
                "same_animal": y,
                "parent_offspring": x,
                "full_sibling": 0.25 + x / 2 + y / 4,
                "half_sibling": 0.5 + x / 2,
            }
            for r, name in enumerate(names):
                assert lr[i, j, r] == pytest.approx(expected[name], rel=1e-12, abs=1e-300)
            cases_seen.add(_case_name(g1, g2))
    # The enumeration covers every sharing pattern, including a shared allele listed second.
    assert cases_seen >= {
        "aa/aa", "aa/ab", "ab/aa", "ab/ab", "ab/ac", "ab/bc", "ab/ca", "ab/cb", "ab/cd",
        "aa/bb", "aa/bc",
    }


def _case_name(g1, g2):
    letters = {}
    for allele in (*g1, *g2):
        letters.setdefault(allele, "abcd"[len(letters)])
    return "".join(letters[x] for x in g1) + "/" + "".join(letters[x] for x in g2)


def test_theta_lowers_the_identity_lr_for_a_rare_homozygote():
    no_theta = locus_log10_lr(FREQS, 0.0)[0, 0, 0]
    with_theta = locus_log10_lr(FREQS, 0.05)[0, 0, 0]
    # NRC II 4.10: match probability of aa is [2θ+(1−θ)p][3θ+(1−θ)p]/[(1+θ)(1+2θ)]
    theta, p = 0.05, FREQS[0]
    nrc = (2 * theta + (1 - theta) * p) * (3 * theta + (1 - theta) * p) / (
        (1 + theta) * (1 + 2 * theta)
    )
    assert with_theta == pytest.approx(-math.log10(nrc))
    assert with_theta < no_theta


def test_observation_matrix_by_hand():
    e = observation_matrix(2, ErrorModel(dropout_rate=0.1, miscall_rate=0.02))
    # genotypes: 0 = (0,0), 1 = (0,1), 2 = (1,1)
    assert np.allclose(
        e,
        [
            [0.98, 0.01, 0.01],
            [0.01 + 0.05, 1 - 0.02 - 0.1, 0.01 + 0.05],
            [0.01, 0.01, 0.98],
        ],
    )


def test_errors_fold_into_pair_tables_like_a_double_sum():
    errors = ErrorModel(dropout_rate=0.05, miscall_rate=0.01)
    true = ibd_pair_probabilities(FREQS, 0.03)
    e = observation_matrix(len(FREQS), errors)
    g = e.shape[0]
    expected = np.zeros_like(true)
    for k in range(3):
        for o1, o2, t1, t2 in itertools.product(range(g), repeat=4):
            expected[k, o1, o2] += true[k, t1, t2] * e[t1, o1] * e[t2, o2]
    assert np.allclose(observed_pair_probabilities(FREQS, 0.03, errors), expected)


def test_error_model_keeps_every_lr_finite():
    plain = locus_log10_lr(FREQS, 0.02)
    robust = locus_log10_lr(FREQS, 0.02, errors=ErrorModel())
    assert np.isneginf(plain).any()  # exclusions exist without an error model
    assert np.isfinite(robust).all()
    # aa vs ab under dropout: parent–offspring support survives and identity is now possible
    a_ab = 1
    assert robust[0, a_ab, 0] > -3


def test_single_allele_locus_is_uninformative():
    lr = locus_log10_lr(np.array([1.0]), 0.05, errors=ErrorModel())
    assert lr.shape == (1, 1, 4)
    assert np.allclose(lr, 0.0)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="theta"):
        ibd_pair_probabilities(FREQS, 1.0)
    with pytest.raises(ValueError, match="unknown relationship 'cousin'"):
        locus_log10_lr(FREQS, 0.0, ("cousin",))
    with pytest.raises(ValueError, match="dropout_rate"):
        ErrorModel(dropout_rate=0.7)


def test_genotype_codes_and_flat_tables():
    codes = genotype_codes(np.array([[[0, 1], [-1, -1]], [[2, 2], [0, 0]]]), np.array([3, 2]))
    assert codes.tolist() == [[1, 3], [5, 0]]  # missing → G_l = 3 at a 2-allele locus
    freqs = np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    tables = kinship_tables(freqs, np.array([3, 2]), 0.01)
    assert tables.strides.tolist() == [7, 4]
    block = tables.locus_table(1)
    assert np.allclose(block[:3, :3], locus_log10_lr(freqs[1, :2], 0.01, errors=ErrorModel()))
    assert np.all(block[3] == 0) and np.all(block[:, 3] == 0)


def test_alleles_seen_only_in_queries_are_not_miscall_targets():
    # 3 alleles, the last seen only in a query: genotypes 0=(0,0) 1=(0,1) 2=(1,1) are known
    e = observation_matrix(3, ErrorModel(dropout_rate=0.0, miscall_rate=0.06),
                           n_reference_alleles=2)
    assert np.allclose(e.sum(axis=1), 1.0)
    known = [0, 1, 2]
    novel = [3, 4, 5]
    assert np.allclose(e[np.ix_(known, novel)], 0.0)
    assert np.allclose(e[0, [1, 2]], 0.03)  # spread over the two other known genotypes
    assert np.allclose(e[3, known], 0.02)  # a novel genotype is miscalled into known ones
