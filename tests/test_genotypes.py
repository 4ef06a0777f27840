import numpy as np
import pytest

from dnatrack.genotypes import MISSING, AlleleCoding, GenotypeTable


def make_table(alleles, ids=None, loci=None, **kw):
    alleles = np.asarray(alleles)
    ids = ids or [f"s{i}" for i in range(alleles.shape[0])]
    loci = loci or [f"L{j}" for j in range(alleles.shape[1])]
    return GenotypeTable(alleles, ids, loci, **kw)


def test_alleles_are_sorted_and_half_missing_becomes_untyped():
    table = make_table([[[152, 148], [-1, 200], [170, 170]]])
    assert table.alleles.dtype == np.int16
    assert table.alleles.flags.c_contiguous
    assert table.alleles.tolist() == [[[148, 152], [MISSING, MISSING], [170, 170]]]
    assert table.typed.tolist() == [[True, False, True]]
    assert table.n_typed.tolist() == [2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alleles": np.zeros((2, 3))}, "shape"),
        ({"alleles": [[[1, 2]]], "ids": ["a", "a"][:1], "loci": ["L", "L"]}, "locus names"),
        ({"alleles": [[[1, 2]], [[3, 4]]], "ids": ["a", "a"]}, "duplicate profile id 'a'"),
        ({"alleles": [[[1, 2], [3, 4]]], "loci": ["L", "L"]}, "duplicate locus 'L'"),
        ({"alleles": [[[1, 40000]]]}, "must lie in"),
        ({"alleles": [[[-5, 2]]]}, "must lie in"),
        ({"alleles": [[[0, 2]]]}, "allele value 0"),
        ({"alleles": [[[1.5, 2]]]}, "whole numbers"),
        ({"alleles": [[[1, 2]]], "population": ["a", "b"]}, "population has 2 entries"),
        ({"alleles": [[[1, 2]]], "lat": [91.0], "lon": [0.0]}, "lat of profile 0"),
        ({"alleles": [[[1, 2]]], "lat": [1.0]}, "given together"),
    ],
)
def test_invalid_tables_are_rejected(kwargs, message):
    kwargs = dict(kwargs)
    alleles = kwargs.pop("alleles")
    ids = kwargs.pop("ids", None)
    loci = kwargs.pop("loci", None)
    with pytest.raises(ValueError, match=message):
        if np.asarray(alleles).ndim != 3:
            GenotypeTable(alleles, ["a", "b"], ["L", "M", "N"])
        else:
            make_table(alleles, ids=ids, loci=loci, **kwargs)


def test_take_select_concat():
    table = make_table(
        [[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 9], [-1, -1]]],
        population=["p", "q", "p"],
    )
    picked = table.take([2, 0])
    assert picked.profile_ids.tolist() == ["s2", "s0"]
    assert picked.population.tolist() == ["p", "p"]
    assert table.take(table.population == "q").profile_ids.tolist() == ["s1"]
    swapped = table.select_loci(["L1", "L0"])
    assert swapped.alleles[0].tolist() == [[3, 4], [1, 2]]
    with pytest.raises(KeyError, match="no locus 'X'"):
        table.select_loci(["X"])
    other = make_table([[[2, 2], [4, 4]]], ids=["t0"])
    joined = GenotypeTable.concat([table, other])
    assert joined.profile_ids.tolist() == ["s0", "s1", "s2", "t0"]
    assert joined.population.tolist() == ["p", "q", "p", ""]
    with pytest.raises(ValueError, match="duplicate profile id"):
        GenotypeTable.concat([table, table])
    assert table.unique_populations() == ["p", "q"]
    assert table.index_of("s1") == 1


def test_allele_coding_encodes_decodes_and_extends():
    reference = make_table([[[100, 104]], [[104, 108]]])
    query = make_table([[[96, 104]], [[-1, -1]]], ids=["q0", "q1"])
    coding = AlleleCoding.from_tables(reference)
    assert coding.alleles[0].tolist() == [100, 104, 108]
    assert coding.encode(reference)[:, 0].tolist() == [[0, 1], [1, 2]]
    with pytest.raises(ValueError, match="profile 'q0', locus 'L0': allele 96"):
        coding.encode(query)
    extended = coding.extend(query)
    # existing indices are kept; the unseen allele is appended
    assert extended.alleles[0].tolist() == [100, 104, 108, 96]
    codes = extended.encode(query)
    assert codes[:, 0].tolist() == [[3, 1], [-1, -1]]
    assert np.array_equal(extended.decode(codes)[:, 0], [[96, 104], [-1, -1]])
    assert extended.n_alleles.tolist() == [4]


def test_to_allel_is_variant_major():
    table = make_table([[[100, 104], [5, 5]], [[104, 104], [-1, -1]]])
    g = table.to_allel()
    assert g.shape == (2, 2, 2)
    assert g[0, 1].tolist() == [1, 1]
    assert g.is_missing()[1, 1]
