"""The REST API: records, need-to-know, pagination and filters, errors, OpenAPI."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re

import pytest
import sqlalchemy as sa

from lims.extensions import db
from lims.models import Agency

CASE = {"reference": "KE-2024-01", "title": "Mombasa container", "kind": "investigation"}


@pytest.fixture
def custodian(login):
    return login("custodian")


def create(caller, path: str, body: dict) -> dict:
    response = caller.post(f"/api/v1/{path}", json=body)
    assert response.status_code == 201, response.json
    assert response.headers["Location"].endswith(f"/{response.json['id']}")
    return response.json


@pytest.fixture
def seizure(custodian):
    case = create(custodian, "cases", CASE)
    return create(
        custodian,
        "seizures",
        {
            "case_id": case["id"],
            "reference": "KE-SZ-1",
            "seized_on": "2024-02-29",
            "country": "Kenya",
            "latitude": -4.05,
            "longitude": 39.67,
            "declared_pieces": 12,
            "declared_weight_kg": 180.5,
        },
    )


# --------------------------------------------------------------------------- need-to-know
def test_another_agency_cannot_see_an_unshared_seizure(custodian, seizure, login):
    outsider = login("custodian", "reviewer", agency="B")
    for url in (
        f"/api/v1/seizures/{seizure['id']}",
        f"/api/v1/cases/{seizure['case_id']}",
        f"/api/v1/cases/{seizure['case_id']}/shares",
    ):
        response = outsider.get(url)
        assert response.status_code == 404
        assert set(response.json) == {"error", "message", "details"}
        assert "KE-SZ-1" not in response.text and "Kenya" not in response.text
    assert outsider.get("/api/v1/seizures").json["items"] == []
    assert outsider.get("/api/v1/seizures?reference=KE-SZ-1").json["total"] == 0
    refused = outsider.patch(f"/api/v1/seizures/{seizure['id']}", json={"country": "Togo"})
    assert refused.status_code == 404
    item = outsider.post(
        "/api/v1/items", json={"seizure_id": seizure["id"], "label": "T1", "kind": "tusk"}
    )
    assert item.status_code == 422
    assert item.json["details"]["problems"][0]["field"] == "seizure_id"
    assert custodian.get(f"/api/v1/seizures/{seizure['id']}").json["country"] == "Kenya"


def test_sharing_gives_read_then_contribute_access(custodian, seizure, login, agencies):
    outsider = login("custodian", agency="B")
    share_url = f"/api/v1/cases/{seizure['case_id']}/shares/{agencies['B']}"
    assert custodian.put(share_url, json={"access": "read"}).status_code == 201
    assert outsider.get(f"/api/v1/seizures/{seizure['id']}").json["reference"] == "KE-SZ-1"
    changed = outsider.patch(f"/api/v1/seizures/{seizure['id']}", json={"place": "Lomé"})
    assert changed.status_code == 403
    # Only the owning agency shares its case.
    assert outsider.put(share_url, json={"access": "contribute"}).status_code == 403

    assert custodian.put(share_url, json={"access": "contribute"}).status_code == 200
    changed = outsider.patch(f"/api/v1/seizures/{seizure['id']}", json={"place": "Lomé"})
    assert changed.status_code == 200 and changed.json["place"] == "Lomé"
    case = custodian.get(f"/api/v1/cases/{seizure['case_id']}").json
    assert case["shares"] == [{"agency_id": agencies["B"], "access": "contribute"}]
    # Case metadata stays with its owner even for contributors.
    assert (
        outsider.patch(f"/api/v1/cases/{seizure['case_id']}", json={"title": "mine"}).status_code
        == 403
    )

    assert custodian.delete(share_url).status_code == 204
    assert outsider.get(f"/api/v1/seizures/{seizure['id']}").status_code == 404


def test_a_case_is_not_shared_with_its_own_agency(custodian, seizure, agencies):
    own = custodian.put(
        f"/api/v1/cases/{seizure['case_id']}/shares/{agencies['A']}", json={"access": "read"}
    )
    assert own.status_code == 422
    missing = custodian.put(
        f"/api/v1/cases/{seizure['case_id']}/shares/999999", json={"access": "read"}
    )
    assert missing.status_code == 404


# --------------------------------------------------------------------------- records
def test_items_pair_symmetrically(custodian, seizure):
    left = create(
        custodian,
        "items",
        {"seizure_id": seizure["id"], "label": "T1", "kind": "tusk", "length_cm": 152.0},
    )
    right = create(
        custodian,
        "items",
        {"seizure_id": seizure["id"], "label": "T2", "kind": "tusk", "paired_item_id": left["id"]},
    )
    assert custodian.get(f"/api/v1/items/{left['id']}").json["paired_item_id"] == right["id"]
    horn = create(custodian, "items", {"seizure_id": seizure["id"], "label": "H1", "kind": "horn"})
    third = create(custodian, "items", {"seizure_id": seizure["id"], "label": "T3", "kind": "tusk"})
    assert (
        custodian.patch(
            f"/api/v1/items/{third['id']}", json={"paired_item_id": left["id"]}
        ).status_code
        == 409
    )
    assert (
        custodian.patch(
            f"/api/v1/items/{horn['id']}", json={"paired_item_id": third["id"]}
        ).status_code
        == 422
    )
    assert (
        custodian.patch(f"/api/v1/items/{left['id']}", json={"paired_item_id": None}).status_code
        == 200
    )
    assert custodian.get(f"/api/v1/items/{right['id']}").json["paired_item_id"] is None
    duplicate = custodian.post(
        "/api/v1/items", json={"seizure_id": seizure["id"], "label": "T1", "kind": "tusk"}
    )
    assert duplicate.status_code == 409


def test_samples_come_from_exactly_one_origin(custodian, seizure, login):
    item = create(custodian, "items", {"seizure_id": seizure["id"], "label": "T1", "kind": "tusk"})
    sample = create(
        custodian, "samples", {"barcode": "BC-1", "sample_type": "powder", "item_id": item["id"]}
    )
    assert sample["case_id"] == seizure["case_id"]
    assert sample["seizure_id"] == seizure["id"]
    aliquot = create(
        custodian,
        "samples",
        {"barcode": "BC-1a", "sample_type": "powder", "parent_id": sample["id"]},
    )
    assert aliquot["seizure_id"] == seizure["id"] and aliquot["case_id"] == sample["case_id"]
    both = custodian.post(
        "/api/v1/samples",
        json={
            "barcode": "BC-2",
            "sample_type": "powder",
            "item_id": item["id"],
            "parent_id": sample["id"],
        },
    )
    assert both.status_code == 422
    assert {p["field"] for p in both.json["details"]["problems"]} == {
        "item_id",
        "source_animal_id",
        "parent_id",
    }
    taken = custodian.post(
        "/api/v1/samples", json={"barcode": "BC-1", "sample_type": "powder", "item_id": item["id"]}
    )
    assert taken.status_code == 409
    assert taken.json["details"]["problems"] == [
        {"field": "barcode", "message": "'BC-1' is already in use"}
    ]
    assert (
        custodian.patch(f"/api/v1/samples/{sample['id']}", json={"barcode": "NEW"}).status_code
        == 422
    )
    analyst = login("analyst")
    assert (
        analyst.patch(f"/api/v1/samples/{sample['id']}", json={"consumed": True}).json["consumed"]
        is True
    )
    extract = analyst.post("/api/v1/extracts", json={"barcode": "EX-1", "sample_id": sample["id"]})
    assert extract.status_code == 409  # a consumed sample yields nothing more
    animal = create(
        custodian,
        "source-animals",
        {
            "case_id": seizure["case_id"],
            "identifier": "CARC-7",
            "kind": "carcass",
            "species": "Diceros bicornis",
        },
    )
    from_animal = create(
        custodian,
        "samples",
        {"barcode": "BC-3", "sample_type": "tissue", "source_animal_id": animal["id"]},
    )
    assert from_animal["seizure_id"] is None


def test_storage_locations_nest_without_cycles(login):
    admin = login("admin")
    room = create(admin, "storage-locations", {"name": "Room 4", "kind": "room"})
    freezer = create(
        admin,
        "storage-locations",
        {"name": "Freezer B", "kind": "freezer", "parent_id": room["id"]},
    )
    box = create(
        admin, "storage-locations", {"name": "Box 12", "kind": "box", "parent_id": freezer["id"]}
    )
    assert box["path"] == "Room 4 / Freezer B / Box 12"
    cycle = admin.patch(f"/api/v1/storage-locations/{room['id']}", json={"parent_id": box["id"]})
    assert cycle.status_code == 422
    other = login("admin", agency="B")
    assert other.get(f"/api/v1/storage-locations/{box['id']}").status_code == 404


def test_attachments_keep_their_sha256(custodian, seizure, login):
    photo = b"\x89PNG fake photo bytes"
    response = custodian.post(
        "/api/v1/attachments",
        data={
            "file": (io.BytesIO(photo), "tusk 1.png", "image/png"),
            "subject_type": "seizure",
            "subject_id": str(seizure["id"]),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.json
    digest = hashlib.sha256(photo).hexdigest()
    assert response.json["sha256"] == digest and response.json["size_bytes"] == len(photo)
    assert response.json["filename"] == "tusk_1.png"
    content = custodian.get(f"/api/v1/attachments/{response.json['id']}/content")
    assert content.data == photo and content.headers["Content-Type"] == "image/png"
    assert content.headers["Repr-Digest"] == (
        "sha-256=:" + base64.b64encode(hashlib.sha256(photo).digest()).decode() + ":"
    )
    listed = custodian.get(f"/api/v1/attachments?seizure_id={seizure['id']}").json
    assert [item["sha256"] for item in listed["items"]] == [digest]
    outsider = login("custodian", agency="B")
    assert outsider.get(f"/api/v1/attachments/{response.json['id']}/content").status_code == 404
    missing = custodian.post(
        "/api/v1/attachments", data={"subject_type": "planet"}, content_type="multipart/form-data"
    )
    assert missing.status_code == 422
    assert {p["field"] for p in missing.json["details"]["problems"]} == {
        "file",
        "subject_type",
        "subject_id",
    }


# --------------------------------------------------------------------------- lists
def test_lists_are_paginated_and_filtered(custodian):
    case = create(custodian, "cases", CASE)
    for number in range(7):
        create(
            custodian,
            "seizures",
            {
                "case_id": case["id"],
                "reference": f"SZ-{number}",
                "country": "Kenya" if number % 2 else "Uganda",
                "seized_on": f"2024-01-0{number + 1}",
            },
        )
    page = custodian.get("/api/v1/seizures?per_page=3&page=3").json
    assert (page["total"], page["page"], page["per_page"]) == (7, 3, 3)
    assert [item["reference"] for item in page["items"]] == ["SZ-6"]
    kenyan = custodian.get("/api/v1/seizures?country=Kenya").json
    assert [item["reference"] for item in kenyan["items"]] == ["SZ-1", "SZ-3", "SZ-5"]
    window = custodian.get("/api/v1/seizures?seized_from=2024-01-03&seized_to=2024-01-04")
    assert [item["reference"] for item in window.json["items"]] == ["SZ-2", "SZ-3"]
    bad = custodian.get("/api/v1/seizures?colour=red&per_page=0&seized_from=yesterday")
    assert bad.status_code == 400
    assert {p["field"] for p in bad.json["details"]["problems"]} == {"colour", "seized_from"}
    assert custodian.get("/api/v1/seizures?per_page=0").status_code == 400


# --------------------------------------------------------------------------- errors
def test_validation_reports_every_problem(custodian):
    case = create(custodian, "cases", CASE)
    response = custodian.post(
        "/api/v1/seizures",
        json={
            "case_id": case["id"],
            "latitude": 123,
            "declared_pieces": "many",
            "colour": "red",
        },
    )
    assert response.status_code == 422
    assert response.json["error"] == "validation_failed"
    assert sorted(response.json["details"]["problems"], key=lambda p: p["field"]) == [
        {"field": "colour", "message": "unknown field"},
        {"field": "declared_pieces", "message": "must be an integer"},
        {"field": "latitude", "message": "must be at most 90"},
        {"field": "reference", "message": "is required"},
    ]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "error"),
    [
        ("get", "/api/v1/nowhere", {}, 404, "not_found"),
        ("delete", "/api/v1/cases", {}, 405, "method_not_allowed"),
        (
            "post",
            "/api/v1/cases",
            {"data": "not json", "content_type": "text/plain"},
            400,
            "bad_request",
        ),
        ("post", "/api/v1/cases", {"json": [1, 2]}, 422, "validation_failed"),
        ("get", "/api/v1/cases/12345", {}, 404, "not_found"),
    ],
)
def test_errors_have_one_shape(custodian, method, url, kwargs, status, error):
    response = getattr(custodian.client, method)(url, headers=custodian.headers, **kwargs)
    assert response.status_code == status
    assert response.is_json
    assert set(response.json) == {"error", "message", "details"}
    assert response.json["error"] == error and response.json["message"]


def test_browsers_get_html_errors(client):
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html" and "Error 404" in response.text


def test_a_500_rolls_back_the_request_and_answers_in_shape(app, session):
    def half_done():
        db.session.add(Agency(code="HALF", name="Half written", kind="other"))
        db.session.flush()
        raise RuntimeError("bug in the middle of a write")

    app.add_url_rule("/api/v1/test-failure", "test_failure", half_done)
    app.add_url_rule("/test-failure", "page_failure", half_done)
    client = app.test_client()
    response = client.get("/api/v1/test-failure")
    assert response.status_code == 500
    assert response.json == {
        "error": "internal_error",
        "message": "an internal error occurred; it has been logged",
        "details": None,
    }
    page = client.get("/test-failure", headers={"Accept": "text/html"})
    assert page.status_code == 500 and "Error 500" in page.text
    assert session.scalar(sa.select(sa.func.count()).select_from(Agency)) == 0


# --------------------------------------------------------------------------- OpenAPI
def test_every_api_endpoint_is_in_the_openapi_document(app, client):
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200  # public: no credentials needed
    spec = document.json
    assert spec["openapi"].startswith("3.")
    listed = {(path, method) for path, item in spec["paths"].items() for method in item}
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")]
    assert len(rules) > 40
    for rule in rules:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in listed, (path, method)
            operation = spec["paths"][path][method.lower()]
            assert operation["summary"] and operation["responses"]
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == set(rule.arguments)
    assert len(listed) == sum(len(rule.methods - {"HEAD", "OPTIONS"}) for rule in rules)


def test_openapi_references_resolve_and_match_the_declarations(client):
    spec = client.get("/api/v1/openapi.json").json
    schemas = spec["components"]["schemas"]
    references = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(spec))
    assert references and all(name in schemas for name in references)
    create_seizure = spec["paths"]["/api/v1/seizures"]["post"]
    body = create_seizure["requestBody"]["content"]["application/json"]["schema"]
    created = schemas[body["$ref"].rsplit("/", 1)[1]]
    assert set(created["required"]) == {"case_id", "reference"}
    assert "id" not in created["properties"] and "created_at" not in created["properties"]
    listing = spec["paths"]["/api/v1/seizures"]["get"]
    assert {"page", "per_page", "country", "seized_from"} <= {
        p["name"] for p in listing["parameters"]
    }
    assert "401" in listing["responses"] and "403" in listing["responses"]
    assert spec["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
