"""The OpenAPI document describes the ``/result`` of a match request as layout 4 of
:class:`~matching.analysis.AnalysisResult`, and results — fresh, and a layout-3 one as the
endpoint answers it (upgraded) — fit that schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from dnatrack.reference import load_reference_set
from matching.analysis import RESULT_FORMAT, AnalysisSettings, analyse, upgrade
from reference_data import reference_set_path

LAYOUT_3 = Path(__file__).parent.parent / "data" / "results" / "layout3_seizure_request.json"
RESULT_PATH = "/api/v1/match-requests/{record_id}/result"


def json_schema(document: dict) -> dict:
    """The ``/result`` answer's OpenAPI 3.0 schema as JSON Schema (``nullable`` as a null
    alternative, component references as definitions)."""

    def convert(node):
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: convert(value) for key, value in node.items()}
        if "$ref" in node:
            node["$ref"] = node["$ref"].replace("#/components/schemas/", "#/definitions/")
        if node.pop("nullable", False):
            return {"anyOf": [node, {"type": "null"}]}
        return node

    operation = document["paths"][RESULT_PATH]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return {**convert(schema), "definitions": convert(document["components"]["schemas"])}


@pytest.fixture(scope="module")
def fresh() -> dict:
    reference = load_reference_set("savanna_elephant_simulated")
    subject = reference.table.take(np.arange(6)).replace(population=None, repunit=None,
                                                         group=None)
    settings = AnalysisSettings(exclusion_simulations=0, mixture_sweeps=20, mixture_burn_in=5,
                                geo_cells=8)
    return analyse(subject, None, [reference], settings=settings,
                   reference_folder=lambda r: reference_set_path(r.name)).to_json()


def test_the_result_endpoint_documents_layout_4(client):
    document = client.get("/api/v1/openapi.json").json
    operation = document["paths"][RESULT_PATH]["get"]
    assert "layout 4" in operation["description"]
    components = document["components"]["schemas"]
    top = components["AnalysisResult"]
    assert {"format", "content_sha256", "pairs", "scope", "parameters", "kinship_power",
            "geographic"} <= set(top["properties"])
    assert {"subject", "analyses", "content_sha256"} <= set(top["required"])
    pair = components["ResultPair"]["properties"]
    assert pair["log10_lr"] == {"type": "number", "nullable": True}
    assert components["ResultGeographic"]["properties"]["grid"] == {
        "$ref": "#/components/schemas/ResultGrid"}
    assert components["ResultPower"]["required"] == ["loci", "cutoff", "power"]


def test_results_fit_the_documented_schema(client, fresh):
    schema = json_schema(client.get("/api/v1/openapi.json").json)
    validator = jsonschema.Draft7Validator(schema)
    assert fresh["format"] == RESULT_FORMAT and fresh["geographic"] and fresh["kinship_power"]
    validator.validate(fresh)
    validator.validate(upgrade(json.loads(LAYOUT_3.read_text())))
    # and the schema can fail: numbers as text (layout 3's way) do not fit
    broken = json.loads(json.dumps(fresh))
    broken["scope"]["pairs_compared"] = str(broken["scope"]["pairs_compared"])
    assert not validator.is_valid(broken)
