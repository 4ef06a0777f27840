import numpy as np
import pytest

from dnatrack.genotypes import AlleleCoding, GenotypeTable
from matching.frequencies import allele_counts, point_frequencies


def table():
    # Two populations; locus L0 has alleles 100, 104, 108, locus L1 has 7 and 9.
    return GenotypeTable(
        [
            [[100, 104], [7, 7]],
            [[104, 104], [-1, -1]],
            [[100, 108], [7, 9]],
            [[108, 108], [9, 9]],
        ],
        ["a", "b", "c", "d"],
        ["L0", "L1"],
        population=["p", "p", "q", "q"],
    )


def test_counts_by_hand():
    counts = allele_counts(table())
    assert counts.populations == ("p", "q")
    assert counts.counts[:, 0].tolist() == [[1, 3, 0], [1, 0, 3]]
    assert counts.counts[:, 1].tolist() == [[2, 0, 0], [1, 3, 0]]
    assert counts.totals.tolist() == [[4, 2], [4, 4]]
    assert counts.pooled().counts[0, 0].tolist() == [2, 3, 3]
    assert counts.allele_mask.tolist() == [[True, True, True], [True, True, False]]


def test_counts_for_chosen_populations_and_unseen_alleles():
    t = table()
    query = GenotypeTable([[[96, 100], [7, 11]]], ["x"], ["L0", "L1"])
    coding = AlleleCoding.from_tables(t).extend(query)
    counts = allele_counts(t, coding, populations=["q"])
    assert counts.counts.shape == (1, 2, 4)
    assert counts.counts[0, 0].tolist() == [1, 0, 3, 0]  # 96 unseen, appended last
    with pytest.raises(KeyError, match="no population 'z'"):
        counts.population_index("z")


def test_point_frequencies_with_and_without_floor():
    counts = allele_counts(table())
    raw = point_frequencies(counts, floor=False)
    assert np.allclose(raw[0, 0], [0.25, 0.75, 0.0])
    assert np.allclose(raw[0, 1], [1.0, 0.0, 0.0])  # padding stays zero
    floored = point_frequencies(counts)
    # population p, locus L0: 2N = 4 copies, floor 5/4 caps every allele, so all are equal
    assert np.allclose(floored[0, 0], [1 / 3, 1 / 3, 1 / 3])
    assert np.allclose(floored.sum(axis=2), 1.0)


def test_floor_on_a_larger_sample_matches_hand_computation():
    # 50 animals: allele 1 seen 99 times, allele 2 once, allele 3 never.
    alleles = np.array([[[1, 1]]] * 49 + [[[1, 2]]])
    t = GenotypeTable(alleles, [f"s{i}" for i in range(50)], ["L"])
    coding = AlleleCoding(("L",), (np.array([1, 2, 3], dtype=np.int16),))
    freqs = point_frequencies(allele_counts(t, coding))[0, 0]
    floor = 5 / 100
    # alleles seen in the reference are floored and renormalised; the unseen one keeps the floor
    expected = np.array([0.99 / (0.99 + floor), floor / (0.99 + floor), floor])
    assert np.allclose(freqs, expected)


def test_frequencies_of_known_alleles_do_not_depend_on_the_batch():
    t = table()
    alone = point_frequencies(allele_counts(t))
    batch = GenotypeTable([[[96, 112], [5, 11]]], ["x"], ["L0", "L1"])
    extended = point_frequencies(allele_counts(t, AlleleCoding.from_tables(t).extend(batch)))
    assert np.array_equal(extended[:, 0, :3], alone[:, 0, :3])
    assert np.array_equal(extended[:, 1, :2], alone[:, 1, :2])
    # the batch's novel alleles (96, 112 at L0; 5, 11 at L1) get the floor, capped at
    # 1 / (alleles seen + 1) in these tiny samples
    assert np.allclose(extended[:, 0, 3:5], 1 / 4)
    assert np.allclose(extended[:, 1, 2:4], 1 / 3)
