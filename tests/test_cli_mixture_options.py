"""``dnatrack assign --mixture`` options, ``--plots`` and ``dnatrack assess-reference`` end to
end, against the Python API."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from dnatrack.cli import main
from dnatrack.formats import write_genotypes
from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import load_reference_set
from matching.assignment import AssignmentModel
from matching.mixture import dirichlet_prior, estimate_mixture
from tests.simulated_populations import SimulatedPopulations


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A reference genotype file (6 populations in 2 units) and a two-seizure sample file."""
    sim = SimulatedPopulations.random(6, 10, 6, concentration=0.8, seed=84,
                                      populations_per_unit=3)
    rng = np.random.default_rng(85)
    folder = tmp_path_factory.mktemp("mixture_cli")
    reference = sim.reference(20, rng, missing=0.05)
    reference_path = folder / "reference.csv"
    write_genotypes(reference, reference_path, format="wide")
    first = sim.sample(1, 10, rng, 0.05, prefix="A-", label=False)
    second = sim.sample(4, 6, rng, 0.05, prefix="B-", label=False)
    samples = GenotypeTable.concat([first.replace(group=["seizure-A"] * 10),
                                    second.replace(group=["seizure-B"] * 6)])
    samples_path = folder / "samples.csv"
    write_genotypes(samples, samples_path, format="wide")
    return folder, reference_path, samples_path, samples


def write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def assign(files, out, *options):
    _, reference_path, samples_path, _ = files
    return main(["assign", str(samples_path), "--reference", str(reference_path), "--out",
                 str(out), "--exclusion-sims", "0", "--mixture", "--seed", "4", *options])


def test_prior_pi_init_and_known_options_reach_the_estimate(files, tmp_path):
    folder, reference_path, _, samples = files
    model = AssignmentModel.from_reference(load_reference_set(reference_path))
    prior = write_csv(tmp_path / "prior.csv", ["repunit", "pi_param"],
                      [[model.repunit_names[0], 3.0], ["DEFAULT_PI", 0.5]])
    init = write_csv(tmp_path / "init.csv", ["collection", "pi_init"],
                     [[p, k + 1] for k, p in enumerate(model.populations)])
    known = write_csv(tmp_path / "known.csv", ["indiv", "known_collection"],
                      [[samples.profile_ids[0], model.populations[5]]])
    out = tmp_path / "a.csv"
    assert assign(files, out, "--reps", "400", "--burn-in", "40", "--thin", "2", "--prior",
                  prior, "--pi-init", init, "--known", known) == 0
    weights = dirichlet_prior(model.populations, model.repunits,
                              {model.repunit_names[0]: 3.0, "DEFAULT_PI": 0.5})
    expected = estimate_mixture(
        model.assign(samples, exclusion_simulations=0), n_sweeps=400, burn_in=40, thin=2,
        prior=weights, pi_init=np.arange(1, 7), seed=4,
        known=[model.populations[5]] + [None] * (len(samples) - 1))
    rows = read_csv(tmp_path / "a.mixture.csv")
    np.testing.assert_allclose([float(r["pi"]) for r in rows],
                               expected.posterior_mean.ravel(), rtol=1e-12)
    summary = json.loads((tmp_path / "a.json").read_text())
    assert summary["mixture"]["prior"] == pytest.approx(weights.tolist())
    assert summary["mixture"]["thin"] == 2
    assert summary["mixture"]["known_origin_samples"] == 1
    membership = [r for r in read_csv(tmp_path / "a.membership.csv")
                  if r["indiv"] == samples.profile_ids[0] and r["collection"] == "pop5"]
    assert float(membership[0]["PofZ"]) == 1.0


def test_trace_and_resume_give_the_uninterrupted_run(files, tmp_path):
    whole = tmp_path / "whole.csv"
    assert assign(files, whole, "--reps", "700", "--trace", str(tmp_path / "whole.trace.csv"))\
        == 0
    part = tmp_path / "part.csv"
    trace = tmp_path / "part.trace.csv"
    assert assign(files, part, "--reps", "300", "--trace", str(trace)) == 0
    assert (tmp_path / "part.trace.csv.state.npz").is_file()
    resumed = tmp_path / "resumed.csv"
    assert assign(files, resumed, "--reps", "700", "--resume", str(trace)) == 0
    assert (read_csv(tmp_path / "resumed.mixture.csv")
            == read_csv(tmp_path / "whole.mixture.csv"))
    assert read_csv(trace) == read_csv(tmp_path / "whole.trace.csv")
    assert len(read_csv(trace)) == 2 * 700
    # Another seed cannot resume it: a clear one-line error, nothing written.
    status = main(["assign", str(files[2]), "--reference", str(files[1]), "--out",
                   str(tmp_path / "other.csv"), "--exclusion-sims", "0", "--mixture",
                   "--seed", "5", "--reps", "700", "--resume", str(trace)])
    assert status == 1
    assert not (tmp_path / "other.csv").exists()


