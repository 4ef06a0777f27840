"""The quality system's pages: a contamination flag cleared by a reviewer, a hit confirmation,
a species test, validation and proficiency records, positive controls, elimination profiles
and extraction batches, and the quality sections of the sample and profile pages.

For each form: the CSRF token is on the page and required, roles without the permission are
refused (403), another agency's records are not found (404), and the success path records
what was typed."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re

import pytest
import sqlalchemy as sa

from lims.extensions import db
from lims.models import (
    ContaminationFlag,
    EliminationProfile,
    Extract,
    ExtractionBatch,
    GenotypeProfile,
    HitConfirmation,
    PositiveControl,
    QualityRecord,
    SpeciesTest,
)
from matching.species import default_barcode_set
from tests.lims.web_support import count, field_errors, make_browser, make_world

SAVANNA = "Loxodonta_africana_NC_000934_cytb"
FULL = {"FH67": [120, 124], "FH71": [200, 204], "LA5": [100, 104], "LAT24": [200, 204]}
FULL_TEXT = "FH67 120/124\nFH71: 200, 204\nLA5 100 104\nLAT24 200/204\n"


@pytest.fixture
def world(app, agencies):
    return make_world(app, agencies["A"], "A")


@pytest.fixture
def people(app, agencies):
    return {role: make_browser(app, agencies, role)
            for role in ("analyst", "reviewer", "investigator")} | {
        "outsider": make_browser(app, agencies, "analyst", "reviewer", agency="B")}


def _has_csrf_field(html: str) -> bool:
    return re.search(r'<input[^>]*name="csrf_token"[^>]*type="hidden"|'
                     r'<input[^>]*type="hidden"[^>]*name="csrf_token"', html) is not None


def _full_profile(app, world) -> int:
    """A pending profile of A-S2 typed at the panel's four loci."""
    with app.app_context():
        profile = GenotypeProfile(sample_id=world.sample_ids[1], panel="test_str4",
                                  alleles=FULL, n_loci_typed=4, import_id=world.import_id,
                                  state="pending", analyst_id=world.analyst_id)
        db.session.add(profile)
        db.session.commit()
        return profile.id


def _flag(app, profile_id: int) -> int:
    with app.app_context():
        flag = ContaminationFlag(profile_id=profile_id, kind="plate",
                                 reason="same genotype as a plate neighbour", status="open",
                                 comparison={"loci_compared": 4, "identical": list(FULL),
                                             "dropout_compatible": [], "different": []})
        db.session.add(flag)
        db.session.commit()
        return flag.id


def test_a_reviewer_clears_a_contamination_flag_on_its_page(app, world, people):
    profile_id = _full_profile(app, world)
    flag_id = _flag(app, profile_id)
    url = f"/quality/flags/{flag_id}"
    seen = people["analyst"].get(url)
    assert seen.status_code == 200
    html = seen.get_data(as_text=True)
    assert "same genotype as a plate neighbour" in html and "Record disposition" not in html
    assert people["analyst"].post(url, {"status": "cleared", "reason": "x"}).status_code == 403
    assert people["outsider"].get(url).status_code == 404
    assert people["outsider"].post(url, {"status": "cleared", "reason": "x"}).status_code == 404
    page = people["reviewer"].get(url).get_data(as_text=True)
    assert "Record disposition" in page and _has_csrf_field(page)
    refused = people["reviewer"].post(url, {"status": "cleared", "reason": "re-extracted"},
                                      csrf=False)
    assert refused.status_code == 400
    empty = people["reviewer"].post(url, {"status": "cleared", "reason": " "})
    assert empty.status_code == 422
    assert "a resolution needs its reason" in empty.get_data(as_text=True)
    done = people["reviewer"].post(url, {"status": "cleared", "reason": "re-extracted, clean"})
    assert done.status_code == 302
    with app.app_context():
        flag = db.session.get(ContaminationFlag, flag_id)
        assert (flag.status, flag.resolution, flag.resolved_by_id) == (
            "cleared", "re-extracted, clean", people["reviewer"].user_id)
    # The list links to the flag; the profile page shows it and links to it.
    assert f'href="/quality/flags/{flag_id}"' in people["reviewer"].get(
        "/quality/flags").get_data(as_text=True)
    profile_page = people["analyst"].get(f"/profiles/{profile_id}").get_data(as_text=True)
    assert f'href="/quality/flags/{flag_id}"' in profile_page
    assert f'href="/quality/profiles/{profile_id}/confirmations"' in profile_page


