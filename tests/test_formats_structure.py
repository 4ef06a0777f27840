import pytest

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats.structure import read_structure, write_structure
from dnatrack.genotypes import GenotypeTable
from tests._formats_helpers import elephant_panel, located, write_text

# label, POPDATA, POPFLAG, LOCDATA, then two loci; no marker names.
TWO_ROW_THREE_EXTRAS = """
    a 1 1 7 150 -9
    a 1 1 7 154 -9
    b 2 0 7 150 210
    b 2 0 7 150 214
"""


def test_two_row_without_marker_names_counts_equal_leading_columns(tmp_path):
    path = write_text(tmp_path, "x.str", TWO_ROW_THREE_EXTRAS)
    table = read_structure(path)
    assert table.loci == ("locus1", "locus2")
    assert table.profile_ids.tolist() == ["a", "b"]
    assert table.population.tolist() == ["1", "2"]
    assert table.alleles.tolist() == [[[150, 154], [-1, -1]], [[150, 150], [210, 214]]]
    # The population may be any extra column, or none.
    assert read_structure(path, pop_column=4).population.tolist() == ["7", "7"]
    assert read_structure(path, pop_column=0).population is None


def test_explicit_layout_overrides_the_guesses(tmp_path):
    # Every individual is homozygous at the first locus, so the guess takes it for metadata.
    path = write_text(
        tmp_path,
        "homozygous.str",
        """
        a 1 150 200
        a 1 150 204
        b 2 152 200
        b 2 152 208
        """,
    )
    guessed = read_structure(path)
    assert guessed.n_loci == 1
    table = read_structure(path, extra_columns=1)
    assert table.alleles.tolist() == [[[150, 150], [200, 204]], [[152, 152], [200, 208]]]
    one_row = read_structure(path, two_row=False, extra_columns=1, duplicate_ids="number")
    assert one_row.profile_ids.tolist() == ["a", "a_2", "b", "b_2"]
    assert one_row.alleles[:, 0].tolist() == [[150, 200], [150, 204], [152, 200], [152, 208]]


def test_one_row_layout_and_marker_names(tmp_path):
    path = write_text(
        tmp_path,
        "one.str",
        """
        FH67 FH71
        t1 north 152 156 200 -9
        t2 south 148 148 196 204
        """,
    )
    table = read_structure(path)
    assert table.loci == ("FH67", "FH71")
    assert table.population.tolist() == ["north", "south"]
    assert table.alleles.tolist() == [[[152, 156], [-1, -1]], [[148, 148], [196, 204]]]


def test_one_row_without_names_takes_an_odd_leading_column_as_population(tmp_path):
    path = write_text(tmp_path, "odd.str", "t1 3 152 156 200 204\nt2 4 148 148 196 204\n")
    table = read_structure(path)
    assert table.population.tolist() == ["3", "4"]
    assert table.loci == ("locus1", "locus2")
    # POPDATA and POPFLAG, both integers, leave an even count: they must be given.
    path = write_text(tmp_path, "even.str", "t1 3 1 152 156 200 204\nt2 4 1 148 148 196 204\n")
    assert read_structure(path).n_loci == 3
    table = read_structure(path, extra_columns=2)
    assert table.n_loci == 2
    assert table.population.tolist() == ["3", "4"]


def test_missing_code_option(tmp_path):
    path = write_text(tmp_path, "zero.str", "L1\nt1 0 152\nt1 0 156\nt2 0 0\nt2 0 0\n")
    table = read_structure(path, missing=("0", "-9"), pop_column=0)
    assert table.alleles.tolist() == [[[152, 156]], [[-1, -1]]]


