"""Input the API used to answer with a 500: numbers beyond what the database holds, text it
cannot store, a case's status on creation, CSV fields longer than the CSV reader takes; and the
OpenAPI document itself, which must be valid OpenAPI 3.0 and document every status answered."""

from __future__ import annotations

import io
import re

import pytest
from openapi_spec_validator import validate

from lims.models import Case, GenotypeImport
from tests.lims.factories import make_case_tree
from tests.lims.web_support import count, make_browser

BEYOND = [2**31, 2**63, 2**64 + 1]  # past PostgreSQL's INTEGER, SQLite's, and any 64 bits


@pytest.fixture
def tree(session, agencies):
    return make_case_tree(session, agencies["A"], "KE")


@pytest.mark.parametrize("number", BEYOND)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/cases/{n}"),
        ("patch", "/api/v1/seizures/{n}"),
        ("get", "/api/v1/samples/{n}/custody"),
        ("put", "/api/v1/cases/{n}/shares/{n}"),
        ("post", "/api/v1/profiles/{n}/review"),
        ("post", "/api/v1/tokens/{n}/revoke"),
    ],
)
def test_ids_beyond_the_database_range_name_no_record(login, method, path, number):
    caller = login(*("admin", "custodian", "analyst", "reviewer"))
    response = getattr(caller, method)(path.format(n=number), json={"access": "read"})
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.json["error"] == "not_found"


@pytest.mark.parametrize("number", BEYOND)
def test_query_and_body_numbers_beyond_the_range_are_refused_by_field(login, tree, number):
    caller = login("custodian")
    response = caller.get(f"/api/v1/samples?case_id={number}")
    assert response.status_code == 400
    assert response.json["details"]["problems"] == [
        {"field": "case_id", "message": "must be between -2147483648 and 2147483647"}
    ]
    response = caller.post(
        "/api/v1/seizures",
        json={"case_id": tree.case_id, "reference": "SZ-2", "declared_pieces": number},
    )
    assert response.status_code == 422
    assert response.json["details"]["problems"][0]["field"] == "declared_pieces"
    response = caller.post("/api/v1/seizures", json={"case_id": number, "reference": "SZ-2"})
    assert response.status_code == 422
    assert response.json["details"]["problems"][0]["field"] == "case_id"


@pytest.mark.parametrize("text", ["a\x00b", "\ud800"])
def test_text_no_database_can_store_is_refused_by_field(login, app, text):
    response = login("custodian").post(
        "/api/v1/cases", json={"reference": "K-1", "title": text, "kind": "investigation"}
    )
    assert response.status_code == 422
    [problem] = response.json["details"]["problems"]
    assert problem["field"] == "title"
    assert count(app, Case) == 0


def test_a_case_may_be_created_with_its_status(login):
    caller = login("custodian")
    response = caller.post("/api/v1/cases", json={
        "reference": "K-1", "title": "t", "kind": "investigation", "status": "closed"})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["status"] == "closed"
    response = caller.post("/api/v1/cases", json={
        "reference": "K-2", "title": "t", "kind": "investigation"})
    assert response.json["status"] == "open"


LONG_FIELD = "9" * 131_073


def _wide_with_long_field() -> str:
    return (
        "indiv,FH67,FH67.1\n"
        "KE-S1,148,152\n"
        f"KE-S2,{LONG_FIELD},150\n"
        "KE-S3,150,150\n"
    )


