"""The real data sets in ../shared/datasets parse with the counts stated in its README."""

import numpy as np
import pytest

from dnatrack.formats import detect_format, read_genotypes


@pytest.mark.parametrize(
    ("name", "n_profiles", "n_loci", "n_populations", "n_repunits"),
    [
        ("alewife_rubias.csv", 1070, 11, 21, 3),
        ("chinook_baseline_rubias.csv", 7301, 91, 69, 39),
    ],
)
def test_rubias_baselines(shared_datasets, name, n_profiles, n_loci, n_populations, n_repunits):
    path = shared_datasets / name
    assert detect_format(path) == "wide"
    table = read_genotypes(path)
    assert (table.n_profiles, table.n_loci) == (n_profiles, n_loci)
    assert len(set(table.population)) == n_populations
    assert len(set(table.repunit)) == n_repunits


def test_chinook_mixture(shared_datasets):
    table = read_genotypes(shared_datasets / "chinook_mixture_rubias.csv")
    assert (table.n_profiles, table.n_loci) == (2256, 91)
    assert sorted(set(table.group)) == ["rec1", "rec2", "rec3"]
    # Biallelic SNPs, coded by small positive integers (the README says 1-4; three loci also
    # use 5, e.g. Ots_RFC2.558 has alleles 4 and 5).
    assert all(len(table.alleles_at(j)) == 2 for j in range(table.n_loci))
    assert set(np.unique(table.alleles)) <= {-1, 1, 2, 3, 4, 5}


@pytest.fixture(scope="module")
def nancycats(shared_datasets):
    genepop = read_genotypes(shared_datasets / "nancycats.gen", duplicate_ids="number")
    structure = read_genotypes(shared_datasets / "nancycats.str")
    return genepop, structure


def test_nancycats_counts(nancycats):
    for table in nancycats:
        assert (table.n_profiles, table.n_loci) == (237, 9)
        assert len(table.unique_populations()) == 17
    genepop, structure = nancycats
    assert genepop.loci[:3] == ("fca8", "fca23", "fca43")
    # Names in the GENEPOP file are colony numbers, numbered apart: 1, 1_2, …
    assert genepop.profile_ids[:3].tolist() == ["1", "1_2", "1_3"]
    assert structure.profile_ids[:3].tolist() == ["N215", "N216", "N217"]


def test_nancycats_genepop_and_structure_hold_the_same_cats(nancycats):
    """The GENEPOP file codes alleles as indices 1, 2, … of the sorted sizes in the STRUCTURE
    file. Map codes to sizes by rank, locus by locus, then match the cats.

    The two files are *not* in the same order: nancycats.str lists seven cats of colony 12
    (rows 165-171 of nancycats.gen) after colony 16. Every other cat is in the same place.
    """
    genepop, structure = nancycats
    sizes_from_codes = np.full(genepop.alleles.shape, -1)
    for j in range(9):
        codes, sizes = genepop.alleles_at(j), structure.alleles_at(j)
        assert len(codes) == len(sizes)
        lookup = dict(zip(codes.tolist(), sizes.tolist(), strict=True))
        for i, pair in enumerate(genepop.alleles[:, j].tolist()):
            if pair[0] >= 0:
                sizes_from_codes[i, j] = [lookup[pair[0]], lookup[pair[1]]]
    # Colony k is the k-th Pop block of the GENEPOP file and has label k in the STRUCTURE file.
    colony = np.array([label.removeprefix("pop") for label in genepop.population])
    unmatched = set(range(237))
    order = []
    for i in range(237):
        same = [
            k for k in sorted(unmatched)
            if colony[k] == structure.population[i]
            and np.array_equal(sizes_from_codes[k], structure.alleles[i])
        ]
        assert same, f"STRUCTURE cat {structure.profile_ids[i]} has no GENEPOP twin"
        order.append(same[0])
        unmatched.remove(same[0])
    moved = list(range(164, 171))
    assert order == [*range(164), *range(171, 224), *moved, *range(224, 237)]
    assert set(structure.population[217:224]) == {"12"}