def test_an_analyst_records_a_hit_confirmation_on_a_page(app, world, people):
    profile_id = _full_profile(app, world)
    url = f"/quality/profiles/{profile_id}/confirmations"
    assert people["reviewer"].get(url).status_code == 403
    assert people["investigator"].get(url).status_code == 403
    assert people["outsider"].get(url).status_code == 404
    page = people["analyst"].get(url)
    assert page.status_code == 200 and _has_csrf_field(page.get_data(as_text=True))
    form = {"method": "re-typing", "confirming_profile_id": "", "note": ""}
    assert people["analyst"].post(url, {**form, "alleles": FULL_TEXT},
                                  csrf=False).status_code == 400
    bad = people["analyst"].post(url, {**form, "alleles": "FH67 120/124\nnot a locus line!"})
    assert bad.status_code == 422
    assert field_errors(bad.get_data(as_text=True), "alleles") == [
        "line 2: 'not a locus line!' is not 'LOCUS allele/allele'"]
    off_panel = people["analyst"].post(url, {**form, "alleles": "NOPE 1/2"})
    assert off_panel.status_code == 422
    assert "alleles.NOPE: unknown locus" in off_panel.get_data(as_text=True)
    assert count(app, HitConfirmation) == 0
    done = people["analyst"].post(url, {**form, "alleles": FULL_TEXT, "note": "second PCR"})
    assert done.status_code == 302
    with app.app_context():
        (confirmation,) = db.session.scalars(sa.select(HitConfirmation)).all()
        assert (confirmation.profile_id, confirmation.concordant, confirmation.alleles,
                confirmation.note) == (profile_id, True, FULL, "second PCR")
    listed = people["analyst"].get(url).get_data(as_text=True)
    # (the page's hint names both words: look at the table's cells)
    assert '<td data-label="Result">concordant</td>' in listed
    assert '<td data-label="Method">re-typing</td>' in listed
    # A dropout at one locus: recorded, discordant.
    dropout = FULL_TEXT.replace("FH67 120/124", "FH67 120")
    people["analyst"].post(url, {**form, "alleles": dropout})
    with app.app_context():
        assert [c.concordant for c in db.session.scalars(
            sa.select(HitConfirmation).order_by(HitConfirmation.id))] == [True, False]
    rows = re.findall(r'<tr class="confirmation-(\w+)">',
                      people["analyst"].get(url).get_data(as_text=True))
    assert sorted(rows) == ["concordant", "discordant"]


def test_an_analyst_records_a_species_test_and_sees_its_verdict_and_set_hash(app, world,
                                                                             people):
    url = f"/quality/samples/{world.sample_ids[0]}/species-tests"
    assert people["investigator"].get(url).status_code == 403
    assert people["reviewer"].get(url).status_code == 403
    assert people["outsider"].get(url).status_code == 404
    page = people["analyst"].get(url)
    assert page.status_code == 200 and _has_csrf_field(page.get_data(as_text=True))
    read = f">tusk-read\n{default_barcode_set().reference(SAVANNA).sequence}\n".encode()
    upload = {"file": (io.BytesIO(read), "tusk.fasta"), "marker": "cytb"}
    assert people["analyst"].post(url, upload, csrf=False,
                                  content_type="multipart/form-data").status_code == 400
    bad = people["analyst"].post(url, {"file": (io.BytesIO(b"no read here"), "x.fasta"),
                                       "marker": "cytb"}, content_type="multipart/form-data")
    assert bad.status_code == 422 and count(app, SpeciesTest) == 0
    assert field_errors(bad.get_data(as_text=True), "file") == [
        "x.fasta, line 1: not FASTA: expected a '>' header line"]
    done = people["analyst"].post(url, {"file": (io.BytesIO(read), "tusk.fasta"),
                                        "marker": "cytb"}, content_type="multipart/form-data")
    assert done.status_code == 302
    shown = people["analyst"].get(done.headers["Location"]).get_data(as_text=True)
    assert "identified: Loxodonta africana" in shown
    assert default_barcode_set().content_hash in shown
    assert hashlib.sha256(read).hexdigest() in shown
    with app.app_context():
        (test,) = db.session.scalars(sa.select(SpeciesTest)).all()
        assert test.content == read and test.verdict == "identified"
        test_id = test.id
    assert people["outsider"].get(f"/quality/species-tests/{test_id}").status_code == 404
    sample_page = people["analyst"].get(f"/samples/{world.sample_ids[0]}").get_data(
        as_text=True)
    assert f'href="/quality/species-tests/{test_id}"' in sample_page
    assert f'href="{url}"' in sample_page


