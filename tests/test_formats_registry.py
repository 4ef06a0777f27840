import pytest

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats import (
    FORMATS,
    detect_format,
    output_format,
    read_genotypes,
    readable_formats,
    writable_formats,
    write_genotypes,
)
from dnatrack.files import replace_atomically
from tests._formats_helpers import located, random_table, write_text


def test_registry():
    assert readable_formats() == [
        "genemapper", "genepop", "long", "structure", "vcf", "wasser", "wide",
    ]
    assert writable_formats() == ["genepop", "long", "structure", "wasser", "wide"]
    assert all(FORMATS[name].extensions for name in FORMATS)


@pytest.mark.parametrize(
    ("name", "format"),
    [
        ("a.gen", "genepop"),
        ("a.GENEPOP", "genepop"),
        ("a.str", "structure"),
        ("a.structure", "structure"),
        ("a.vcf", "vcf"),
        ("a.vcf.gz", "vcf"),
    ],
)
def test_detection_by_extension(name, format):
    assert detect_format(name) == format


@pytest.mark.parametrize(
    ("name", "text", "format"),
    [
        ("w.csv", "indiv,collection,FH67,FH67.1\nx,P,150,152\n", "wide"),
        ("l.csv", "Sample,Locus,Allele1,Allele2\nx,FH67,150,152\nx,FH71,200,204\n", "long"),
        ("l.txt", "sample\tmarker\ta1\ta2\nx\tFH67\t150\t152\n", "long"),
        ("g.txt", "Sample Name\tMarker\tAllele 1\tAllele 2\nx\tFH67\t150\t152\n", "genemapper"),
        ("g.csv", "\nSample Name,Marker,Allele 1\nx,FH67,150\n", "genemapper"),
        ("r.csv", "sample,FH67,FH71\nx,150,200\nx,152,204\n", "wasser"),
        ("r.tsv", "sample\tFH67\tFH71\nx\t150\t200\nx\t152\t204\n", "wasser"),
    ],
)
def test_detection_by_header(tmp_path, name, text, format):
    path = write_text(tmp_path, name, text)
    assert detect_format(path) == format
    assert read_genotypes(path).n_profiles == 1


def test_undetectable_files(tmp_path):
    path = write_text(tmp_path, "odd.csv", "sample,FH67,FH71\nx,150,200\ny,152,204\n")
    with pytest.raises(ValueError, match="odd.csv: could be genemapper or long or wasser or wide"):
        detect_format(path)
    with pytest.raises(ValueError, match="cannot tell the format from the extension"):
        detect_format(tmp_path / "genotypes.xlsx")


def test_output_format():
    assert output_format("out.csv") == "wide"
    assert output_format("out.tsv") == "long"
    assert output_format("out.gen") == "genepop"
    assert output_format("out.str") == "structure"
    with pytest.raises(ValueError, match="out.vcf: cannot tell the output format"):
        output_format("out.vcf")
    with pytest.raises(ValueError, match="cannot write format 'vcf'"):
        write_genotypes(random_table(0), "out.vcf", "vcf")


def test_write_genotypes_picks_wide_for_csv(tmp_path):
    table = random_table(1)
    write_genotypes(table, tmp_path / "t.csv")
    assert detect_format(tmp_path / "t.csv") == "wide"
    assert read_genotypes(tmp_path / "t.csv").same_genotypes(table)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "kept.csv"
    path.write_text("old contents\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with replace_atomically(path) as handle:
            handle.write("half a table")
            raise RuntimeError("disk full")
    assert path.read_text() == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.csv"]
    with replace_atomically(path) as handle:
        handle.write("new contents\n")
    assert path.read_text() == "new contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.csv"]


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.gen: no such file"):
        read_genotypes(tmp_path / "nothing.gen")
    path = tmp_path / "binary.gen"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(GenotypeFormatError, match=located("binary.gen") + "not a UTF-8 text"):
        read_genotypes(path)