def test_an_import_with_an_overlong_csv_field_is_refused_naming_line_and_field(
    login, app, tree
):
    caller = login("analyst")
    data = {"file": (io.BytesIO(_wide_with_long_field().encode()), "run.csv"),
            "panel": "test_str4"}
    response = caller.post("/api/v1/genotype-imports", data=data,
                           content_type="multipart/form-data")
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.json["details"]["problems"] == [
        {"line": 3, "field": "FH67", "sample": None,
         "message": "a field longer than 131,072 characters cannot be read"}
    ]
    header_too = f"indiv,{LONG_FIELD}\nKE-S1,148\n"
    data = {"file": (io.BytesIO(header_too.encode()), "run.tsv"), "panel": "test_str4"}
    response = caller.post("/api/v1/genotype-imports", data=data,
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert [(p["line"], p["field"]) for p in response.json["details"]["problems"]] == [
        (1, "column 2")
    ]
    assert count(app, GenotypeImport) == 0


def test_the_import_form_refuses_an_overlong_field_the_same_way(app, agencies, tree):
    analyst = make_browser(app, agencies, "analyst")
    data = {"file": (io.BytesIO(_wide_with_long_field().encode()), "run.csv"),
            "panel": "test_str4", "file_format": "", "run": ""}
    response = analyst.post("/genotypes/import", data, content_type="multipart/form-data")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "line 3: a field longer than 131,072 characters cannot be read" in html
    assert count(app, GenotypeImport) == 0


def test_the_openapi_document_is_valid_openapi_3_0(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.0.")
    validate(document)  # raises on anything OpenAPI 3.0 does not allow
    volume = document["components"]["schemas"]["extract_create"]["properties"]["volume_ul"]
    assert (volume["minimum"], volume["exclusiveMinimum"]) == (0, True)


def test_the_share_put_documents_both_its_answers(client, login, tree, agencies):
    operation = client.get("/api/v1/openapi.json").json["paths"][
        "/api/v1/cases/{case_id}/shares/{agency_id}"]["put"]
    assert {"200", "201"} <= set(operation["responses"])
    caller = login("custodian")
    url = f"/api/v1/cases/{tree.case_id}/shares/{agencies['B']}"
    assert caller.put(url, json={"access": "read"}).status_code == 201
    assert caller.put(url, json={"access": "contribute"}).status_code == 200


def test_path_ids_are_bounded_in_the_document(client):
    document = client.get("/api/v1/openapi.json").json
    [parameter] = document["paths"]["/api/v1/cases/{record_id}"]["get"]["parameters"]
    assert parameter["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}


@pytest.mark.parametrize("limit", [0, 7, 10, 99, 250, 1000, 9080, 2**31 - 1])
def test_the_id_pattern_matches_exactly_the_numbers_up_to_its_limit(limit):
    from lims.api.routing import at_most_regex

    pattern = re.compile(f"(?:{at_most_regex(limit)})")
    numbers = {*range(min(limit + 30, 3000)), limit - 1, limit, limit + 1, 10 * limit + 3,
               *(limit // k for k in (2, 3, 7) if k)}
    for number in numbers:
        if number >= 0:
            assert bool(pattern.fullmatch(str(number))) == (number <= limit), number


def test_form_fields_are_checked_as_json_fields_are(login, app, tree):
    caller = login("custodian", "analyst")
    response = caller.post(
        "/api/v1/attachments",
        data={"file": (io.BytesIO(b"photo"), "p.png"), "subject_type": "seizure",
              "subject_id": str(2**63), "description": "a\x00b"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert {p["field"] for p in response.json["details"]["problems"]} == {
        "subject_id", "description"}
    for run, message in (("r\x00", "NUL"), ("r" * 101, "at most 100 characters")):
        data = {"file": (io.BytesIO(b"indiv,FH67,FH67.1\nKE-S1,148,152\n"), "run.csv"),
                "panel": "test_str4", "run": run}
        response = caller.post("/api/v1/genotype-imports", data=data,
                               content_type="multipart/form-data")
        assert response.status_code == 422, response.get_data(as_text=True)
        [problem] = response.json["details"]["problems"]
        assert problem["field"] == "run" and message in problem["message"]
    assert count(app, GenotypeImport) == 0


def test_text_inside_json_objects_is_checked_too(login, tree):
    response = login("analyst").post("/api/v1/profiles", json={
        "sample_id": tree.sample_ids[0], "panel": "test_str4",
        "alleles": {"FH67": [148, 152], "note": {"text": "a\u0000"}}})
    assert response.status_code == 422
    assert response.json["details"]["problems"][0]["field"] == "alleles"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:00-01:00"])
def test_times_that_leave_the_calendar_in_utc_are_refused_by_field(login, tree, moment):
    response = login("custodian").post("/api/v1/samples", json={
        "barcode": "KE-S9", "sample_type": "powder", "item_id": tree.item_ids[0],
        "collected_at": moment})
    assert response.status_code == 422
    [problem] = response.json["details"]["problems"]
    assert problem["field"] == "collected_at" and "out of range" in problem["message"]


def test_retry_safe_writes_declare_their_idempotency_key(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    declared = {
        (path, method)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if any(p["name"] == "Idempotency-Key" and p["in"] == "header"
               for p in operation.get("parameters", []))
    }
    assert declared == {("/api/v1/custody-events", "post"), ("/api/v1/genotype-imports", "post")}