def test_bootstrap_and_plots(files, tmp_path):
    out = tmp_path / "b.csv"
    plots = tmp_path / "figures"
    assert assign(files, out, "--reps", "300", "--bootstrap", "5", "--plots", str(plots)) == 0
    units = read_csv(tmp_path / "b.mixture_repunits.csv")
    corrected = [float(r["bs_corrected_repunit_ppn"]) for r in units]
    assert all(0.0 <= c <= 1.0 for c in corrected)
    assert sum(corrected) == pytest.approx(2.0)  # two seizures, each summing to one
    for name in ("mixture_proportions", "z_scores"):
        assert (plots / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert "<svg" in (plots / f"{name}.svg").read_text()


def test_self_assign_plots(files, tmp_path):
    plots = tmp_path / "figures"
    assert main(["self-assign", str(files[1]), "--out", str(tmp_path / "s.csv"), "--plots",
                 str(plots)]) == 0
    for name in ("confusion_repunits", "confusion_populations", "z_scores"):
        assert (plots / f"{name}.png").stat().st_size > 1000
        assert (plots / f"{name}.svg").is_file()
    summary = json.loads((tmp_path / "s.summary.json").read_text())
    assert len(summary["plots"]) == 6


def test_assess_reference_command(files, tmp_path, capsys):
    out = tmp_path / "assess.csv"
    proportions = write_csv(tmp_path / "ppn.csv", ["repunit", "ppn"],
                            [["unit0", 0.8], ["unit1", 0.2]])
    assert main(["assess-reference", str(files[1]), "--out", str(out), "--iterations", "6",
                 "--mixture-size", "40", "--reps", "200", "--burn-in", "20", "--proportions",
                 proportions, "--method", "mc", "--plots", str(tmp_path / "fig")]) == 0
    rows = read_csv(out)
    assert len(rows) == 6 * 2
    np.testing.assert_allclose([float(r["true_repunit_pi"]) for r in rows], [0.8, 0.2] * 6)
    summary = read_csv(tmp_path / "assess.summary.csv")
    assert [r["repunit"] for r in summary] == ["unit0", "unit1"]
    assert all(0.0 <= float(r["coverage"]) <= 1.0 for r in summary)
    assert (tmp_path / "fig" / "assessment.png").is_file()
    assert "intervals cover the true reporting-unit proportion" in capsys.readouterr().out
    bad = write_csv(tmp_path / "bad.csv", ["repunit", "ppn"], [["unit0", "lots"]])
    assert main(["assess-reference", str(files[1]), "--out", str(tmp_path / "x.csv"),
                 "--proportions", bad]) == 1
    assert "bad.csv, line 2, ppn: not a number" in capsys.readouterr().err


def test_baseline_resampling_option(files, tmp_path, capsys):
    from matching.mixture import estimate_mixture_resampling_baseline

    out = tmp_path / "br.csv"
    assert assign(files, out, "--reps", "60", "--burn-in", "10", "--baseline-resampling") == 0
    model = AssignmentModel.from_reference(load_reference_set(files[1]))
    samples = files[3]
    expected = estimate_mixture_resampling_baseline(model, samples, list(samples.group),
                                                    n_sweeps=60, burn_in=10, seed=4)
    rows = read_csv(tmp_path / "br.mixture.csv")
    np.testing.assert_allclose([float(r["pi"]) for r in rows],
                               expected.posterior_mean.ravel(), rtol=1e-12)
    summary = json.loads((tmp_path / "br.json").read_text())
    assert summary["mixture"]["model"].startswith("fully Bayesian")
    assert assign(files, tmp_path / "no.csv", "--baseline-resampling", "--bootstrap", "3") == 1
    assert "without --trace, --resume and --bootstrap" in capsys.readouterr().err
