import contextlib
import csv
import io
import json

import pytest

from dnatrack.cli import main
from dnatrack.formats import write_genotypes
from dnatrack.simulate import ScenarioSpec, simulate
from tests.test_matching_scenario import synthetic_reference


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("match")
    reference = synthetic_reference()
    reference.save(folder / "ref")
    sim = simulate(reference, ScenarioSpec(n_seizures=4, items_per_seizure=15,
                                           same_animal_pairs=3, parent_offspring_pairs=3,
                                           full_sibling_pairs=0, half_sibling_pairs=0,
                                           missing_rate=0.0, dropout_rate=0.0,
                                           miscall_rate=0.0), seed=5)
    write_genotypes(sim.observed, folder / "seized.csv", format="wide")
    first = sim.observed.group == "SZ01"
    write_genotypes(sim.observed.take(first), folder / "new.csv", format="wide")
    write_genotypes(sim.observed.take(~first), folder / "old.csv", format="wide")
    return folder, sim


@pytest.fixture(scope="module")
def searched(files):
    """One ``dnatrack match`` of all seizures (identity and kinship, cutoffs calibrated for
    this search), shared by the tests that check its output: the calibration simulates
    40,000 pairs per relationship, and every run with these options makes the same one.
    Returns ``(status, pairs CSV path, stdout, stderr)``."""
    folder, _ = files
    out = folder / "pairs.csv"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["match", str(folder / "seized.csv"), "--reference", str(folder / "ref"),
                       "--out", str(out), "--theta", "0.03", "--stringency", "moderate",
                       "--max-mismatches", "2"])
    return status, out, stdout.getvalue(), stderr.getvalue()


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_match_writes_pairs_and_seizure_links(files, searched):
    folder, sim = files
    status, out, printed, _ = searched
    assert status == 0
    rows = read_csv(out)
    found = {frozenset((r["sample1"], r["sample2"])): r for r in rows}
    for truth in sim.relationships:
        row = found[frozenset((truth.item1, truth.item2))]
        assert row["relationship"] == truth.relationship
        assert row["seizure1"] != row["seizure2"]
        if truth.relationship == "same_animal":
            assert row["identity"] == "moderate"
            assert float(row["rmp"]) < 1e-10
    assert {"sample1", "sample2", "relationship", "log10_lr", "loci_compared",
            "log10_lr_half_sibling"} <= set(rows[0])
    links = json.loads((folder / "pairs.links.json").read_text())
    assert links["links"] and links["components"]
    assert "same animal" in printed


def test_new_against_existing_and_csv_links(files):
    folder, sim = files
    out = folder / "incremental.csv"
    assert main(["match", str(folder / "new.csv"), "--against", str(folder / "old.csv"),
                 "--reference", str(folder / "ref"), "--out", str(out), "--theta", "0.03",
                 "--links", str(folder / "links.csv")]) == 0
    rows = read_csv(out)
    expected = {frozenset((t.item1, t.item2)) for t in sim.relationships
                if t.item1.startswith("SZ01") or t.item2.startswith("SZ01")}
    got = {frozenset((r["sample1"], r["sample2"])) for r in rows}
    assert expected <= got
    assert all("SZ01" in (r["seizure1"], r["seizure2"]) for r in rows)
    assert read_csv(folder / "links.csv")[0]["component"] == "0"


def test_calibrate_command_writes_table_and_json(files, capsys, tmp_path):
    folder, _ = files
    out = tmp_path / "cal.json"
    assert main(["calibrate", str(folder / "ref"), "--theta", "0.03", "--simulations", "500",
                 "--fpr", "1e-4", "--out", str(out), "--table", str(tmp_path / "cal.csv")]) == 0
    data = json.loads(out.read_text())
    assert data["false_positive_rate"] == 1e-4
    assert "parent_offspring" in capsys.readouterr().out
    assert read_csv(tmp_path / "cal.csv")[0]["relationship"] == "same_animal"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cutoff", "same_animal"], "--cutoff expects NAME=NUMBER"),
        (["--relationships", "cousin"], "unknown relationship|relationships must be among"),
        (["--no-identity", "--no-kinship"], "leave nothing to do"),
        (["--min-loci", "40"], "only 24 loci are shared"),
    ],
)
def test_bad_options_give_one_line_errors(files, capsys, extra, message):
    import re

    folder, _ = files
    status = main(["match", str(folder / "seized.csv"), "--reference", str(folder / "ref"),
                   "--out", str(folder / "x.csv"), "--theta", "0.03", *extra])
    err = capsys.readouterr().err
    assert status == 1
    assert re.search(message, err)
    assert len(err.strip().splitlines()) == 1


