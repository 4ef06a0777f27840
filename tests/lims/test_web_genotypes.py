"""The genotype import page (all or nothing, every problem by row) and the review queue (review,
release, reject with a reason; never by the profile's own analyst)."""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa

from lims.extensions import db
from lims.models import GenotypeImport, GenotypeProfile
from tests.lims.web_support import count, field_errors, make_browser, make_world


@pytest.fixture
def world(app, agencies):
    return make_world(app, agencies["A"], "A")


def _upload(browser, text: str, filename: str = "run.csv", **fields):
    # What a browser sends: every field, the format select at "detect" unless chosen.
    data = {"file": (io.BytesIO(text.encode()), filename), "panel": "test_str4",
            "file_format": "", "run": "", **fields}
    return browser.post("/genotypes/import", data, content_type="multipart/form-data")


def _problem_rows(html: str) -> list[list[str]]:
    table = re.search(r'<table class="stack problems">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert table, "no table of problems"
    rows = re.findall(r'<tr class="problem">(.*?)</tr>', table.group(1), re.S)
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row,
                                                                       re.S)]
        for row in rows
    ]


def _profile(app, profile_id: int) -> GenotypeProfile:
    with app.app_context():
        profile = db.session.get(GenotypeProfile, profile_id)
        db.session.expunge(profile)
        return profile


def test_a_refused_import_lists_every_problem_by_row_and_imports_nothing(app, agencies, world):
    analyst = make_browser(app, agencies, "analyst")
    text = (
        "sample,locus,allele1,allele2\n"
        "A-S2,FH67,120,124\n"
        "A-S2,FH71,200,204\n"
        "NO-SUCH,FH67,120,120\n"
        "A-S1,FH67,120,124\n"
    )
    response = _upload(analyst, text)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Nothing was imported: 2 problems" in html
    rows = _problem_rows(html)
    assert [row[:3] for row in rows] == [["4", "NO-SUCH", "sample"], ["5", "A-S1", "sample"]]
    assert rows[0][3].startswith("unknown sample barcode")
    assert rows[1][3].startswith(f"duplicate profile: the sample already has profile "
                                 f"{world.profile_id}")
    assert count(app, GenotypeImport) == 1
    assert count(app, GenotypeProfile) == 1


def test_a_malformed_file_names_its_line_and_field(app, agencies, world):
    analyst = make_browser(app, agencies, "analyst")
    response = _upload(analyst, "sample,locus,allele1,allele2\nA-S2,FH67,120,1x4\n",
                       file_format="long")
    assert response.status_code == 422
    rows = _problem_rows(response.get_data(as_text=True))
    assert len(rows) == 1 and rows[0][0] == "2" and "1x4" in rows[0][3]
    response = _upload(analyst, "sample,locus,allele1,allele2\nA-S2,FH67,120,124\n",
                       panel="no_such_panel")
    assert field_errors(response.get_data(as_text=True), "panel") == ["Not a valid choice."]
    assert count(app, GenotypeImport) == 1


def test_a_good_file_is_imported_whole_and_waits_for_review(app, agencies, world):
    analyst = make_browser(app, agencies, "analyst")
    text = ("sample,locus,allele1,allele2\nA-S2,FH67,120,124\nA-S2,LA5,84,88\n"
            "A-S1-A1,FH71,200,200\n")
    response = _upload(analyst, text, run="PLATE-7")
    assert response.status_code == 302
    detail = analyst.get(response.headers["Location"]).get_data(as_text=True)
    assert "Imported 2 profiles from run.csv" in detail
    assert "PLATE-7" in detail
    with app.app_context():
        profiles = db.session.scalars(
            sa.select(GenotypeProfile).where(GenotypeProfile.run == "PLATE-7")
            .order_by(GenotypeProfile.id)
        ).all()
        assert [(p.sample.barcode, p.state, p.analyst_id, p.alleles) for p in profiles] == [
            ("A-S2", "pending", analyst.user_id, {"FH67": [120, 124], "LA5": [84, 88]}),
            ("A-S1-A1", "pending", analyst.user_id, {"FH71": [200, 200]}),
        ]
    assert response.status_code == 302


