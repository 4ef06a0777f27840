import pytest

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats.wasser import read_wasser, write_wasser
from dnatrack.genotypes import GenotypeTable
from tests._formats_helpers import elephant_panel, located, write_text


def test_tab_separated_with_population_column(tmp_path):
    path = write_text(
        tmp_path,
        "w.txt",
        "id\tFH67\tPopulation\tFH71\n"
        "a\t152\tKenya\t-999\n"
        "a\t156\tKenya\t200\n"
        "b\t\tTanzania\t196\n"
        "b\tNA\tTanzania\t204\n",
    )
    table = read_wasser(path)
    assert table.loci == ("FH67", "FH71")
    assert table.population.tolist() == ["Kenya", "Tanzania"]
    assert table.alleles.tolist() == [[[152, 156], [-1, -1]], [[-1, -1], [196, 204]]]


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        ("s,L1,L2\na,150,x\na,154,200\n", 2, "L2", "non-numeric allele 'x'"),
        ("s,L1,L2\na,150,200\na,154,-9\n", 3, "L2", "allele '-9' is out of range"),
        ("s,L1,L2\na,150,200\nb,154,200\n", 3, "s",
         "sample 'a' \\(line 2\\) has one row; the next row is sample 'b'"),
        ("s,L1,L2\na,150,200\na,154,200\nb,150,200\n", 4, None, "sample 'b' has one row"),
        ("s,L1,L2,seizure\na,150,200,S1\na,154,200,S2\n", 3, "seizure",
         "group differs between the two rows of 'a'"),
        ("s,L1,L2\na,150,200\na,154,200\na,150,200\na,154,200\n", 4, "sample id",
         "duplicate sample id 'a' \\(first on line 2\\)"),
        ("s,L1,L2\na,150\na,154,200\n", 2, None, "2 fields where the header"),
        ("s,L1,L1\na,150,200\na,154,200\n", 1, "L1", "locus 'L1' appears twice"),
        ("s,L1,L2\n", 1, None, "no genotype rows"),
        ("s\na\na\n", 1, None, "no locus columns"),
    ],
)
def test_bad_files_name_line_and_field(tmp_path, body, line, field, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(GenotypeFormatError, match=located("bad.csv", line, field) + message):
        read_wasser(path)


def test_panel(tmp_path):
    path = write_text(tmp_path, "p.csv", "s,FH67\na,150\na,99\n")
    with pytest.raises(GenotypeFormatError, match=located("p.csv", 2, "FH67")
                       + "allele 99 outside the range 100..300"):
        read_wasser(path, panel=elephant_panel("FH67"))


def test_writer(tmp_path):
    table = GenotypeTable(
        [[[152, 156], [-1, -1]]], ["a"], ["FH67", "FH71"], group=["HK-2013"]
    )
    path = tmp_path / "w.csv"
    write_wasser(table, path)
    assert path.read_text().splitlines() == [
        "sample,group,FH67,FH71", "a,HK-2013,152,-999", "a,HK-2013,156,-999",
    ]
    with pytest.raises(ValueError, match="locus 'Seizure' would be read back as a metadata"):
        write_wasser(table.replace(loci=["FH67", "Seizure"]), tmp_path / "clash.csv")
