"""``dnatrack assign`` and ``dnatrack self-assign`` end to end, against the Python API."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from dnatrack.cli import main
from dnatrack.formats import write_genotypes
from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import PopulationInfo, ReferenceSet, load_reference_set
from matching.assignment import RECORD_COLUMNS, AssignmentModel, self_assign
from tests.simulated_populations import SimulatedPopulations


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A saved reference-set folder with coordinates, and a sample file with two seizures."""
    sim = SimulatedPopulations.random(6, 10, 6, concentration=0.8, seed=80,
                                      populations_per_unit=3)
    sim.lat = np.array([0.0, 1.0, 2.0, 5.0, 6.0, 7.0])
    sim.lon = np.array([30.0, 31.0, 30.5, 34.0, 35.0, 34.5])
    rng = np.random.default_rng(81)
    table = sim.reference(20, rng, missing=0.05)
    populations = tuple(
        PopulationInfo(name, locality=f"site {k}", lat=float(sim.lat[k]), lon=float(sim.lon[k]),
                       repunits={"region": sim.repunits[k]})
        for k, name in enumerate(sim.names)
    )
    reference = ReferenceSet("cli_test_simulated", "test species",
                             table.replace(repunit=None, lat=None, lon=None), populations,
                             simulated=True, default_repunit_level="region")
    folder = tmp_path_factory.mktemp("reference") / "cli_test_simulated"
    reference.save(folder)
    first = sim.sample(1, 8, rng, 0.05, prefix="A-", label=False)
    second = sim.sample(4, 6, rng, 0.05, prefix="B-", label=False)
    samples = GenotypeTable.concat([first.replace(group=["seizure-A"] * 8),
                                    second.replace(group=["seizure-B"] * 6)])
    samples_path = folder.parent / "samples.csv"
    write_genotypes(samples, samples_path, format="wide")
    return folder, samples_path, samples


def test_self_assign_command(simulated, tmp_path, capsys):
    folder, _, _ = simulated
    out = tmp_path / "self.csv"
    status = main(["self-assign", str(folder), "--out", str(out), "--geo", "animal",
                   "--geo-cells", "12", "--exclusion-sims", "200",
                   "--plots", str(tmp_path / "plots")])
    assert status == 0
    rows = read_csv(out)
    expected = self_assign(load_reference_set(folder), exclusion_simulations=200)
    assert len(rows) == len(expected.assignment)
    assert list(rows[0])[:5] == ["indiv", "collection", "repunit", "inferred_collection",
                                 "inferred_repunit"]
    assert {"scaled_likelihood", "log_likelihood", "z_score", "n_non_miss_loci",
            "repunit_max_posterior", "geo_error_km"} <= set(rows[0])
    for row, record in zip(rows, expected.assignment.records(), strict=True):
        assert row["inferred_collection"] == record["inferred_collection"]
        assert row["inferred_repunit"] == record["inferred_repunit"]
        assert row["repunit_max_posterior"] == record["repunit_max_posterior"]
        assert float(row["log_likelihood"]) == pytest.approx(record["log_likelihood"])
        assert float(row["exclusion_p_value"]) == record["exclusion_p_value"]
        assert row["unsampled_source"] == str(record["unsampled_source"])
    summary = json.loads((tmp_path / "self.summary.json").read_text())
    assert summary["accuracy"] == pytest.approx(expected.accuracy)
    assert summary["repunit_accuracy"] == pytest.approx(expected.repunit_accuracy)
    assert summary["inferred_repunit_accuracy"] == pytest.approx(
        expected.inferred_repunit_accuracy)
    assert summary["parameters"]["unsampled_calibration"] == (
        expected.assignment.calibration.summary())
    assert summary["reference"].startswith("cli_test_simulated v1 (simulated)")
    loo = summary["geo"]["leave_one_out"]
    assert loo["overall"]["n"] == len(rows)
    assert loo["overall"]["median_km"] == pytest.approx(
        float(np.median([float(r["geo_error_km"]) for r in rows])))
    assert loo["overall"]["coverage90"] == pytest.approx(
        np.mean([r["geo_region90_holds_site"] == "True" for r in rows]))
    for baseline in ("most_likely_site_centroid", "posterior_weighted_centroid"):
        assert loo["baselines"][baseline]["overall"]["n"] == len(rows)
    for suffix in ("png", "svg"):
        assert (tmp_path / "plots" / f"geo_loo_error.{suffix}").stat().st_size > 1000
    confusion = read_csv(tmp_path / "self.confusion.csv")
    assert sum(int(r["n"]) for r in confusion) == len(rows)
    printed = capsys.readouterr().out
    assert "to their reporting unit" in printed
    assert f"{int(expected.assignment.unsampled.sum())} flagged" in printed
    assert "leave-one-animal-out geographic error" in printed
    assert "posterior-weighted site centroid: " in printed
    assert "most likely site's centroid: " in printed


