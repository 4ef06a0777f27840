import json
from pathlib import Path

import pytest

from dnatrack.cli import main
from dnatrack.formats import read_genotypes

DATA = Path(__file__).parent / "data" / "formats"


def test_genepop_to_structure_and_back(shared_datasets, tmp_path, capsys):
    source = shared_datasets / "nancycats.gen"
    structure = tmp_path / "cats.str"
    assert main(["convert", str(source), str(structure), "--rename-duplicates"]) == 0
    assert capsys.readouterr().out.strip() == (
        "nancycats.gen (genepop) -> cats.str (structure): 237 profiles, 9 loci, 17 populations"
    )
    back = tmp_path / "cats.gen"
    assert main(["convert", str(structure), str(back)]) == 0
    original = read_genotypes(source, duplicate_ids="number")
    for path in (structure, back):
        table = read_genotypes(path)
        assert table.same_genotypes(original)
        assert table.population.tolist() == original.population.tolist()


def test_formats_from_flags(tmp_path, capsys):
    target = tmp_path / "tusks.txt"
    assert main(["convert", str(DATA / "example.str"), str(target), "--to", "long"]) == 0
    assert "(structure) -> tusks.txt (long): 4 profiles, 3 loci, 2 populations" in (
        capsys.readouterr().out
    )
    copy = tmp_path / "tusks.data"
    copy.write_text(target.read_text())
    assert main(["convert", str(copy), str(tmp_path / "w.csv"), "--from", "long"]) == 0
    assert read_genotypes(tmp_path / "w.csv", "wide").same_genotypes(read_genotypes(target))


def test_panel_option(tmp_path, capsys):
    panel = tmp_path / "panel.json"
    panel.write_text(json.dumps({
        "name": "tiny", "species": "Loxodonta africana", "marker_type": "STR",
        "loci": [{"name": n, "min_size": 100, "max_size": 155} for n in ("FH67", "FH71", "FH19")],
    }))
    target = tmp_path / "out.gen"
    status = main(["convert", str(DATA / "example.gen"), str(target), "--panel", str(panel)])
    assert status == 1
    assert capsys.readouterr().err.strip() == (
        "dnatrack convert: error: example.gen, line 5, field 'FH67': allele 156 outside the "
        "range 100..155 of FH67 in panel 'tiny'"
    )
    assert not target.exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.gen", "out.str"], "missing.gen: no such file"),
        (["{data}/example.gen", "out.xlsx"], "out.xlsx: cannot tell the output format"),
        (["{data}/example.gen", "out.str", "--to", "vcf"], "cannot write format 'vcf'"),
        (["{data}/example.gen", "out.str", "--from", "excel"], "unknown input format 'excel'"),
        (["{data}/example.vcf", "out.str", "--panel", "no_such_panel"], "no_such_panel"),
        (["{data}/example.str", "out.gen", "--from", "genepop"],
         "example.str, line 10: no 'Pop' line"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, monkeypatch, capsys, arguments, message):
    monkeypatch.chdir(tmp_path)
    argv = ["convert", *(a.replace("{data}", str(DATA)) for a in arguments)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("dnatrack convert: error: ")
    assert message in lines[0]
    assert "Traceback" not in captured.err
    assert list(tmp_path.iterdir()) == []


def test_duplicate_names_suggest_the_option(tmp_path, capsys):
    source = tmp_path / "dups.gen"
    source.write_text("t\nA\nPop\n1 , 0101\n1 , 0102\n")
    assert main(["convert", str(source), str(tmp_path / "o.str")]) == 1
    assert capsys.readouterr().err.strip() == (
        "dnatrack convert: error: dups.gen, line 5, field 'sample id': duplicate sample id '1' "
        "(first on line 4); use --rename-duplicates to number repeated ids"
    )
    assert not (tmp_path / "o.str").exists()