@pytest.mark.parametrize(
    ("body", "options", "line", "field", "message"),
    [
        ("L1 L2\na 1 150 x\na 1 154 200\n", {}, 2, "L2", "non-numeric allele 'x'"),
        ("L1 L2\na 1 150 200\na 1 154 200.5\n", {}, 3, "L2", "allele '200.5' is not a whole"),
        ("L1 L2\na 1 150 200\na 1 154 0\n", {}, 3, "L2", "allele '0' is out of range"),
        ("L1 L2\na 1 150 200\na 1 154\n", {}, 3, None, "3 fields where line 2 has 4"),
        ("L1 L2\na 1 150 200\na 2 154 200\n", {"two_row": True}, 3, "column 2",
         "extra column differs between the two rows of 'a'"),
        ("L1 L2\na 1 150 200\nb 1 154 200\n", {"two_row": True}, 3, "label",
         "second row of individual 'a' is labelled 'b'"),
        ("L1 L2\na 1 150 200\na 1 154 200\nb 1 150 200\n", {"two_row": True}, 4, None,
         "odd number of genotype rows \\(3\\)"),
        ("L1 L1\na 1 150 200\na 1 154 200\n", {}, 1, "L1", "locus 'L1' appears twice"),
        ("L1 L2\na 150 200 154\n", {}, 2, None,
         "cannot split 4 fields per row into a label, extra columns and one-row alleles and 2 "
         "marker names"),
        ("a 150 150\na 150 150\n", {}, 1, None, "cannot split 3 fields per row"),
        ("L1 L2 L3\n", {"marker_names": True}, 1, None, "no genotype rows"),
        ("\n\n", {}, 1, None, "empty file"),
    ],
)
def test_bad_files_name_line_and_field(tmp_path, body, options, line, field, message):
    path = tmp_path / "bad.str"
    path.write_text(body)
    with pytest.raises(GenotypeFormatError, match=located("bad.str", line, field) + message):
        read_structure(path, **options)


def test_duplicate_labels_and_panel(tmp_path):
    path = write_text(tmp_path, "dup.str", "L1\na 150\na 154\na 158\na 158\n")
    with pytest.raises(GenotypeFormatError, match=located("dup.str", 4, "sample id")
                       + "duplicate sample id 'a'"):
        read_structure(path)
    assert read_structure(path, duplicate_ids="number").profile_ids.tolist() == ["a", "a_2"]
    with pytest.raises(GenotypeFormatError, match=located("dup.str", 1, "L1") + "unknown locus"):
        read_structure(path, panel=elephant_panel("FH67"))
    with pytest.raises(GenotypeFormatError, match=located("dup.str", 4, "L1")
                       + "allele 158 outside the range 100..155"):
        read_structure(path, panel=elephant_panel("L1", high=155), duplicate_ids="number")


def test_pop_column_must_be_an_extra_column(tmp_path):
    path = write_text(tmp_path, "p.str", "L1\na 1 150\na 1 154\n")
    with pytest.raises(ValueError, match="pop_column 3 is not one of the extra columns"):
        read_structure(path, pop_column=3)


def test_writer_layouts(tmp_path):
    table = GenotypeTable(
        [[[152, 156], [-1, -1]], [[148, 148], [196, 204]]], ["t1", "t2"], ["FH67", "FH71"],
        population=["north", "south"],
    )
    path = tmp_path / "out.str"
    write_structure(table, path)
    assert path.read_text().splitlines() == [
        "FH67\tFH71",
        "t1\tnorth\t152\t-9",
        "t1\tnorth\t156\t-9",
        "t2\tsouth\t148\t196",
        "t2\tsouth\t148\t204",
    ]
    write_structure(table.replace(population=None), path, two_row=False, marker_names=False)
    assert path.read_text().splitlines() == ["t1\t152\t156\t-9\t-9", "t2\t148\t148\t196\t204"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"profile_ids": ["tusk 1"]}, "profile id 'tusk 1'"),
        ({"loci": ["FH 67"]}, "locus 'FH 67'"),
        ({"population": [""]}, "population ''"),
    ],
)
def test_writer_refuses_fields_with_spaces(tmp_path, change, message):
    table = GenotypeTable([[[1, 2]]], ["a"], ["L"], population=["P"]).replace(**change)
    path = tmp_path / "refused.str"
    with pytest.raises(ValueError, match=message):
        write_structure(table, path)
    assert not path.exists()
