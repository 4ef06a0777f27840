import pytest

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats.long import read_long, write_long
from dnatrack.genotypes import GenotypeTable
from tests._formats_helpers import elephant_panel, located, write_text


def test_tab_separated_aliases_other_columns_and_unordered_rows(tmp_path):
    path = write_text(
        tmp_path,
        "calls.tsv",
        "Indiv\tMarker\tA1\tA2\tcomment\tSeizure\tRepunit\n"
        "t2\tFH71\t200\t204\tok\tS1\tsavanna\n"
        "t1\tFH67\t152\tNA\t\tS1\tsavanna\n"
        "t2\tFH67\t148\t148\t\tS1\tsavanna\n",
    )
    table = read_long(path)
    # Samples and loci in order of first appearance; t1 has no FH71 row, so it is untyped.
    assert table.profile_ids.tolist() == ["t2", "t1"]
    assert table.loci == ("FH71", "FH67")
    assert table.alleles.tolist() == [[[200, 204], [148, 148]], [[-1, -1], [-1, -1]]]
    assert table.group.tolist() == ["S1", "S1"]
    assert table.repunit.tolist() == ["savanna", "savanna"]
    assert table.population is None


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        ("sample,locus,allele1,allele2\na,L,150,OL\n", 2, "L", "non-numeric allele 'OL'"),
        ("sample,locus,allele1,allele2\na,L,150,15.5\n", 2, "L", "allele '15.5' is not a whole"),
        ("sample,locus,allele1,allele2\na,L,150,70000\n", 2, "L", "allele '70000' is out of range"),
        ("sample,locus,allele1,allele2\na,L,150\n", 2, None, "3 fields where the header"),
        ("sample,locus,allele1,allele2\na,L,1,2\nb,L,1,2\na,L,3,4\n", 4, "locus",
         "sample 'a' has a second row for locus 'L' \\(first on line 2\\)"),
        ("sample,locus,allele1,allele2,pop\na,L,1,2,P\na,M,1,2,Q\n", 3, "population",
         "population 'Q' of sample 'a' differs from 'P' on line 2"),
        ("sample,locus,allele1,allele2\n,L,1,2\n", 2, None, "empty sample id"),
        ("sample,locus,allele1,allele2\na,,1,2\n", 2, "locus", "empty locus name"),
        ("sample,marker,allele1\na,L,1\n", 1, None, "no allele2 column"),
        ("sample,locus,allele1,allele2\n", None, None, "no genotype rows"),
        ("", 1, None, "empty file"),
    ],
)
def test_bad_files_name_line_and_field(tmp_path, body, line, field, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(GenotypeFormatError, match=located("bad.csv", line, field) + message):
        read_long(path)


def test_panel_names_the_row(tmp_path):
    path = write_text(
        tmp_path, "p.csv", "sample,locus,allele1,allele2\na,FH67,150,152\na,FH71,150,400\n"
    )
    with pytest.raises(GenotypeFormatError, match=located("p.csv", 3, "locus")
                       + "unknown locus 'FH71'"):
        read_long(path, panel=elephant_panel("FH67"))
    with pytest.raises(GenotypeFormatError, match=located("p.csv", 3, "FH71")
                       + "allele 400 outside the range 100..300"):
        read_long(path, panel=elephant_panel("FH67", "FH71"))


def test_writer_keeps_untyped_profiles_and_metadata(tmp_path):
    table = GenotypeTable(
        [[[152, 156], [-1, -1]], [[-1, -1], [-1, -1]]], ["t1", "t2"], ["FH67", "FH71"],
        group=["S1", "S2"],
    )
    path = tmp_path / "out.csv"
    write_long(table, path)
    assert path.read_text().splitlines() == [
        "sample,locus,allele1,allele2,group",
        "t1,FH67,152,156,S1",
        "t1,FH71,,,S1",
        "t2,FH67,,,S2",
        "t2,FH71,,,S2",
    ]
    back = read_long(path)
    assert back.same_genotypes(table)
    assert back.group.tolist() == ["S1", "S2"]
    write_long(table, tmp_path / "out.tsv")
    assert (tmp_path / "out.tsv").read_text().splitlines()[1] == "t1\tFH67\t152\t156\tS1"
