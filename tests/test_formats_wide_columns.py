"""The wide CSV reader refuses allele columns it would otherwise drop."""

import re

import pytest

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats import read_genotypes


def write(tmp_path, text):
    path = tmp_path / "wide.csv"
    path.write_text(text)
    return path


def test_a_third_allele_column_is_an_error(tmp_path):
    path = write(tmp_path, "indiv,FH67,FH67.1,FH67.2\nA,100,102,104\n")
    with pytest.raises(GenotypeFormatError, match=r"wide.csv, line 1, field 'FH67.2': three "
                                                  r"alleles at locus 'FH67'"):
        read_genotypes(path, format="wide")


def test_a_misnamed_second_column_is_an_error(tmp_path):
    path = write(tmp_path, "indiv,FH67,FH71.1,S03,S03.1\nA,100,102,150,152\n")
    with pytest.raises(GenotypeFormatError, match=r"field 'FH71.1': column 'FH71.1' has no "
                                                  r"first-allele column 'FH71'"):
        read_genotypes(path, format="wide")


def test_rows_are_read_independently(tmp_path):
    path = write(tmp_path, "indiv,L,L.1\nA,100,102\nB,104,106\n")
    table = read_genotypes(path, format="wide")
    assert table.alleles[:, 0].tolist() == [[100, 102], [104, 106]]


@pytest.mark.parametrize(
    ("bad_row", "line", "field", "message"),
    [
        ("C,102,x,104,100", 4, "L", "non-numeric allele 'x'"),
        ("C,102,100,104,100.5", 4, "M", "allele '100.5' is not a whole number"),
        ("C,102,100,-5,100", 4, "M", "allele '-5' is out of range"),
    ],
)
def test_a_bad_cell_after_good_rows_names_its_line_and_locus(
    tmp_path, bad_row, line, field, message
):
    # The reader parses each distinct text once; a bad text must still be caught where it is,
    # even when its neighbours were all seen (and remembered) on earlier rows.
    good = "A,100,102,104,100\nB,102,100,100,104\n"
    path = write(tmp_path, f"indiv,L,L.1,M,M.1\n{good}{bad_row}\n")
    expected = re.escape(f"line {line}, field '{field}': {message}")
    with pytest.raises(GenotypeFormatError, match=expected):
        read_genotypes(path, format="wide")
