"""`dnatrack simulate`: files written, summary printed, bad options refused in one line."""

import csv
import json
import re

import pytest

from dnatrack.cli import main
from dnatrack.formats import read_genotypes
from dnatrack.reference import load_reference_set
from reference_data import list_reference_sets
from tests.test_simulate import make_reference


@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory):
    return make_reference(n_per_population=30).save(tmp_path_factory.mktemp("ref") / "toy")


def run(capsys, *arguments):
    status = main(["simulate", *map(str, arguments)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_simulate_writes_genotypes_and_truth(reference_folder, tmp_path, capsys):
    out = tmp_path / "scenario"
    status, printed, errors = run(
        capsys,
        "--reference",
        reference_folder,
        "--out",
        out,
        "--seed",
        12,
        "--seizures",
        4,
        "--animals-per-seizure",
        15,
        "--tusk-pairs",
        3,
        "--parent-offspring",
        2,
        "--full-siblings",
        1,
        "--half-siblings",
        0,
        "--missing-rate",
        0.1,
        "--dropout-rate",
        0.05,
        "--miscall-rate",
        0.02,
    )
    assert status == 0, errors
    assert errors == ""
    assert "simulated 60 items" in printed and "seed 12" in printed
    assert "3 same_animal, 2 parent_offspring, 1 full_sibling, 0 half_sibling" in printed

    observed = read_genotypes(out / "genotypes.csv", format="wide")
    assert observed.n_profiles == 60
    assert sorted(set(observed.group)) == ["SZ01", "SZ02", "SZ03", "SZ04"]
    relationships = read_csv(out / "truth" / "relationships.csv")
    assert [r["relationship"] for r in relationships].count("same_animal") == 3
    assert len(relationships) == 6
    items = {row["item_id"]: row for row in read_csv(out / "truth" / "items.csv")}
    assert set(items) == set(observed.profile_ids)
    for record in relationships:
        assert items[record["item1"]]["seizure"] != items[record["item2"]]["seizure"]
    summary = json.loads((out / "truth" / "truth.json").read_text())
    assert summary["seed"] == 12
    assert summary["parameters"]["missing_rate"] == 0.1
    assert summary["counts"]["items"] == 60
    assert f"errors: {summary['counts']['errors']['missing']} missing" in printed


def test_sources_with_weights_and_same_seizure(reference_folder, tmp_path, capsys):
    out = tmp_path / "scenario"
    status, _, errors = run(
        capsys,
        "--reference",
        reference_folder,
        "--out",
        out,
        "--seed",
        1,
        "--sources",
        "P0:3, P1:1",
        "--same-seizure",
        "--seizures",
        2,
    )
    assert status == 0, errors
    rows = read_csv(out / "truth" / "seizures.csv")
    proportions = {(r["seizure"], r["population"]): float(r["proportion"]) for r in rows}
    assert proportions[("SZ01", "P0")] == pytest.approx(0.75)
    assert proportions[("SZ02", "P1")] == pytest.approx(0.25)
    items = {row["item_id"]: row["seizure"] for row in read_csv(out / "truth" / "items.csv")}
    for record in read_csv(out / "truth" / "relationships.csv"):
        assert items[record["item1"]] == items[record["item2"]]


def test_same_seed_writes_the_same_files(reference_folder, tmp_path, capsys):
    outputs = []
    for name in ("a", "b"):
        status, _, _ = run(
            capsys, "--reference", reference_folder, "--out", tmp_path / name, "--seed", 5
        )
        assert status == 0
        outputs.append(
            [(tmp_path / name / f).read_bytes() for f in ("genotypes.csv", "truth/errors.csv")]
        )
    assert outputs[0] == outputs[1]


def test_no_seed_reports_the_one_drawn(reference_folder, tmp_path, capsys):
    status, printed, _ = run(capsys, "--reference", reference_folder, "--out", tmp_path / "x")
    seed = json.loads((tmp_path / "x" / "truth" / "truth.json").read_text())["seed"]
    assert status == 0 and printed.splitlines()[0].endswith(f"seed {seed}")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--missing-rate", "2"], r"missing_rate must lie in \[0, 1\]"),
        (["--tusk-pairs", "-1"], "same_animal_pairs must be at least 0"),
        (["--sources", "NOPE"], "source 'NOPE' of reference set"),
        (["--sources", "P0:abc"], "--sources: weight 'abc' of 'P0' is not a number"),
        (["--sources", "P0,P0"], "--sources: population 'P0' is listed twice"),
        (["--sources", "P0:0"], "weight of source 'P0' must be a positive number"),
        (["--format", "xyz"], "cannot write format 'xyz'"),
        (["--seizures", "1"], "a single seizure cannot split a pair"),
        (["--full-siblings", "100"], "do not fit"),
        (["--seed", "-3"], "seed must be at least 0"),
    ],
)
def test_bad_option_gives_one_line(reference_folder, tmp_path, capsys, options, message):
    out = tmp_path / "out"
    status, printed, errors = run(capsys, "--reference", reference_folder, "--out", out, *options)
    assert status == 1
    assert printed == ""
    lines = errors.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnatrack simulate: error: ")
    assert re.search(message, lines[0])
    assert not out.exists()


def test_unknown_reference_and_foreign_folder_are_refused(reference_folder, tmp_path, capsys):
    status, _, errors = run(capsys, "--reference", tmp_path / "absent", "--out", tmp_path / "o")
    assert status == 1 and "neither a file nor a bundled reference set" in errors
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    status, _, errors = run(capsys, "--reference", reference_folder, "--out", foreign)
    assert status == 1 and "not empty and not an earlier simulation's output" in errors
    assert len(errors.strip().splitlines()) == 1


def test_non_numeric_option_is_an_argparse_error(reference_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "simulate",
                "--reference",
                str(reference_folder),
                "--out",
                str(tmp_path / "o"),
                "--seed",
                "abc",
            ]
        )
    assert exit_info.value.code == 2
    assert "invalid int value: 'abc'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list_reference_sets())
def test_bundled_reference_sets_simulate(name, tmp_path, capsys):
    status, printed, errors = run(
        capsys, "--reference", name, "--out", tmp_path / "out", "--seed", 1
    )
    assert status == 0, errors
    assert f"from {name} v" in printed
    reference = load_reference_set(name)
    prefix = "H" if "rhino" in reference.species.lower() else "T"
    observed = read_genotypes(tmp_path / "out" / "genotypes.csv", format="wide")
    assert observed.loci == reference.table.loci
    assert observed.profile_ids[0] == f"SZ01-{prefix}001"
