"""Intelligence pages: coding a seizure's trade chain through its form, the overview with its
figures, tables and downloads, the network neighbourhood, and the vocabulary page."""

from __future__ import annotations

import datetime as dt

import pytest

from lims.models import Seizure, SeizureRecord, VocabularyTerm
from tests.lims.factories import make_case_tree
from tests.lims.web_support import field_errors, make_browser

FORM = {
    "validation_status": "validated",
    "discovery_country": "KE",
    "origins": "TZ [0.6]; MZ",
    "export_country": "KE",
    "transits": "AE [missed]; MY",
    "destination_country": "VN",
    "commodity": "ivory",
    "commodity_form": "raw",
    "species": "Loxodonta africana | 120.5 | 14\nLoxodonta cyclotis |  | 3",
    "detection_method": "x_ray",
    "offender_nationalities": "KE; CN",
    "estimated_value": "1000",
    "currency": "USD",
}


@pytest.fixture
def seizures(session, agencies):
    trees = {"a": make_case_tree(session, agencies["A"], "KE"),
             "b": make_case_tree(session, agencies["B"], "UG")}
    session.get(Seizure, trees["a"].seizure_id).seized_on = dt.date(2024, 3, 1)
    session.commit()
    return trees


def test_an_analyst_codes_a_seizure_through_its_form(app, agencies, seizures, session):
    analyst = make_browser(app, agencies, "analyst")
    url = f"/seizures/{seizures['a'].seizure_id}/record"
    page = analyst.get(url).get_data(as_text=True)
    assert "Not coded yet" in page and "Mombasa" in page

    answer = analyst.post(url, FORM)
    assert answer.status_code == 302
    session.expire_all()
    record = session.get(SeizureRecord, seizures["a"].seizure_id)
    assert record.origins == [{"country": "TZ", "share": 0.6}, {"country": "MZ", "share": None}]
    assert record.transits == [{"country": "AE", "seizure_opportunity": True},
                               {"country": "MY", "seizure_opportunity": False}]
    assert record.species == [
        {"name": "Loxodonta africana", "quantity_kg": 120.5, "pieces": 14},
        {"name": "Loxodonta cyclotis", "quantity_kg": None, "pieces": 3}]
    page = analyst.get(url).get_data(as_text=True)
    # The form shows the record as it was saved; the free text is still there.
    assert 'value="TZ [0.6]; MZ"' in page and "Mombasa" in page
    assert "Kenya" in page


def test_bad_codes_are_shown_beside_their_fields_and_nothing_is_saved(
    app, agencies, seizures, session
):
    analyst = make_browser(app, agencies, "analyst")
    url = f"/seizures/{seizures['a'].seizure_id}/record"
    answer = analyst.post(url, {**FORM, "discovery_country": "QQ", "origins": "TZ [lots]",
                                "species": "Loxodonta africana | heavy | 2",
                                "estimated_value": "a lot"})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert field_errors(page, "discovery_country") == [
        "discovery_country: 'QQ' is not a code of the vocabulary countries"]
    assert "is not a number" in field_errors(page, "origins")[0]
    assert field_errors(page, "species") == ["species[0].quantity_kg: must be a number"]
    assert field_errors(page, "estimated_value") == ["must be a number"]
    assert session.get(SeizureRecord, seizures["a"].seizure_id) is None


def test_the_form_needs_csrf_and_write_access(app, agencies, seizures, session):
    analyst = make_browser(app, agencies, "analyst")
    url = f"/seizures/{seizures['a'].seizure_id}/record"
    assert analyst.post(url, FORM, csrf=False).status_code == 400
    investigator = make_browser(app, agencies, "investigator")
    page = investigator.get(url).get_data(as_text=True)
    assert "Save the record" not in page
    assert investigator.post(url, FORM).status_code == 403
    assert analyst.get(f"/seizures/{seizures['b'].seizure_id}/record").status_code == 404
    assert session.get(SeizureRecord, seizures["a"].seizure_id) is None


def test_the_overview_states_its_data_and_links_the_downloads(app, agencies, seizures):
    analyst = make_browser(app, agencies, "analyst", "investigator")
    analyst.post(f"/seizures/{seizures['a'].seizure_id}/record", FORM)
    page = analyst.get("/intelligence?from_year=2024&to_year=2024").get_data(as_text=True)
    assert "1 seizures you may see, 2024–2024." in page
    assert "not trends in trafficking" in page
    assert page.count('src="data:image/svg+xml;base64,') == 3
    assert "/api/v1/intelligence/network.graphml?from=2024-01-01&amp;to=2024-12-31" in page
    assert "/api/v1/intelligence/aitr.xlsx?year=2024" in page
    download = analyst.get("/api/v1/intelligence/aitr.xlsx?year=2024")
    assert download.status_code == 200 and download.data[:2] == b"PK"
    assert analyst.get("/intelligence?from_year=2025&to_year=2024").status_code == 400
    assert analyst.get("/intelligence?from_year=twenty").status_code == 400
    researcher = make_browser(app, agencies, "researcher")
    assert researcher.get("/intelligence").status_code == 403


def test_an_admin_changes_a_vocabulary_on_its_page(app, agencies, session):
    admin = make_browser(app, agencies, "admin")
    assert admin.get("/intelligence/vocabularies").status_code == 200
    answer = admin.post("/intelligence/vocabularies",
                        {"vocabulary": "disposals", "code": "auctioned", "label": "Auctioned"})
    assert answer.status_code == 302
    assert session.get(VocabularyTerm, ("disposals", "auctioned")).label == "Auctioned"
    refused = admin.post("/intelligence/vocabularies",
                         {"vocabulary": "countries", "code": "Kenya", "label": "Kenya"})
    assert refused.status_code == 422
    assert "two capital letters" in field_errors(refused.get_data(as_text=True), "code")[0]
    analyst = make_browser(app, agencies, "analyst")
    assert analyst.get("/intelligence/vocabularies").status_code == 403


def test_the_seizure_page_shows_its_network_neighbourhood(app, agencies, seizures, session,
                                                          login):
    from lims.models import CaseShare
    from tests.lims.test_intelligence import _done_request, _link

    other = make_case_tree(session, agencies["A"], "KE9")
    analyst = login("analyst")
    a, b, c = seizures["a"].seizure_id, seizures["b"].seizure_id, other.seizure_id
    _done_request(session, seizures["a"].case_id, analyst.user_id,
                  [_link(a, c, {"same animal": 1, "half siblings": 2}, 9.5),
                   _link(a, b, {"full siblings": 1}, 3.0)],
                  dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    investigator = make_browser(app, agencies, "investigator")
    page = investigator.get(f"/seizures/{a}/record").get_data(as_text=True)
    table = page.split('<table class="stack neighbourhood">')[1].split("</table>")[0]
    assert "KE9-SZ" in table and "same animal 1, half sibling 2" in table and "9.5" in table
    assert "UG-SZ" not in table  # agency B's, not shared
    session.add(CaseShare(case_id=seizures["b"].case_id, agency_id=agencies["A"]))
    session.commit()
    page = investigator.get(f"/seizures/{a}/record").get_data(as_text=True)
    assert "UG-SZ" in page.split('<table class="stack neighbourhood">')[1].split("</table>")[0]
