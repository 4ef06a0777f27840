"""The typed parts of :class:`~matching.analysis.AnalysisResult` that were plain dicts
(``parameters``, ``kinship_power``, the geographic ``grid`` and ``samples``) read from every
stored layout with their values, and write the same JSON back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matching.analysis import AnalysisResult
from matching.analysis.result import GeoSample, Grid, Parameters, Power

LAYOUT_3 = Path(__file__).parent / "data" / "results" / "layout3_seizure_request.json"


@pytest.fixture(scope="module")
def old() -> dict:
    return json.loads(LAYOUT_3.read_text())


def test_a_layout_3_result_reads_into_the_typed_fields(old):
    result = AnalysisResult.from_json(old)
    assert isinstance(result.parameters, Parameters)
    assert result.parameters.settings == old["parameters"]["settings"]
    assert result.parameters.kinship == old["parameters"]["kinship"]
    assert result.parameters.geographic == old["parameters"]["geographic"]
    [(reference, power)] = result.kinship_power.items()
    assert reference == "savanna_elephant_simulated"
    for relationship, stored in old["kinship_power"][reference].items():
        assert power[relationship] == Power(**stored)
    grid = result.geographic.grid
    assert isinstance(grid, Grid)
    assert (grid.lat_edges, grid.lon_edges, grid.in_range) == tuple(
        old["geographic"]["grid"][key] for key in ("lat_edges", "lon_edges", "in_range"))
    assert result.geographic.samples == [GeoSample(**row) for row in old["geographic"]["samples"]]
    # and they write what was stored
    current = result.to_json()
    for key in ("parameters", "kinship_power"):
        assert current[key] == old[key]
    for key in ("grid", "samples"):
        assert current["geographic"][key] == old["geographic"][key]
    assert current["parameters_sha256"] == old["parameters_sha256"]


def test_a_result_whose_stages_did_not_all_run_reads_with_none_for_them(old):
    stored = AnalysisResult.from_json(old).to_json()
    # an identity-only result of layout 4: no kinship power, no assignment, mixture or map
    for key in ("assignment", "mixture", "geographic", "kinship"):
        del stored["parameters"][key]
    stored.update(kinship_power=None, geographic=None, assignment=None, mixture=None)
    result = AnalysisResult.from_json(stored)
    assert result.parameters == Parameters(
        settings=old["parameters"]["settings"], theta=old["parameters"]["theta"],
        identity=old["parameters"]["identity"])
    assert result.kinship_power is None and result.geographic is None
    again = result.to_json()
    assert again["parameters"] == {**stored["parameters"], "assignment": None, "mixture": None,
                                   "geographic": None, "kinship": None}
    assert AnalysisResult.from_json(again).to_json() == again