def test_assign_command_with_mixture_and_geo(simulated, tmp_path, capsys):
    folder, samples_path, samples = simulated
    out = tmp_path / "assigned.csv"
    status = main(["assign", str(samples_path), "--reference", str(folder), "--out", str(out),
                   "--mixture", "--sweeps", "300", "--burn-in", "50", "--geo",
                   "--geo-cells", "12", "--exclusion-sims", "500", "--seed", "3"])
    assert status == 0
    rows = read_csv(out)
    assert list(rows[0])[: len(RECORD_COLUMNS)] == RECORD_COLUMNS
    model = AssignmentModel.from_reference(load_reference_set(folder))
    expected = model.assign(samples, exclusion_simulations=500, seed=3)
    for row, record in zip(rows, expected.records(), strict=True):
        assert row["indiv"] == record["indiv"]
        assert row["inferred_collection"] == record["inferred_collection"]
        assert row["inferred_repunit"] == record["inferred_repunit"]
        assert row["repunit_max_posterior"] == record["repunit_max_posterior"]
        assert float(row["repunit_max_posterior_scaled_likelihood"]) == pytest.approx(
            record["repunit_max_posterior_scaled_likelihood"])
        assert float(row["exclusion_p_value"]) == record["exclusion_p_value"]
        assert row["unsampled_source"] == str(record["unsampled_source"])
        assert row["mixture_collection"] == record["mixture_collection"]
        assert -90 <= float(row["geo_lat"]) <= 90
    proportions = read_csv(tmp_path / "assigned.mixture.csv")
    assert len(proportions) == 2 * 6
    by_group = {}
    for row in proportions:
        by_group.setdefault(row["mixture_collection"], []).append(row)
    assert by_group["seizure-A"][1]["collection"] == "pop1"
    assert max(by_group["seizure-A"], key=lambda r: float(r["pi"]))["collection"] == "pop1"
    assert max(by_group["seizure-B"], key=lambda r: float(r["pi"]))["collection"] == "pop4"
    units = read_csv(tmp_path / "assigned.mixture_repunits.csv")
    assert {r["repunit"] for r in units} == {"unit0", "unit1"}
    membership = read_csv(tmp_path / "assigned.membership.csv")
    assert len(membership) == len(samples) * 6
    geojson = json.loads((tmp_path / "assigned.geojson").read_text())
    assert geojson["type"] == "FeatureCollection"
    seizure_features = [f for f in geojson["features"]
                        if f["properties"].get("scope") == "seizure"]
    assert {f["properties"]["name"] for f in seizure_features} == {"seizure-A", "seizure-B"}
    summary = json.loads((tmp_path / "assigned.json").read_text())
    assert summary["n_samples"] == len(samples)
    calibration = expected.calibration.summary()
    assert summary["assignment"]["unsampled_calibration"] == calibration
    assert calibration["reference_animals"] == 120
    printed = capsys.readouterr().out
    assert (f"expected false-flag rate {calibration['expected_false_flag_rate']:.1%}"
            in printed)
    assert summary["mixture"]["n_sweeps"] == 300
    assert summary["files"]["geojson"].endswith("assigned.geojson")


