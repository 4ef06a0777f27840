"""Fitted geographic models stored and reused (``SiteMixtureModel.fit_cached``, ``--geo-cache``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dnatrack.cli import main
from dnatrack.reference import ReferenceSet
from matching.geo import SiteMixtureModel, SiteMixtureSettings, fitted_model_path
from tests.test_geo import cline_populations, reference_set

SETTINGS = SiteMixtureSettings(250.0, 0.5, 150.0, 2.0, "huber", 200.0)


@pytest.fixture(scope="module")
def cline():
    sim = cline_populations(n_side=3, seed=4)
    return sim, reference_set(sim, 10, np.random.default_rng(4), missing=0.05)


def test_a_stored_fit_is_reloaded_not_refitted(cline, tmp_path, monkeypatch):
    sim, reference = cline
    fitted = SiteMixtureModel.fit_cached(reference, tmp_path, n_cells=10)
    path = fitted_model_path(tmp_path, reference, "animal", n_cells=10)
    stored = json.loads(path.read_text())
    assert stored["reference_content_hash"] == reference.content_hash
    assert stored["settings"] == fitted.settings.to_dict()

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted again although a stored fit exists")

    monkeypatch.setattr(SiteMixtureModel, "fit", no_fit)
    loaded = SiteMixtureModel.fit_cached(reference, tmp_path, n_cells=10)
    assert loaded.settings == fitted.settings
    assert loaded.region_levels == fitted.region_levels
    samples = sim.sample(2, 5, np.random.default_rng(5), missing=0.05, prefix="q-",
                         label=False)
    a, b = fitted.assign(samples), loaded.assign(samples)
    np.testing.assert_array_equal(a.point_lat, b.point_lat)
    np.testing.assert_array_equal(a.point_lon, b.point_lon)
    np.testing.assert_allclose(a.posterior, b.posterior, rtol=0, atol=0)
    # Another grid or leave-out is another fit.
    with pytest.raises(AssertionError, match="fitted again"):
        SiteMixtureModel.fit_cached(reference, tmp_path, n_cells=11)
    with pytest.raises(AssertionError, match="fitted again"):
        SiteMixtureModel.fit_cached(reference, tmp_path, leave_out="site", n_cells=10)


def test_a_changed_reference_is_not_served_the_old_fit(cline, tmp_path):
    _, reference = cline
    model = SiteMixtureModel.from_reference(reference, settings=SETTINGS, n_cells=10)
    data = model.to_dict(reference)
    table = reference.table
    alleles = table.alleles.copy()
    alleles[0, 0, 0] = alleles[1, 0, 0] if alleles[1, 0, 0] != alleles[0, 0, 0] else -1
    changed = ReferenceSet(reference.name, reference.species, table.replace(alleles=alleles),
                           reference.populations)
    assert changed.content_hash != reference.content_hash
    with pytest.raises(ValueError, match="content hash"):
        SiteMixtureModel.from_dict(changed, data)
    assert (fitted_model_path(tmp_path, changed, "animal", n_cells=10)
            != fitted_model_path(tmp_path, reference, "animal", n_cells=10))
    again = SiteMixtureModel.from_dict(reference, data)
    assert again.settings == SETTINGS and again.chosen_by == "given"
    for broken in ({**data, "format": "other"}, {**data, "settings": {"temperature": 1}},
                   {**data, "grid": {"n_cells": "x"}}):
        with pytest.raises(ValueError):
            SiteMixtureModel.from_dict(reference, broken)


def test_an_unreadable_stored_fit_is_fitted_again(cline, tmp_path):
    _, reference = cline
    path = fitted_model_path(tmp_path, reference, "animal", n_cells=10)
    path.write_text("{not json")
    model = SiteMixtureModel.fit_cached(reference, tmp_path, n_cells=10)
    assert json.loads(path.read_text())["settings"] == model.settings.to_dict()


def test_self_assign_geo_cache_option(cline, tmp_path, capsys):
    """The CLI writes the fit on the first run and reuses it on the second, and every run
    reports the error against both centroid baselines."""
    _, reference = cline
    folder = tmp_path / "reference"
    reference.save(folder)
    cache = tmp_path / "cache"
    outputs = []
    for run in range(2):
        out = tmp_path / f"self{run}.csv"
        assert main(["self-assign", str(folder), "--out", str(out), "--geo", "animal",
                     "--geo-cells", "10", "--geo-cache", str(cache)]) == 0
        printed = capsys.readouterr().out
        assert "leave-one-animal-out geographic error" in printed
        assert "most likely site's centroid:" in printed
        assert "posterior-weighted site centroid:" in printed
        outputs.append(out.read_text())
        assert len(list(cache.glob("geo-*.json"))) == 1
    assert outputs[0] == outputs[1]
