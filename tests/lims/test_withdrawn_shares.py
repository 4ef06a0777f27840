"""Need-to-know at the time of reading (issue 13, item 5): after agency B withdraws the share
of its case, agency A no longer reads B's barcodes, places and genotypes from results, result
pages or draft reports computed while the case was shared; A's issued report, which names
them, is withheld from A (never redacted) until B shares the case again.

The scenario is that of :mod:`tests.lims.test_match_requests`: SZ-A (agency A) holds the parent
of an animal whose tusk is in SZ-C (agency B's case).
"""

from __future__ import annotations

import pytest

from lims import jobs
from tests.lims.quality_support import confirm_hits
from tests.lims.test_match_requests import load_scenario, request_body
from tests.lims.test_reports import pdf_text
from tests.lims.web_support import make_browser

#: What agency A may see of SZ-C when B's case is not shared: the held form of the analysis.
HELD_SZ_C = {"kind": "seizure", "reference": "SZ-C", "agency": "Agency B", "visible": False,
             "in_subject": False, "case": None, "country": None, "place": None,
             "seized_on": None}


@pytest.fixture
def shared_then_withdrawn(app, agencies, login):
    """B shares its case with A; A runs SZ-A, issues a report and drafts its amendment; B
    withdraws the share. Returns what the test needs."""
    world = load_scenario(app, agencies)
    staff = {role: login(role) for role in ("investigator", "analyst", "reviewer")}
    owner_b = login("custodian", agency="B")
    share = f"/api/v1/cases/{world.case_ids['B']}/shares/{agencies['A']}"
    assert owner_b.put(share, json={"access": "read"}).status_code == 201
    created = staff["investigator"].post("/api/v1/match-requests", json=request_body(world))
    assert created.status_code == 201
    jobs.run_queued(app)
    request_id = created.json["id"]
    confirm_hits(app, request_id, staff["analyst"].user_id)
    result_url = f"/api/v1/match-requests/{request_id}/result"
    shared = staff["investigator"].get(result_url)
    draft = staff["analyst"].post(f"/api/v1/match-requests/{request_id}/reports",
                                  json={"kind": "evidential"}).json
    issued = staff["reviewer"].post(f"/api/v1/reports/{draft['id']}/sign").json
    issued_html = staff["investigator"].get(f"/api/v1/reports/{issued['id']}/html")
    amendment = staff["analyst"].post(f"/api/v1/reports/{issued['id']}/amendments",
                                      json={"reason": "Remarks added."}).json
    assert owner_b.delete(share).status_code == 204
    return {"world": world, "staff": staff, "owner_b": owner_b, "share": share,
            "result_url": result_url, "shared": shared, "request_id": request_id,
            "issued": issued, "issued_html": issued_html, "amendment": amendment}


def sz_c_barcodes(world) -> list[str]:
    return [barcode for barcode in world.sample_ids if barcode.startswith("SZ-C")]


def test_a_withdrawn_share_is_withdrawn_from_stored_results(shared_then_withdrawn):
    case = shared_then_withdrawn
    world, investigator = case["world"], case["staff"]["investigator"]
    seizure_key = f"seizure:{world.seizure_ids['SZ-C']}"
    # While shared, the result showed SZ-C's tusk, genotypes and place.
    shared = case["shared"].json
    assert shared["nodes"][seizure_key]["case"] == "B-CASE"
    [pair] = [p for p in shared["pairs"] if p["relationship"] == "parent_offspring"]
    assert pair["visible"] and pair["sample2"] == "SZ-C-T001" and pair["loci"]
    # Now: the held form, as if the case had never been shared.
    response = investigator.get(case["result_url"])
    assert response.status_code == 200
    result = response.json
    assert all(barcode not in response.text for barcode in sz_c_barcodes(world))
    assert seizure_key not in response.text and "B-CASE" not in response.text
    [(key, node)] = [(k, n) for k, n in result["nodes"].items() if n["reference"] == "SZ-C"]
    assert key.startswith("held:") and node == HELD_SZ_C
    [pair] = [p for p in result["pairs"] if p["relationship"] == "parent_offspring"]
    assert pair == {"visible": False, "sample1": pair["sample1"], "node1": pair["node1"],
                    "node2": key, "relationship": "parent_offspring"}
    [link] = [link for link in result["links"] if key in (link["node1"], link["node2"])]
    assert link["max_log10_lr"] is None and not link["visible"]
    assert all(seizure_key not in component for component in result["networks"])
    assert any("no longer shared with you" in caveat for caveat in result["caveats"])
    # Agency A's own records are untouched.
    assert result["nodes"][f"seizure:{world.seizure_ids['SZ-B']}"]["case"] == "A-CASE"


def test_pages_and_draft_reports_follow_the_withdrawn_share(shared_then_withdrawn, app,
                                                             agencies):
    case = shared_then_withdrawn
    world, investigator = case["world"], case["staff"]["investigator"]
    browser = make_browser(app, agencies, "investigator", username="page-reader")
    page = browser.get(f"/match-requests/{case['request_id']}").get_data(as_text=True)
    draft_id = case["amendment"]["id"]
    html = investigator.get(f"/api/v1/reports/{draft_id}/html").text
    pdf = pdf_text(investigator.get(f"/api/v1/reports/{draft_id}/pdf").data)
    for text in (page, html, pdf):
        assert "SZ-C" in text
        assert all(barcode not in text for barcode in sz_c_barcodes(world))
        assert "B-CASE" not in text
    # The draft itself was drafted while shared and still holds what its analyst saw.
    assert case["amendment"]["status"] == "draft"


def test_an_issued_report_naming_withdrawn_records_is_withheld_not_redacted(
        shared_then_withdrawn, app, agencies, caplog):
    case = shared_then_withdrawn
    investigator, issued = case["staff"]["investigator"], case["issued"]
    assert case["issued_html"].status_code == 200
    assert "SZ-C-T001" in case["issued_html"].text
    url = f"/api/v1/reports/{issued['id']}"
    for kind in ("html", "pdf"):
        refused = investigator.get(f"{url}/{kind}")
        assert refused.status_code == 403
        assert "no longer shared with you" in refused.json["message"]
        assert "Agency B" in refused.json["message"]
        assert b"SZ-C-T001" not in refused.data
    assert any("withheld from user" in r.getMessage() for r in caplog.records)
    # Its metadata, signatures and hashes stay readable.
    assert investigator.get(url).json == issued
    browser = make_browser(app, agencies, "investigator", username="report-reader")
    page = browser.get(f"/reports/{issued['id']}").get_data(as_text=True)
    assert "no longer shared with you" in page and "Download the PDF" not in page
    # Shared again, the very same document is served.
    assert case["owner_b"].put(case["share"], json={"access": "read"}).status_code == 201
    again = investigator.get(f"{url}/html")
    assert again.status_code == 200 and again.data == case["issued_html"].data