def test_assign_rubias_mixture_files(shared_datasets, tmp_path):
    out = tmp_path / "chinook.csv"
    status = main(["assign", str(shared_datasets / "chinook_mixture_rubias.csv"),
                   "--reference", str(shared_datasets / "chinook_baseline_rubias.csv"),
                   "--out", str(out), "--mixture", "--exclusion-sims", "200",
                   "--sweeps", "400"])
    assert status == 0
    assert len(read_csv(out)) == 2256
    units = read_csv(tmp_path / "chinook.mixture_repunits.csv")
    for group in ("rec1", "rec2", "rec3"):
        rows = [r for r in units if r["mixture_collection"] == group]
        assert max(rows, key=lambda r: float(r["repunit_pi"]))["repunit"] == "CentralValleyfa"


def test_command_errors(simulated, tmp_path, capsys):
    folder, samples_path, samples = simulated
    status = main(["assign", str(samples_path), "--reference", str(tmp_path / "absent"),
                   "--out", str(tmp_path / "x.csv")])
    assert status == 1
    assert "neither a file nor a bundled reference set" in capsys.readouterr().err
    status = main(["assign", str(samples_path), "--reference", str(folder),
                   "--out", str(tmp_path / "x.csv"), "--alpha", "2"])
    assert status == 1
    assert "alpha" in capsys.readouterr().err
    no_coordinates = tmp_path / "ref.csv"
    labelled = samples.replace(population=["p1"] * 8 + ["p2"] * 6)
    write_genotypes(labelled, no_coordinates, format="wide")
    status = main(["assign", str(samples_path), "--reference", str(no_coordinates),
                   "--out", str(tmp_path / "y.csv"), "--geo", "--mixture"])
    assert status == 1
    assert "coordinates" in capsys.readouterr().err
    assert list(tmp_path.glob("y*")) == []  # nothing half-written


def test_plots_without_geo_have_no_error_map(simulated, tmp_path):
    folder, _, _ = simulated
    status = main(["self-assign", str(folder), "--out", str(tmp_path / "z.csv"),
                   "--exclusion-sims", "200", "--plots", str(tmp_path / "plots")])
    assert status == 0
    written = {path.name for path in (tmp_path / "plots").iterdir()}
    assert "geo_loo_error.png" not in written
    assert {"z_scores.png", "z_scores.svg", "confusion_populations.png"} <= written


def test_exclusion_draws_stop_once_decided_unless_full(simulated, tmp_path):
    """By default each sample's and reference animal's exclusion draws stop once its flag is
    settled; --exclusion-full draws them all. Flags agree, and the summary says which ran."""
    folder, samples_path, _ = simulated
    runs = {}
    for name, extra in (("stopped", []), ("full", ["--exclusion-full"])):
        out = tmp_path / f"{name}.csv"
        assert main(["assign", str(samples_path), "--reference", str(folder), "--out", str(out),
                     "--exclusion-sims", "1000", "--alpha", "0.05", *extra]) == 0
        runs[name] = (read_csv(out), json.loads((tmp_path / f"{name}.json").read_text()))
    (stopped, stopped_summary), (full, full_summary) = runs["stopped"], runs["full"]
    assert [r["unsampled_source"] for r in stopped] == [r["unsampled_source"] for r in full]
    for early, complete in zip(stopped, full, strict=True):
        if float(complete["exclusion_p_value"]) < 0.05:
            assert early["exclusion_p_value"] == complete["exclusion_p_value"]
        else:
            assert float(early["exclusion_p_value"]) >= 0.05
    calibration = stopped_summary["assignment"]["unsampled_calibration"]
    everything = full_summary["assignment"]["unsampled_calibration"]
    assert calibration["reference_animals_flagged"] == everything["reference_animals_flagged"]
    assert calibration["exclusion_simulations_drawn"]["stopped_once_decided"]
    assert calibration["exclusion_simulations_drawn"]["mean"] < 1000
    assert everything["exclusion_simulations_drawn"] == {
        "total": 120 * 1000, "mean": 1000.0, "animals_simulated_in_full": 120,
        "stopped_once_decided": False}
    assert "stop once enough fit no better" in calibration["rule"]
    assert "stop once" not in everything["rule"]