def test_rows_are_consistent_and_the_run_is_recorded(files, searched):
    import numpy as np

    from dnatrack.formats import read_genotypes
    from dnatrack.genotypes import AlleleCoding
    from dnatrack.reference import load_reference_set
    from matching.frequencies import allele_counts
    from matching.match_probability import match_probabilities

    folder, _ = files
    status, out, printed, errors = searched
    assert status == 0
    rows = read_csv(out)
    for row in rows:
        if row["evidence"].startswith("kinship"):
            # the label is the relationship whose LR is reported
            assert row["log10_lr"] == row[f"log10_lr_{row['relationship']}"]
        else:
            assert row["relationship"] == "same_animal" and row["identity"] == "moderate"
    # RMP over the loci where the two profiles are identical, computed here independently
    table = read_genotypes(folder / "seized.csv", format="wide")
    reference = load_reference_set(str(folder / "ref")).table
    counts = allele_counts(reference.replace(population=None),
                           AlleleCoding.from_tables(reference).extend(table))
    per_locus = match_probabilities(table, counts, 0.03).per_locus
    same = [r for r in rows if r["relationship"] == "same_animal"]
    assert same
    for row in same:
        i, j = table.index_of(row["sample1"]), table.index_of(row["sample2"])
        identical = [k for k in range(table.n_loci) if table.typed[i, k] and table.typed[j, k]
                     and list(table.alleles[i, k]) == list(table.alleles[j, k])]
        assert float(row["rmp"]) == pytest.approx(np.prod(per_locus[i, identical]), rel=1e-3)
    run = json.loads((folder / "pairs.run.json").read_text())
    assert run["kinship"]["theta"] == 0.03
    assert run["kinship"]["dropout_rate"] == 0.01
    assert run["identity"]["guaranteed_bad_loci"] >= 3
    assert run["reference"]["content_hash"]
    n = 60  # 4 seizures of 15 items
    # at most one expected false pair per search, over all relationships
    assert run["kinship"]["calibration"]["false_positive_rate"] == pytest.approx(
        1 / (n * (n - 1) / 2))
    assert run["kinship"]["expected_false_pairs"] == 1.0
    assert run["kinship"]["frequencies"] == "population"
    power = run["kinship"]["power"]
    assert set(power) == set(run["kinship"]["relationships"])
    assert all(0.0 <= row["power"] <= 1.0 and row["loci"] == 24 for row in power.values())
    # the power the run states is for the pairs' loci compared, not all 24
    assert all(row["power"] <= row["power_at_all_loci"] and row["mean_loci_compared"] <= 24
               for row in power.values())
    assert any("calibrated for this search" in note for note in run["notes"])
    assert "note: cutoffs calibrated for this search" in errors
    # half siblings are rarely found at 24 loci: the run says so in one line, and the summary
    # gives the power of every relationship
    [warning] = [line for line in errors.splitlines() if line.startswith("warning:")]
    assert "low power" in warning and "half sibling" in warning
    assert "power for the pairs' loci compared (mean" in printed
    assert "parent offspring" in printed


def test_a_calibration_for_other_genotypes_is_refused(files, tmp_path):
    folder, _ = files
    cal = tmp_path / "cal.json"
    assert main(["calibrate", str(folder / "ref"), "--theta", "0.03", "--simulations", "300",
                 "--out", str(cal)]) == 0
    data = json.loads(cal.read_text())
    data["reference_hash"] = "0" * 64
    cal.write_text(json.dumps(data))
    status = main(["match", str(folder / "seized.csv"), "--reference", str(folder / "ref"),
                   "--out", str(tmp_path / "p.csv"), "--theta", "0.03",
                   "--calibration", str(cal)])
    assert status == 1


