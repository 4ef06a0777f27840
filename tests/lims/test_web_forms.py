"""The forms for evidence and custody: records made as the API makes them, every problem shown
beside its field, nothing saved from a refused form; the sample page's lineage, storage and
custody timeline."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from lims.custody import verify_ledger
from lims.extensions import db
from lims.models import Case, CustodyEvent, Item, Sample, Seizure
from tests.lims.web_support import (
    count,
    field_errors,
    input_tag,
    input_value,
    make_browser,
    make_world,
    share_case,
)


@pytest.fixture
def world(app, agencies):
    return make_world(app, agencies["A"], "A")


@pytest.fixture
def custodian(app, agencies):
    return make_browser(app, agencies, "custodian")


def test_a_case_seizure_item_and_sample_registered_through_the_forms(app, agencies, custodian):
    response = custodian.post("/cases/new", {"reference": "K-1", "title": "Port case",
                                             "kind": "investigation"})
    assert response.status_code == 302
    with app.app_context():
        case = db.session.scalar(sa.select(Case).where(Case.reference == "K-1"))
        assert (case.agency_id, case.created_by_id, case.status) == (
            agencies["A"], custodian.user_id, "open")
    response = custodian.post(
        f"/cases/{case.id}/seizures/new",
        {"reference": "K-1-SZ", "seized_on": "2024-04-02", "place": "Mombasa",
         "country": "Kenya", "latitude": "-4.04", "longitude": "39.67",
         "route": "Mombasa → Haiphong", "seizing_agency_id": str(agencies["B"]),
         "declared_pieces": "2",
         "declared_weight_kg": "31.5"},
    )
    assert response.status_code == 302
    seizure_url = response.headers["Location"]
    with app.app_context():
        seizure = db.session.scalar(sa.select(Seizure).where(Seizure.reference == "K-1-SZ"))
        assert (str(seizure.seized_on), seizure.latitude, seizure.seizing_agency_id,
                seizure.declared_pieces, seizure.declared_weight_kg) == (
            "2024-04-02", -4.04, agencies["B"], 2, 31.5)
    assert seizure_url == f"/seizures/{seizure.id}"
    custodian.post(f"/seizures/{seizure.id}/items/new", {"label": "L", "kind": "tusk"})
    # The second tusk names the first as its pair: the pairing is made on both sides.
    form = custodian.get(f"/seizures/{seizure.id}/items/new").get_data(as_text=True)
    first_id = re.search(r'<option value="(\d+)">L</option>', form).group(1)
    response = custodian.post(
        f"/seizures/{seizure.id}/items/new",
        {"label": "R", "kind": "tusk", "length_cm": "120.5", "paired_item_id": first_id},
    )
    assert response.status_code == 302
    with app.app_context():
        left, right = db.session.scalars(sa.select(Item).order_by(Item.label)).all()
        assert (left.paired_item_id, right.paired_item_id) == (right.id, left.id)
    form = custodian.get(f"/items/{left.id}/samples/new").get_data(as_text=True)
    assert 'value="K-1-SZ-L-S1"' in form  # the suggested barcode
    response = custodian.post(f"/items/{left.id}/samples/new",
                              {"barcode": "K-1-SZ-L-S1", "sample_type": "powder",
                               "collected_at": "2024-04-03T10:15"})
    assert response.status_code == 302
    with app.app_context():
        sample = db.session.scalar(sa.select(Sample).where(Sample.barcode == "K-1-SZ-L-S1"))
        assert (sample.case_id, sample.item_id) == (case.id, left.id)
        assert sample.collected_at.isoformat() == "2024-04-03T10:15:00+00:00"


def test_seizure_form_shows_every_problem_beside_its_field_and_saves_nothing(
    app, custodian, world
):
    response = custodian.post(
        f"/cases/{world.case_id}/seizures/new",
        {"reference": "A-SZ", "seized_on": "2024-13-40", "latitude": "120",
         "longitude": "east", "declared_pieces": "-3", "seizing_agency_id": "999"},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_errors(html, "seized_on") == ["Not a valid date value."]
    assert field_errors(html, "latitude") == ["must be at most 90"]
    assert field_errors(html, "longitude") == ["Not a valid float value."]
    assert field_errors(html, "declared_pieces") == ["must be at least 0"]
    assert field_errors(html, "seizing_agency_id") == ["Not a valid choice."]
    assert "Nothing was saved" in html
    assert count(app, Seizure) == 1
    # The values typed stay in the form.
    assert input_value(html, "latitude") == "120"
    # A duplicate reference alone: the uniqueness rule of the API, beside the field.
    response = custodian.post(f"/cases/{world.case_id}/seizures/new", {"reference": "A-SZ"})
    assert response.status_code == 409
    assert field_errors(response.get_data(as_text=True), "reference") == [
        "'A-SZ' is already in use"
    ]
    response = custodian.post(f"/cases/{world.case_id}/seizures/new", {"reference": " "})
    assert field_errors(response.get_data(as_text=True), "reference") == ["is required"]
    assert count(app, Seizure) == 1


def test_item_rules_are_the_apis(app, custodian, world):
    url = f"/seizures/{world.seizure_id}/items/new"
    response = custodian.post(url, {"label": "T1", "kind": "tusk"})
    assert response.status_code == 409
    assert field_errors(response.get_data(as_text=True), "label") == [
        "'T1' is already used in this seizure"
    ]
    custodian.post(url, {"label": "T3", "kind": "tusk"})
    with app.app_context():
        unpaired = db.session.scalar(sa.select(Item.id).where(Item.label == "T3"))
    # A horn cannot be paired: the pairing is refused and the horn is not half-saved.
    response = custodian.post(url, {"label": "H1", "kind": "horn", "length_cm": "0",
                                    "paired_item_id": str(unpaired)})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_errors(html, "length_cm") == ["must be positive"]
    response = custodian.post(url, {"label": "H1", "kind": "horn",
                                    "paired_item_id": str(unpaired)})
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "paired_item_id") == [
        "only tusks are paired"
    ]
    assert count(app, Item) == 3
    with app.app_context():
        assert db.session.get(Item, unpaired).paired_item_id is None


def test_sample_forms_refuse_duplicates_and_consumed_parents(app, custodian, world):
    response = custodian.post(f"/items/{world.item_ids[0]}/samples/new",
                              {"barcode": world.barcodes[1], "sample_type": "powder"})
    assert response.status_code == 409
    assert field_errors(response.get_data(as_text=True), "barcode") == [
        f"'{world.barcodes[1]}' is already in use"
    ]
    response = custodian.post(f"/items/{world.item_ids[0]}/samples/new",
                              {"barcode": "NEW", "sample_type": "ivory",
                               "collected_at": "yesterday"})
    html = response.get_data(as_text=True)
    assert field_errors(html, "sample_type") == ["Not a valid choice."]
    assert field_errors(html, "collected_at") == ["Not a valid datetime value."]
    with app.app_context():
        db.session.get(Sample, world.sample_ids[1]).consumed = True
        db.session.commit()
    response = custodian.post(f"/samples/{world.sample_ids[1]}/aliquots/new",
                              {"barcode": "NEW", "sample_type": "powder"})
    assert response.status_code == 409
    assert f"sample {world.barcodes[1]} is consumed" in response.get_data(as_text=True)
    assert count(app, Sample) == 4


def test_the_sample_page_shows_lineage_storage_and_the_custody_timeline(app, agencies, world):
    reader = make_browser(app, agencies, "investigator")
    html = reader.get(f"/samples/{world.aliquot_id}").get_data(as_text=True)
    lineage = re.search(r'<ol class="lineage">(.*?)</ol>', html, re.S).group(1)
    steps = re.findall(r"<li>(.*?)</li>", lineage, re.S)
    assert [re.sub(r"<[^>]+>", "", step).strip() for step in steps] == [
        "case A-CASE", "seizure A-SZ", "tusk T1", "A-S1", "A-S1-A1",
    ]
    assert "not stored yet" in html
    # The aliquot's history holds the seizure's collection, not the parent's storage, which
    # came after the aliquot was taken.
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', html, re.S).group(1)
    heads = re.findall(r'<div class="event-head">(.*?)</div>', timeline)
    assert heads == ["Collect · seizure A-SZ"]
    parent = reader.get(f"/samples/{world.sample_ids[0]}").get_data(as_text=True)
    assert "A freezer" in parent
    assert "Aliquots and sub-samples" in parent and "A-S1-A1" in parent
    assert re.findall(r'<div class="event-head">(.*?)</div>', parent) == [
        "Collect · seizure A-SZ", "Store · this sample"]
    animal_sample = reader.get(f"/samples/{world.animal_sample_id}").get_data(as_text=True)
    assert "carcass A-CARC" in animal_sample


def test_custody_by_barcode_records_the_event_and_keeps_the_hand_over_details(
    app, custodian, world
):
    page = custodian.get("/custody/scan").get_data(as_text=True)
    assert " autofocus " in input_tag(page, "barcode")
    details = {"event_type": "transfer", "signature_meaning": "released",
               "from_holder": "Cleo", "to_holder": "Ana", "place": "Lab"}
    response = custodian.post("/custody/scan", {"barcode": f" {world.barcodes[1]} ",
                                                "seal_numbers": "S-1, S-2", **details})
    assert response.status_code == 302
    following = custodian.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Recorded transfer of sample {world.barcodes[1]}" in following
    # The hand-over stays filled in for the next scan; the barcode and seals do not.
    assert input_value(following, "to_holder") == "Ana"
    assert '<option selected value="released">' in following
    assert input_value(following, "barcode") == ""
    assert input_value(following, "seal_numbers") == ""
    assert " autofocus " in input_tag(following, "barcode")
    with app.app_context():
        event = db.session.scalars(sa.select(CustodyEvent).order_by(CustodyEvent.seq.desc())
                                   ).first()
        assert (event.sample_id, event.event_type, event.from_holder, event.to_holder,
                event.seal_numbers, event.actor_id) == (
            world.sample_ids[1], "transfer", "Cleo", "Ana", ["S-1", "S-2"], custodian.user_id)
        assert verify_ledger(db.session).ok


def test_a_custody_form_sent_twice_records_its_event_once(app, custodian, world):
    page = custodian.get("/custody/scan").get_data(as_text=True)
    fields = {"barcode": world.barcodes[1], "event_type": "open", "signature_meaning":
              "performed", "submission_key": input_value(page, "submission_key"),
              "csrf_token": custodian.token()}
    before = count(app, CustodyEvent)
    first = custodian.client.post("/custody/scan", data=fields)
    again = custodian.client.post("/custody/scan", data=fields)
    assert first.status_code == again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"]
    assert count(app, CustodyEvent) == before + 1
    following = custodian.get(again.headers["Location"]).get_data(as_text=True)
    assert "the event was recorded once" in following
    # The same form sent with other details is not taken for a repeat, nor recorded blindly.
    changed = custodian.client.post("/custody/scan", data={**fields, "event_type": "return"})
    assert changed.status_code == 409
    assert "already sent and recorded" in changed.get_data(as_text=True)
    assert count(app, CustodyEvent) == before + 1
    # A new page brings a new key.
    assert input_value(following, "submission_key") not in ("", fields["submission_key"])


def test_custody_form_errors_are_shown_beside_their_fields(app, agencies, custodian, world):
    before = count(app, CustodyEvent)
    response = custodian.post("/custody/scan", {"barcode": "NO-SUCH", "event_type": "open",
                                                "signature_meaning": "performed"})
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "barcode") == [
        "'NO-SUCH' names no sample or extract you can see"
    ]
    response = custodian.post("/custody/scan", {"barcode": world.barcodes[0],
                                                "event_type": "transfer",
                                                "signature_meaning": "performed",
                                                "from_holder": "Cleo"})
    assert field_errors(response.get_data(as_text=True), "to_holder") == [
        "a transfer needs to_holder"
    ]
    response = custodian.post("/custody/scan", {"barcode": world.barcodes[0],
                                                "event_type": "store",
                                                "signature_meaning": "performed"})
    assert field_errors(response.get_data(as_text=True), "storage_location_id") == [
        "a store event needs a storage location"
    ]
    response = custodian.post("/custody/scan", {"barcode": world.barcodes[0],
                                                "event_type": "open",
                                                "signature_meaning": "performed",
                                                "occurred_at": "2999-01-01T00:00"})
    assert field_errors(response.get_data(as_text=True), "occurred_at") == [
        "occurred_at is in the future"
    ]
    # Another agency's barcode reads as unknown; a read-only share says why it is refused.
    outsider = make_browser(app, agencies, "custodian", agency="B")
    response = outsider.post("/custody/scan", {"barcode": world.barcodes[0],
                                               "event_type": "open",
                                               "signature_meaning": "performed"})
    assert field_errors(response.get_data(as_text=True), "barcode") == [
        f"'{world.barcodes[0]}' names no sample or extract you can see"
    ]
    share_case(app, world.case_id, agencies["B"], "read")
    response = outsider.post("/custody/scan", {"barcode": world.barcodes[0],
                                               "event_type": "open",
                                               "signature_meaning": "performed"})
    assert response.status_code == 403
    assert field_errors(response.get_data(as_text=True), "barcode") == [
        f"your agency may read sample {world.barcodes[0]} but not add to its custody record"
    ]
    assert count(app, CustodyEvent) == before


def test_storage_locations_nest(app, agencies, world):
    custodian = make_browser(app, agencies, "custodian")
    response = custodian.post("/storage", {"name": "Rack 1", "kind": "rack",
                                           "parent_id": str(world.location_id)})
    assert response.status_code == 302
    html = custodian.get("/storage").get_data(as_text=True)
    assert "A freezer / Rack 1" in html
    response = custodian.post("/storage", {"name": "", "kind": "rack"})
    assert field_errors(response.get_data(as_text=True), "name") == ["is required"]
