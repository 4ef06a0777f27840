import numpy as np
import pytest

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats.genepop import read_genepop, write_genepop
from dnatrack.genotypes import GenotypeTable
from tests._formats_helpers import elephant_panel, located, write_text

GOOD = """
    title
    A, B
    Pop
    x1 , 0102 0303
    x2 , 0204 0000
"""


def test_two_digit_codes_loci_on_one_line_and_unnamed_pops(tmp_path):
    path = write_text(
        tmp_path,
        "cats.gen",
        """
        Cats
        A, B,
        C
        POP
        c1 , 0102 0303 0001
        c2 ,\t0204 0000 1010

        pop
        c3 , 0909 0102 0203
        """,
    )
    table = read_genepop(path)
    assert table.loci == ("A", "B", "C")
    assert table.profile_ids.tolist() == ["c1", "c2", "c3"]
    # "0001" has one allele missing: the locus is untyped.
    assert table.alleles.tolist() == [
        [[1, 2], [3, 3], [-1, -1]],
        [[2, 4], [-1, -1], [10, 10]],
        [[9, 9], [1, 2], [2, 3]],
    ]
    assert table.population.tolist() == ["pop1", "pop1", "pop2"]


def test_pop_labels_and_individuals_named_pop_something(tmp_path):
    path = write_text(
        tmp_path,
        "named.gen",
        """
        t
        A
        Pop Kenya North
        pop1 , 100104
        Pop, Tanzania
        Population-2 , 104104
        """,
    )
    table = read_genepop(path)
    # "pop1 ," and "Population-2 ," are individuals, not Pop lines.
    assert table.profile_ids.tolist() == ["pop1", "Population-2"]
    assert table.population.tolist() == ["Kenya North", "Tanzania"]
    assert table.alleles[:, 0].tolist() == [[100, 104], [104, 104]]


def test_repeated_names_are_an_error_unless_numbered(tmp_path):
    path = write_text(
        tmp_path,
        "dups.gen",
        """
        t
        A
        Pop
        1 , 0101
        1 , 0102
        Pop
        2 , 0202
        1 , 0303
        """,
    )
    with pytest.raises(GenotypeFormatError, match=located("dups.gen", 5, "sample id")
                       + "duplicate sample id '1' \\(first on line 4\\)"):
        read_genepop(path)
    table = read_genepop(path, duplicate_ids="number")
    assert table.profile_ids.tolist() == ["1", "1_2", "2", "1_3"]
    assert table.alleles[:, 0, 1].tolist() == [1, 2, 2, 3]


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        ("t\nA, B\nPop\nx , 0102 01x3\n", 4, "B", "non-numeric allele in genotype '01x3'"),
        ("t\nA, B\nPop\nx , 0102 010\n", 4, "B", "genotype '010' has 3 digits"),
        ("t\nA, B\nPop\nx , 0102 0103\ny , 001002 0103\n", 5, "A",
         "genotype '001002' has 6 digits but line 4 uses 4"),
        ("t\nA, B\nPop\nx , 0102\n", 4, None, "1 genotypes for 2 loci"),
        ("t\nA, B\nPop\nx , 0102 0103 0104\n", 4, None, "3 genotypes for 2 loci"),
        ("t\nA, B\nPop\nx 0102 0103\n", 4, None, "individual line has no comma between the name"),
        ("t\nA, B\nPop\n , 0102 0103\n", 4, None, "empty sample id"),
        ("t\nA\nB\nA\nPop\nx , 0101 0101 0101\n", 4, "A", "locus 'A' appears twice"),
        ("t\nA, B\nx , 0102 0103\n", 3, None, "no 'Pop' line"),
        ("t\nPop\nx , 0102\n", 2, None, "no locus names"),
        ("t\nA\nPop\nPop\n", 4, None, "no individuals"),
        ("\n\n  \n", 1, None, "empty file"),
    ],
)
def test_bad_files_name_line_and_field(tmp_path, body, line, field, message):
    path = tmp_path / "bad.gen"
    path.write_text(body)
    with pytest.raises(GenotypeFormatError, match=located("bad.gen", line, field) + message):
        read_genepop(path)


def test_panel_checks_loci_and_allele_codes(tmp_path):
    path = write_text(tmp_path, "p.gen", GOOD)
    with pytest.raises(GenotypeFormatError, match=located("p.gen", 2, "B") + "unknown locus 'B'"):
        read_genepop(path, panel=elephant_panel("A", low=1, high=10))
    with pytest.raises(GenotypeFormatError, match=located("p.gen", 5, "A")
                       + "allele 4 outside the range 1..3 of A"):
        read_genepop(path, panel=elephant_panel("A", "B", low=1, high=3))
    assert read_genepop(path, panel=elephant_panel("A", "B", low=1, high=4)).n_profiles == 2


def test_writer_uses_two_digits_below_100_and_three_above(tmp_path):
    table = GenotypeTable(
        [[[1, 99], [-1, -1]], [[12, 12], [5, 7]]], ["a", "b"], ["L1", "L2"],
        population=["north", "north"],
    )
    path = tmp_path / "small.gen"
    write_genepop(table, path, title="two digits")
    assert path.read_text().splitlines() == [
        "two digits", "L1", "L2", "Pop north", "a , 0199 0000", "b , 1212 0507",
    ]
    wide = table.replace(alleles=[[[1, 100], [-1, -1]], [[12, 12], [5, 7]]])
    write_genepop(wide, path)
    assert path.read_text().splitlines()[-2:] == ["a , 001100 000000", "b , 012012 005007"]
    assert np.array_equal(read_genepop(path).alleles, wide.alleles)


def test_writer_groups_profiles_by_population_in_order_of_first_appearance(tmp_path):
    table = GenotypeTable(
        [[[1, 2]], [[3, 4]], [[5, 6]], [[7, 8]]], ["a", "b", "c", "d"], ["L"],
        population=["P", "Q", "P", ""],
    )
    path = tmp_path / "grouped.gen"
    write_genepop(table, path)
    lines = path.read_text().splitlines()
    assert lines[2:] == ["Pop P", "a , 0102", "c , 0506", "Pop Q", "b , 0304", "Pop", "d , 0708"]
    back = read_genepop(path)
    assert back.profile_ids.tolist() == ["a", "c", "b", "d"]
    # An unnamed block reads back as pop<block number>.
    assert back.population.tolist() == ["P", "P", "Q", "pop3"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alleles": [[[1000, 2]]]}, "allele 1000 at locus 'L' does not fit"),
        ({"profile_ids": ["a,b"]}, "profile id 'a,b'"),
        ({"loci": ["L,M"]}, "locus 'L,M'"),
        ({"population": ["two\nlines"]}, "population 'two\\\\nlines'"),
        ({"population": ["Kenya, north"]}, "population 'Kenya, north'"),
    ],
)
def test_writer_refuses_what_genepop_cannot_hold(tmp_path, change, message):
    table = GenotypeTable([[[1, 2]]], ["a"], ["L"], population=["P"]).replace(**change)
    path = tmp_path / "refused.gen"
    with pytest.raises(ValueError, match=message):
        write_genepop(table, path)
    assert not path.exists()