def test_match_with_two_reference_sets_finds_the_pairs_analyze_finds(tmp_path):
    """``match`` runs the search stage of ``analyze``'s pipeline: with the black and the white
    rhino sets, each profile is weighed with the set it comes from, and both commands report
    the same pairs with the same numbers and frequency set."""
    from dnatrack.genotypes import GenotypeTable
    from dnatrack.reference import load_reference_set

    names = ["black_rhino_simulated", "white_rhino_simulated"]
    picked = []
    for name in names:
        # the first animal sampled twice: a same-animal pair within each species
        table = load_reference_set(name).table
        picked.append(GenotypeTable(
            table.alleles[[0, 1, 2, 3, 0]], [f"{name[:5]}{k}" for k in range(5)], table.loci,
            group=[name] * 5))
    loci = [locus for locus in picked[0].loci if locus in picked[1].loci]
    subject = GenotypeTable.concat([table.select_loci(loci) for table in picked])
    genotypes = tmp_path / "rhinos.csv"
    write_genotypes(subject, genotypes, format="wide")
    references = [arg for name in names for arg in ("--reference", name)]
    relationships = "same_animal,parent_offspring"
    assert main(["match", str(genotypes), *references, "--relationships", relationships,
                 "--out", str(tmp_path / "pairs.csv")]) == 0
    assert main(["analyze", str(genotypes), *references, "--analyses", "identity,kinship",
                 "--parameters", json.dumps({"relationships": relationships.split(",")}),
                 "--no-report", "--out", str(tmp_path / "analyze")]) == 0
    matched = {(r["sample1"], r["sample2"]): r for r in read_csv(tmp_path / "pairs.csv")}
    analysed = {(r["sample1"], r["sample2"]): r
                for r in read_csv(tmp_path / "analyze" / "pairs.csv")}
    same = {key for key, row in matched.items() if row["relationship"] == "same_animal"}
    assert {("black0", "black4"), ("white0", "white4")} <= same
    assert matched.keys() == analysed.keys()
    for key, row in matched.items():
        other = analysed[key]
        assert row["relationship"] == other["relationship"]
        assert float(row["log10_lr"]) == pytest.approx(float(other["log10_lr"]), abs=1e-6)
        assert row["frequency_reference"] == other["frequency_reference"] == (
            names[0] if key[0].startswith("black") else names[1])
    run = json.loads((tmp_path / "pairs.run.json").read_text())
    assert [entry["name"] for entry in run["reference"]] == names
    assert {entry["reference"]: sorted(entry["samples"])
            for entry in run["frequencies"]["sets"]} == {
        name: sorted(f"{name[:5]}{k}" for k in range(5)) for name in names}


def test_calibration_cache_is_reused_by_the_next_run(files, tmp_path):
    """A second identical run loads the first run's calibration from --calibration-cache and
    reports the same pairs and cutoffs."""
    folder, _ = files
    runs = []
    for k in range(2):
        out = tmp_path / f"pairs{k}.csv"
        stderr = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
            assert main(["match", str(folder / "seized.csv"), "--reference",
                         str(folder / "ref"), "--out", str(out), "--theta", "0.03",
                         "--calibration-cache", str(tmp_path / "cache")]) == 0
        run = json.loads(out.with_suffix(".run.json").read_text())
        runs.append((read_csv(out), run, stderr.getvalue()))
    assert "stored in the calibration cache" in runs[0][2]
    assert "loaded from the calibration cache" in runs[1][2]
    assert len(list((tmp_path / "cache").glob("calibration-*.json"))) == 1
    assert runs[0][0] == runs[1][0]
    assert (runs[0][1]["kinship"]["calibration"]["cutoffs"]
            == runs[1][1]["kinship"]["calibration"]["cutoffs"])