def test_nobody_reviews_their_own_profile(app, agencies, world):
    both = make_browser(app, agencies, "analyst", "reviewer")
    _upload(both, "sample,locus,allele1,allele2\nA-S2,FH67,120,124\n")
    with app.app_context():
        own = db.session.scalar(sa.select(GenotypeProfile.id).where(
            GenotypeProfile.analyst_id == both.user_id))
    queue = both.get("/genotypes/review").get_data(as_text=True)
    row = re.search(rf'<tr id="profile-{own}".*?</tr>', queue, re.S).group(0)
    assert "Your own profile" in row and "Mark reviewed" not in row
    other_row = re.search(rf'<tr id="profile-{world.profile_id}".*?</tr>', queue, re.S).group(0)
    assert "Mark reviewed" in other_row
    response = both.post(f"/profiles/{own}/review")
    assert response.status_code == 403
    assert "the analyst of a profile cannot review it" in response.get_data(as_text=True)
    response = both.post(f"/profiles/{own}/reject", {f"p{own}-reason": "mine"})
    assert response.status_code == 403
    assert _profile(app, own).state == "pending"


def test_review_release_and_reject_by_another_reviewer(app, agencies, world):
    reviewer = make_browser(app, agencies, "reviewer")
    profile_id = world.profile_id
    response = reviewer.post(f"/profiles/{profile_id}/release")
    assert response.status_code == 409
    row = re.search(rf'<tr id="profile-{profile_id}".*?</tr>',
                    response.get_data(as_text=True), re.S).group(0)
    assert "cannot release a pending profile (only reviewed)" in row
    response = reviewer.post(f"/profiles/{profile_id}/review")
    assert response.status_code == 302
    profile = _profile(app, profile_id)
    assert (profile.state, profile.reviewer_id) == ("reviewed", reviewer.user_id)
    queue = reviewer.get("/genotypes/review").get_data(as_text=True)
    assert f"Profile {profile_id} of sample A-S1 reviewed." in queue
    reviewer.post(f"/profiles/{profile_id}/release")
    profile = _profile(app, profile_id)
    assert (profile.state, profile.released_by_id) == ("released", reviewer.user_id)
    assert f'id="profile-{profile_id}"' not in reviewer.get("/genotypes/review").get_data(
        as_text=True)
    page = reviewer.get(f"/profiles/{profile_id}").get_data(as_text=True)
    assert re.search(r"<td>FH67</td><td class=\"num\">120</td><td class=\"num\">124</td>", page)
    assert "Reviewed by" in page and "Released by" in page


def test_a_rejection_needs_a_reason_shown_beside_the_field(app, agencies, world):
    reviewer = make_browser(app, agencies, "reviewer")
    profile_id = world.profile_id
    response = reviewer.post(f"/profiles/{profile_id}/reject", {f"p{profile_id}-reason": "  "})
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), f"p{profile_id}-reason") == [
        "a rejection needs a reason"
    ]
    assert _profile(app, profile_id).state == "pending"
    reviewer.post(f"/profiles/{profile_id}/reject",
                  {f"p{profile_id}-reason": "peaks below threshold"})
    profile = _profile(app, profile_id)
    assert (profile.state, profile.rejection_reason) == ("rejected", "peaks below threshold")


def test_another_agencys_reviewer_cannot_touch_the_profile(app, agencies, world):
    outsider = make_browser(app, agencies, "reviewer", agency="B")
    assert "A-S1" not in outsider.get("/genotypes/review").get_data(as_text=True)
    for action in ("review", "release"):
        assert outsider.post(f"/profiles/{world.profile_id}/{action}").status_code == 404
    assert _profile(app, world.profile_id).state == "pending"