def test_a_reviewer_uploads_validation_and_proficiency_records(app, world, people):
    url = "/quality/records"
    record = {"kind": "proficiency", "method": "test_str4", "title": "CTS 26-1",
              "analyst_id": str(people["analyst"].user_id), "outcome": "passed",
              "performed_on": "2026-06-01"}
    assert people["analyst"].post(url, record).status_code == 403
    listing = people["analyst"].get(url)
    assert listing.status_code == 200 and "Save record" not in listing.get_data(as_text=True)
    page = people["reviewer"].get(url).get_data(as_text=True)
    assert "Save record" in page and _has_csrf_field(page)
    assert people["reviewer"].post(url, record, csrf=False).status_code == 400
    missing = people["reviewer"].post(url, {**record, "analyst_id": ""})
    assert missing.status_code == 422
    assert field_errors(missing.get_data(as_text=True), "analyst_id") == [
        "is required for a proficiency test"]
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    late = people["reviewer"].post(url, {**record, "performed_on": future})
    assert late.status_code == 422
    assert field_errors(late.get_data(as_text=True), "performed_on") == ["is in the future"]
    assert count(app, QualityRecord) == 0
    done = people["reviewer"].post(
        url, {**record, "kind": "validation", "analyst_id": "", "title": "VS-2025-3",
              "file": (io.BytesIO(b"%PDF-1.4 study"), "study.pdf")},
        content_type="multipart/form-data")
    assert done.status_code == 302
    assert people["reviewer"].post(url, record).status_code == 302
    with app.app_context():
        rows = db.session.scalars(sa.select(QualityRecord).order_by(QualityRecord.id)).all()
        assert [(r.kind, r.title, r.analyst_id, r.sha256) for r in rows] == [
            ("validation", "VS-2025-3", None, hashlib.sha256(b"%PDF-1.4 study").hexdigest()),
            ("proficiency", "CTS 26-1", people["analyst"].user_id, None)]
    assert "VS-2025-3" not in people["outsider"].get(url).get_data(as_text=True)


@pytest.mark.parametrize("path, model, extra", [
    ("/quality/positive-controls", PositiveControl, {}),
    ("/quality/elimination-profiles", EliminationProfile,
     {"kind": "reference_animal", "description": "handled by staff"}),
])
def test_an_analyst_records_a_genotype_to_check_against(app, world, people, path, model,
                                                        extra):
    data = {"name": "PC-9", "panel": "test_str4", "alleles": FULL_TEXT, **extra}
    assert people["investigator"].get(path).status_code == 403
    assert people["reviewer"].post(path, data).status_code == 403
    page = people["analyst"].get(path).get_data(as_text=True)
    assert _has_csrf_field(page)
    assert people["analyst"].post(path, data, csrf=False).status_code == 400
    bad = people["analyst"].post(path, {**data, "alleles": "FH67 120/124\nFH67 122/124"})
    assert bad.status_code == 422
    assert field_errors(bad.get_data(as_text=True), "alleles") == [
        "line 2: locus FH67 is given twice"]
    assert count(app, model) == 0
    assert people["analyst"].post(path, data).status_code == 302
    with app.app_context():
        (record,) = db.session.scalars(sa.select(model)).all()
        assert (record.name, record.panel, record.alleles) == ("PC-9", "test_str4", FULL)
    again = people["analyst"].post(path, data)
    assert again.status_code == 409, again.status_code
    assert count(app, model) == 1
    assert "PC-9" not in people["outsider"].get(path).get_data(as_text=True)
    assert "PC-9" in people["reviewer"].get(path).get_data(as_text=True)


def test_an_analyst_records_an_extraction_batch(app, world, people):
    with app.app_context():
        extract = Extract(barcode="A-S1-X1", sample_id=world.sample_ids[0])
        db.session.add(extract)
        db.session.commit()
        extract_id = extract.id
    url = "/quality/extraction-batches"
    data = {"reference": "EB-1", "kit": "DNeasy", "kit_lot": "K-7", "blank_name": "EB-1-B",
            "extracted_on": "2026-11-01", "extract_ids": str(extract_id)}
    assert people["reviewer"].get(url).status_code == 403
    assert people["investigator"].post(url, data).status_code == 403
    page = people["analyst"].get(url).get_data(as_text=True)
    assert _has_csrf_field(page) and "A-S1-X1" in page
    assert "A-S1-X1" not in people["outsider"].get(url).get_data(as_text=True)
    assert people["analyst"].post(url, data, csrf=False).status_code == 400
    empty = people["analyst"].post(url, {**data, "kit_lot": ""})
    assert empty.status_code == 422 and count(app, ExtractionBatch) == 0
    assert field_errors(empty.get_data(as_text=True), "kit_lot") == ["is required"]
    assert people["analyst"].post(url, data).status_code == 302
    with app.app_context():
        (batch,) = db.session.scalars(sa.select(ExtractionBatch)).all()
        assert (batch.reference, batch.kit, batch.kit_lot, batch.blank_name,
                [m.extract_id for m in batch.extracts]) == (
            "EB-1", "DNeasy", "K-7", "EB-1-B", [extract_id])


def test_the_sample_page_shows_the_replicate_consensus(app, world, people):
    with app.app_context():
        db.session.add(GenotypeProfile(
            sample_id=world.aliquot_id, panel="test_str4", alleles={"FH67": [120, 124],
                                                                    "FH71": [200, 204]},
            n_loci_typed=2, import_id=world.import_id, state="pending",
            analyst_id=world.analyst_id))
        db.session.commit()
    html = people["investigator"].get(f"/samples/{world.sample_ids[0]}").get_data(as_text=True)
    assert "Replicate consensus" in html
    assert re.search(r'<p class="consensus mono">FH67 120/124</p>', html)
    assert "FH71 left out: typed in one replicate only" in html
    # The investigator may not record species tests: no link.
    assert "/species-tests" not in html
