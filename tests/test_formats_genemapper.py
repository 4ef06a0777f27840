import pytest

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats.genemapper import read_genemapper
from tests._formats_helpers import elephant_panel, located, write_text

HEADER = "Sample Name,Marker,Dye,Allele 1,Allele 2,Allele 3,Size 1,Height 1\n"


def test_comma_separated_one_call_is_a_homozygote(tmp_path):
    path = write_text(
        tmp_path,
        "gm.csv",
        HEADER
        + "t1,FH67,B,152,,,152.3,900\n"
        + "t1,FH71,G,,,,,\n"
        + "t2,FH67,B,148,156.0,,148.1,700\n",
    )
    table = read_genemapper(path)
    assert table.profile_ids.tolist() == ["t1", "t2"]
    assert table.loci == ("FH67", "FH71")
    assert table.alleles.tolist() == [[[152, 152], [-1, -1]], [[148, 156], [-1, -1]]]


def test_allele_columns_are_ordered_by_number_and_spacing_is_ignored(tmp_path):
    path = write_text(
        tmp_path, "gm.txt", "Allele2\tSAMPLE  NAME\tAllele1\tmarker\n156\tt1\t152\tFH67\n"
    )
    assert read_genemapper(path).alleles.tolist() == [[[152, 156]]]


@pytest.mark.parametrize(
    ("rows", "line", "field", "message"),
    [
        ("t1,FH67,B,152,156,160,,\n", 2, "Allele 3",
         "three alleles at locus 'FH67' \\(152, 156, 160\\)"),
        ("t1,FH67,B,OL,156,,,\n", 2, "Allele 1", "non-numeric allele 'OL'"),
        ("t1,FH67,B,152.31,,,,\n", 2, "Allele 1", "allele '152.31' is not a whole number"),
        ("t1,FH67,B,152,,,,\nt1,FH67,B,152,,,,\n", 3, "Marker",
         "sample 't1' has a second row for locus 'FH67'"),
        ("t1,FH67,B,152,,\n", 2, None, "6 fields where the header \\(line 1\\) has 8"),
        ("", None, None, "no genotype rows"),
    ],
)
def test_bad_rows_name_line_and_field(tmp_path, rows, line, field, message):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + rows)
    with pytest.raises(GenotypeFormatError, match=located("bad.csv", line, field) + message):
        read_genemapper(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Sample,Marker,Allele 1\n", "no 'Sample Name' column"),
        ("Sample Name,Locus,Allele 1\n", "no 'Marker' column"),
        ("Sample Name,Marker,Size 1\n", "no allele columns"),
    ],
)
def test_missing_columns(tmp_path, header, message):
    path = tmp_path / "cols.txt"
    path.write_text(header + "t1,FH67,152\n")
    with pytest.raises(GenotypeFormatError, match=located("cols.txt", 1) + message):
        read_genemapper(path)


def test_panel_checks_markers_and_sizes(tmp_path):
    path = write_text(tmp_path, "p.csv", HEADER + "t1,FH67,B,152,,,,\nt1,AMEL,B,1,,,,\n")
    with pytest.raises(GenotypeFormatError, match=located("p.csv", 3, "Marker")
                       + "unknown locus 'AMEL'"):
        read_genemapper(path, panel=elephant_panel("FH67"))
    with pytest.raises(GenotypeFormatError, match=located("p.csv", 2, "FH67")
                       + "allele 152 outside the range 160..300"):
        read_genemapper(path, panel=elephant_panel("FH67", "AMEL", low=160))
