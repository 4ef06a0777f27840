"""Rules on evidence records: consumed material stays consumed; references are unique per
agency and a refused barcode says nothing about the record that holds it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lims.models import Case, Extract, Sample, Seizure, SourceAnimal
from tests.lims.factories import make_trees_of_both_agencies

CASE = {"reference": "KE-2024-07", "title": "Container", "kind": "investigation"}


@pytest.fixture
def trees(session, agencies):
    return make_trees_of_both_agencies(session, agencies)


@pytest.fixture
def custodian(login):
    return login("custodian", "analyst")


def new_extract(session, sample_id: int) -> int:
    extract = Extract(barcode=f"EX-{sample_id}", sample_id=sample_id)
    session.add(extract)
    session.commit()
    return extract.id


# --------------------------------------------------------------------------- consumed
@pytest.mark.parametrize(
    ("kind", "text_field"), [("samples", "description"), ("extracts", "method")]
)
def test_consumed_material_cannot_be_made_unconsumed(custodian, trees, session, kind, text_field):
    record_id = trees["A"].sample_ids[0]
    if kind == "extracts":
        record_id = new_extract(session, record_id)
    url = f"/api/v1/{kind}/{record_id}"
    assert custodian.patch(url, json={"consumed": False}).json["consumed"] is False
    assert custodian.patch(url, json={"consumed": True}).json["consumed"] is True
    refused = custodian.patch(url, json={"consumed": False, text_field: "found again"})
    assert refused.status_code == 422
    assert refused.json["details"]["problems"] == [
        {
            "field": "consumed",
            "message": "cannot be cleared: consumed material cannot come back into use",
        }
    ]
    after = custodian.get(url).json
    assert after["consumed"] is True and after[text_field] is None
    # Setting it again, or leaving it out, is no change of state and is accepted.
    assert custodian.patch(url, json={"consumed": True}).status_code == 200
    assert custodian.patch(url, json={text_field: "empty tube"}).status_code == 200


@pytest.mark.parametrize("kind", ["sample", "extract"])
def test_destroyed_material_stays_consumed(custodian, trees, session, kind):
    record_id = trees["A"].sample_ids[0]
    if kind == "extract":
        record_id = new_extract(session, record_id)
    destroyed = custodian.post(
        "/api/v1/custody-events",
        json={
            "event_type": "destroy",
            "subject_type": kind,
            "subject_id": record_id,
            "signature_meaning": "performed",
        },
    )
    assert destroyed.status_code == 201, destroyed.json
    refused = custodian.patch(f"/api/v1/{kind}s/{record_id}", json={"consumed": False})
    assert refused.status_code == 422
    assert refused.json["details"]["problems"] == [
        {
            "field": "consumed",
            "message": "cannot be cleared: the material was destroyed (custody event "
            f"{destroyed.json['seq']})",
        }
    ]
    model = Sample if kind == "sample" else Extract
    assert session.get(model, record_id).consumed is True


# --------------------------------------------------------------------------- references
def test_another_agencys_case_reference_is_free_and_stays_hidden(login, session):
    in_a, in_b = login("custodian"), login("custodian", agency="B")
    case_a = in_a.post("/api/v1/cases", json=CASE).json
    response = in_b.post("/api/v1/cases", json={**CASE, "title": "Ours"})
    assert response.status_code == 201, response.json
    case_b = response.json
    assert case_b["agency_id"] == in_b.agency_id and case_b["id"] != case_a["id"]
    assert case_b["title"] == "Ours"
    listed = in_b.get(f"/api/v1/cases?reference={CASE['reference']}").json
    assert [case["id"] for case in listed["items"]] == [case_b["id"]]
    assert in_b.get(f"/api/v1/cases/{case_a['id']}").status_code == 404
    assert session.get(Case, case_a["id"]).title == CASE["title"]
    # Within one agency a reference is still unique.
    again = in_b.post("/api/v1/cases", json=CASE)
    assert again.status_code == 409
    assert again.json["details"]["problems"] == [
        {"field": "reference", "message": f"{CASE['reference']!r} is already in use"}
    ]


def test_seizure_references_are_unique_per_agency(login, trees, session):
    in_a, in_b = login("custodian"), login("custodian", agency="B")
    taken_by_a = "KE-SZ"  # the seizure of agency A's case tree
    created = in_b.post(
        "/api/v1/seizures", json={"case_id": trees["B"].case_id, "reference": taken_by_a}
    )
    assert created.status_code == 201, created.json
    assert session.get(Seizure, created.json["id"]).agency_id == in_b.agency_id
    renamed = in_b.patch(f"/api/v1/seizures/{trees['B'].seizure_id}", json={"reference": "X-1"})
    assert renamed.status_code == 200
    clash = in_b.patch(f"/api/v1/seizures/{trees['B'].seizure_id}", json={"reference": taken_by_a})
    assert clash.status_code == 409
    assert clash.json["details"]["problems"][0]["field"] == "reference"
    own = in_a.post(
        "/api/v1/seizures", json={"case_id": trees["A"].case_id, "reference": taken_by_a}
    )
    assert own.status_code == 409


def test_source_animal_identifiers_are_unique_per_agency(login, trees, session):
    in_a, in_b = login("custodian"), login("custodian", agency="B")
    body = {"identifier": "CARC-1", "kind": "carcass"}
    assert (
        in_a.post("/api/v1/source-animals", json={**body, "case_id": trees["A"].case_id})
    ).status_code == 201
    in_use = [{"field": "identifier", "message": "'CARC-1' is already in use"}]
    # Agency A's carcass does not make the identifier "in use" for B, on create or update.
    created = in_b.post("/api/v1/source-animals", json={**body, "case_id": trees["B"].case_id})
    assert created.status_code == 201, created.json
    assert session.get(SourceAnimal, created.json["id"]).agency_id == in_b.agency_id
    other = in_b.post(
        "/api/v1/source-animals",
        json={**body, "identifier": "CARC-2", "case_id": trees["B"].case_id},
    )
    assert other.status_code == 201, other.json
    unchanged = in_b.patch(f"/api/v1/source-animals/{created.json['id']}", json=body)
    assert unchanged.status_code == 200
    # Within one agency an identifier is still unique (checked before writing, naming the field).
    clash = in_b.patch(f"/api/v1/source-animals/{other.json['id']}", json={"identifier": "CARC-1"})
    assert clash.status_code == 409
    assert clash.json["details"]["problems"] == in_use
    again = in_a.post("/api/v1/source-animals", json={**body, "case_id": trees["A"].case_id})
    assert again.status_code == 409
    assert again.json["details"]["problems"] == in_use


def test_a_contributor_writes_in_the_owning_agencys_references(login, trees, agencies):
    owner, contributor = login("custodian"), login("custodian", agency="B")
    share = f"/api/v1/cases/{trees['A'].case_id}/shares/{agencies['B']}"
    assert owner.put(share, json={"access": "contribute"}).status_code == 201
    body = {"case_id": trees["A"].case_id, "reference": "KE-SZ"}
    assert contributor.post("/api/v1/seizures", json=body).status_code == 409
    fresh = contributor.post("/api/v1/seizures", json={**body, "reference": "UG-SZ"})
    assert fresh.status_code == 201  # agency B's own "UG-SZ" is in another agency's space
    assert fresh.json["case_id"] == trees["A"].case_id


def test_the_database_holds_references_unique_per_agency(session, agencies):
    session.add_all(
        [
            Case(agency_id=agencies["A"], reference="R-1", title="a", kind="investigation"),
            Case(agency_id=agencies["B"], reference="R-1", title="b", kind="investigation"),
        ]
    )
    session.commit()
    session.add(Case(agency_id=agencies["A"], reference="R-1", title="c", kind="investigation"))
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()


@pytest.mark.parametrize("kind", ["samples", "extracts"])
def test_a_barcode_taken_in_another_agency_is_refused_without_a_trace_of_it(
    login, trees, session, kind
):
    """Barcodes are on physical labels and unique everywhere, so the refusal is unavoidable;
    it tells that the barcode is taken, which the caller's own label already says, and
    nothing about the other agency's record."""
    in_b = login("custodian", "analyst", agency="B")
    taken = trees["A"].barcodes[0]
    if kind == "samples":
        body = {"barcode": taken, "sample_type": "powder", "item_id": trees["B"].item_ids[0]}
    else:
        new_extract(session, trees["A"].sample_ids[0])
        taken = f"EX-{trees['A'].sample_ids[0]}"
        body = {"barcode": taken, "sample_id": trees["B"].sample_ids[0]}
    response = in_b.post(f"/api/v1/{kind}", json=body)
    assert response.status_code == 409
    assert response.json == {
        "error": "conflict",
        "message": "a value that must be unique is already in use",
        "details": {"problems": [{"field": "barcode", "message": f"{taken!r} is already in use"}]},
    }
