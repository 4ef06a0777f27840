"""`dnatrack panel-stats` end to end, through ``dnatrack.cli.main``."""

from __future__ import annotations

import csv
import json
import re

import pytest

from dnatrack.cli import main
from dnatrack.formats import write_genotypes
from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import ReferenceSet

# Pooled, hand-worked (see tests/test_panel_stats.py): L0 p = .5/.3/.2 → PI .2166,
# PI_sib .49415, Ho .8; L1 p = .6/.4 → PI .3856, PI_sib .6064, Ho .4.
PANEL_PI = 0.2166 * 0.3856
PANEL_PI_SIB = 0.49415 * 0.6064


def small_table(population=("p", "p", "p", "q", "q", "q")) -> GenotypeTable:
    return GenotypeTable(
        [
            [[100, 100], [7, 9]],
            [[100, 102], [7, 7]],
            [[100, 102], [9, 9]],
            [[102, 104], [7, 7]],
            [[100, 104], [-1, -1]],
            [[-1, -1], [7, 9]],
        ],
        ["s1", "s2", "s3", "s4", "s5", "s6"],
        ["L0", "L1"],
        population=population,
    )


@pytest.fixture
def genotype_file(tmp_path):
    path = tmp_path / "small.csv"
    write_genotypes(small_table(), path, format="wide")
    return path


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_prints_a_table_with_panel_row_and_theta(genotype_file, capsys):
    assert main(["panel-stats", str(genotype_file)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "small.csv: 6 profiles, 2 loci, all profiles pooled"
    assert "without the NRC II floor" in out
    l0 = next(line for line in lines if line.startswith("all") and " L0 " in line).split()
    assert l0[2:5] == ["3", "5", "0.800"]                 # alleles, typed, Ho
    panel = next(line for line in lines if " panel " in line).split()
    assert float(panel[7]) == pytest.approx(PANEL_PI, rel=1e-3)
    assert float(panel[8]) == pytest.approx(PANEL_PI_SIB, rel=1e-3)
    assert "theta (Weir & Cockerham 1984) over 2 populations, 2 loci:" in out
    assert "theta used:" in out and "Weir & Cockerham estimate" in out


def test_csv_output(genotype_file, tmp_path, capsys):
    out = tmp_path / "stats.csv"
    assert main(["panel-stats", str(genotype_file), "--out", str(out), "--theta", "0.05"]) == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    rows = read_csv(out)
    assert list(rows[0]) == [
        "population", "locus", "n_loci", "n_alleles", "n_typed", "ho", "he", "he_nei", "pi",
        "pi_sib", "theta_wc", "theta_wc_se", "theta_used",
    ]
    assert [r["locus"] for r in rows] == ["L0", "L1", "panel"]
    assert float(rows[0]["he"]) == pytest.approx(0.62)
    assert float(rows[1]["pi_sib"]) == pytest.approx(0.6064)
    assert float(rows[2]["pi"]) == pytest.approx(PANEL_PI)
    assert rows[2]["n_loci"] == "2"
    assert float(rows[2]["theta_used"]) == 0.05
    assert rows[0]["theta_used"] == "" and rows[0]["theta_wc"] != ""


def test_json_output_by_population(genotype_file, tmp_path):
    out = tmp_path / "stats.json"
    assert main(["panel-stats", str(genotype_file), "--by-population", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [(r["population"], r["locus"]) for r in data["rows"]] == [
        ("p", "L0"), ("p", "L1"), ("p", "panel"), ("q", "L0"), ("q", "L1"), ("q", "panel"),
    ]
    q_l0 = data["rows"][3]
    assert (q_l0["ho"], q_l0["he"], q_l0["n_alleles"]) == (1.0, 0.625, 3)
    assert data["theta"]["populations"] == ["p", "q"]
    assert data["theta_used"]["value"] == max(data["theta"]["theta"], 0.0)
    assert data["n_profiles"] == 6


def test_theta_by_species_name(genotype_file, capsys):
    assert main(["panel-stats", str(genotype_file), "--theta", "savanna elephant"]) == 0
    assert "theta used: 0.0470 (published value for savanna elephant)" in capsys.readouterr().out


def test_genotypes_without_populations(tmp_path, capsys):
    path = tmp_path / "unlabelled.csv"
    write_genotypes(small_table(population=[""] * 6), path, format="wide")
    assert main(["panel-stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "theta not estimated: θ needs" in out
    assert "theta used" not in out
    assert main(["panel-stats", str(path), "--by-population"]) == 1
    assert "need population labels" in capsys.readouterr().err


def test_reference_set_folder(tmp_path, capsys):
    reference = ReferenceSet.from_table(small_table(), name="tiny")
    folder = reference.save(tmp_path / "tiny")
    assert main(["panel-stats", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"tiny v{reference.version}, sha256 ")
    assert "over 2 populations" in out


def test_format_option(tmp_path, capsys):
    path = tmp_path / "small.genotypes"  # an extension no format claims
    write_genotypes(small_table(), path, format="wide")
    assert main(["panel-stats", str(path)]) == 1
    assert "cannot tell the format" in capsys.readouterr().err
    assert main(["panel-stats", str(path), "--from", "wide"]) == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--theta", "1.5"], r"θ override must be in \[0, 1\)"),
        (["--theta", "mammoth"], "no published θ for species 'mammoth'"),
        (["--out", "stats.txt"], "give a .csv or .json file"),
    ],
)
def test_bad_options_fail_with_one_line(genotype_file, capsys, arguments, message):
    assert main(["panel-stats", str(genotype_file), *arguments]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dnatrack panel-stats: error: ")
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err)


def test_unknown_input(capsys):
    assert main(["panel-stats", "no-such-set"]) == 1
    assert "neither a file nor a bundled reference set" in capsys.readouterr().err


def test_alewife_collections(shared_datasets, tmp_path):
    out = tmp_path / "alewife.json"
    path = shared_datasets / "alewife_rubias.csv"
    assert main(["panel-stats", str(path), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert len(data["theta"]["populations"]) == 21
    assert 0.01 < data["theta"]["theta"] < 0.1
    panel = data["rows"][-1]
    assert panel["locus"] == "panel" and panel["n_loci"] == 11
    assert panel["pi"] < panel["pi_sib"] < 1e-2


def test_format_option_needs_a_file(capsys):
    assert main(["panel-stats", "some-reference-name", "--from", "wide"]) == 1
    assert "--from applies to genotype files" in capsys.readouterr().err
