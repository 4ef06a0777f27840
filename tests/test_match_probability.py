import numpy as np
import pytest

from dnatrack.genotypes import AlleleCoding, GenotypeTable
from matching.frequencies import allele_counts
from matching.match_probability import genotype_match_probability, match_probabilities
from matching.relationships import genotype_alleles, locus_log10_lr


def reference():
    # 10 animals at one locus: allele 100 ×10 copies, 102 ×6, 104 ×4 → p = .5, .3, .2
    alleles = [[[100, 100]]] * 3 + [[[100, 102]]] * 4 + [[[102, 104]]] * 2 + [[[104, 104]]]
    return GenotypeTable(alleles, [f"r{i}" for i in range(10)], ["L"])


def test_hand_computed_values():
    counts = allele_counts(reference())
    # 2N = 20 copies → floor 5/20 = .25 lifts allele 104 from .2 to .25; renormalised
    p = np.array([0.5, 0.3, 0.25]) / 1.05
    theta = 0.05
    den = (1 + theta) * (1 + 2 * theta)
    profiles = GenotypeTable([[[100, 100]], [[102, 104]], [[-1, -1]]], ["a", "b", "c"], ["L"])
    result = match_probabilities(profiles, counts, theta)
    hom = (2 * theta + (1 - theta) * p[0]) * (3 * theta + (1 - theta) * p[0]) / den
    het = 2 * (theta + (1 - theta) * p[1]) * (theta + (1 - theta) * p[2]) / den
    assert result.per_locus[:, 0] == pytest.approx([hom, het, 1.0])
    assert result.loci_typed.tolist() == [1, 1, 0]
    assert result.one_in[0] == pytest.approx(1 / hom)


def test_theta_zero_is_the_product_rule():
    counts = allele_counts(reference())
    profiles = GenotypeTable([[[100, 102]]], ["x"], ["L"])
    p = np.array([0.5, 0.3, 0.25]) / 1.05
    assert match_probabilities(profiles, counts, 0.0).profile[0] == pytest.approx(2 * p[0] * p[1])


@pytest.mark.parametrize("theta", [0.0, 0.03, 0.1])
def test_equals_inverse_identity_lr_of_the_kinship_tables(theta):
    """Two independent routes to the same number: NRC II 4.10 and the Balding–Nichols
    IBD tables (LR of 'same animal' for a genotype seen twice is 1 / match probability)."""
    freqs = np.array([0.1, 0.2, 0.3, 0.4])
    a, b = genotype_alleles(4)
    lr = locus_log10_lr(freqs, theta)[:, :, 0]
    via_nrc = genotype_match_probability(freqs[a], freqs[b], a == b, theta)
    assert np.allclose(10 ** -np.diag(lr), via_nrc)


def test_population_choice_and_errors():
    ref = reference().replace(population=["p"] * 5 + ["q"] * 5)
    query = GenotypeTable([[[100, 106]]], ["x"], ["L"])
    with pytest.raises(ValueError, match="not in the allele coding"):
        match_probabilities(query, allele_counts(ref), 0.01)
    counts = allele_counts(ref, AlleleCoding.from_tables(ref).extend(query))
    by_p = match_probabilities(query, counts, 0.01, population="p")
    by_q = match_probabilities(query, counts, 0.01, population="q")
    assert by_p.population == "p" and by_p.profile[0] != by_q.profile[0]
    with pytest.raises(KeyError, match="no population 'z'"):
        match_probabilities(query, counts, 0.01, population="z")
    with pytest.raises(ValueError, match="theta"):
        match_probabilities(query, counts, -0.1)
