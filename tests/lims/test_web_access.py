"""Pages enforce roles and need-to-know exactly like the API, and every form needs its CSRF
token."""

from __future__ import annotations

import io
import re

import pytest
from flask import url_for

from lims.models import Case, CustodyEvent, GenotypeImport, Item, Sample, Seizure, StorageLocation
from lims.permissions import ROLES, roles_with
from lims.web.common import NAV_LINKS
from tests.lims.web_support import World, count, make_browser, make_world, share_case

# (url with {placeholders} filled from a World, permissions of which one is needed)
READ_PAGES = [
    ("/cases/{case_id}", ("record.read",)),
    ("/seizures/{seizure_id}", ("record.read",)),
    ("/items/{item_id}", ("record.read",)),
    ("/source-animals/{animal_id}", ("record.read",)),
    ("/samples/{sample_id}", ("record.read",)),
    ("/samples/{aliquot_id}", ("record.read",)),
    ("/samples/{sample_id}/label/code128.svg", ("record.read",)),
    ("/samples/{sample_id}/label/qr.svg", ("record.read",)),
    ("/labels?sample_id={sample_id}", ("record.read",)),
    ("/labels?seizure_id={seizure_id}", ("record.read",)),
    ("/profiles/{profile_id}", ("record.read",)),
]
WRITE_PAGES = [
    ("/cases/{case_id}/seizures/new", ("evidence.write",)),
    ("/seizures/{seizure_id}/items/new", ("evidence.write",)),
    ("/items/{item_id}/samples/new", ("evidence.write",)),
    ("/cases/{case_id}/source-animals/new", ("evidence.write",)),
    ("/source-animals/{animal_id}/samples/new", ("evidence.write",)),
    ("/samples/{sample_id}/aliquots/new", ("evidence.write",)),
]
AGENCY_PAGES = [
    ("/genotypes/imports/{import_id}", ("profile.write", "profile.review")),
]
GENERAL_PAGES = [
    ("/", ()),
    ("/cases", ("record.read",)),
    ("/cases/new", ("case.write",)),
    ("/storage", ("record.read",)),
    ("/custody/scan", ("custody.record",)),
    ("/genotypes/import", ("profile.write",)),
    ("/genotypes/review", ("profile.review",)),
]
ALL_PAGES = READ_PAGES + WRITE_PAGES + AGENCY_PAGES + GENERAL_PAGES


def _url(template: str, world: World) -> str:
    return template.format(
        case_id=world.case_id,
        seizure_id=world.seizure_id,
        item_id=world.item_ids[0],
        animal_id=world.animal_id,
        sample_id=world.sample_ids[0],
        aliquot_id=world.aliquot_id,
        profile_id=world.profile_id,
        import_id=world.import_id,
    )


def _allowed(role: str, permissions: tuple[str, ...]) -> bool:
    return not permissions or any(role in roles_with(permission) for permission in permissions)


@pytest.fixture
def world(app, agencies) -> World:
    return make_world(app, agencies["A"], "A")


@pytest.mark.parametrize("role", ROLES)
def test_every_page_enforces_the_role_permissions(app, agencies, world, role):
    browser = make_browser(app, agencies, role)
    for template, permissions in ALL_PAGES:
        response = browser.get(_url(template, world))
        expected = 200 if _allowed(role, permissions) else 403
        assert response.status_code == expected, (role, template, response.status_code)
        if expected == 403:
            assert "needs the permission" in response.get_data(as_text=True)


def test_pages_send_anonymous_visitors_to_the_login_form(client, world):
    for template, _ in ALL_PAGES:
        response = client.get(_url(template, world))
        assert response.status_code == 302, template
        assert response.headers["Location"].startswith("/login?next=")


EVERY_ROLE = ("custodian", "analyst", "reviewer", "investigator", "admin")


def test_another_agencys_records_are_not_found(app, agencies, world):
    outsider = make_browser(app, agencies, *EVERY_ROLE, agency="B")
    for template, _ in READ_PAGES + WRITE_PAGES + AGENCY_PAGES:
        response = outsider.get(_url(template, world))
        assert response.status_code == 404, template
    listed = {
        "/cases": "A-CASE",
        "/storage": "A freezer",
        "/genotypes/review": "A-S1",
        "/genotypes/import": "run.csv",
        "/": "A-CASE",
    }
    for url, text in listed.items():
        response = outsider.get(url)
        assert response.status_code == 200
        assert text not in response.get_data(as_text=True), url


def test_a_read_share_shows_records_but_refuses_changes(app, agencies, world):
    share_case(app, world.case_id, agencies["B"], "read")
    reader = make_browser(app, agencies, *EVERY_ROLE, agency="B")
    for template, _ in READ_PAGES:
        assert reader.get(_url(template, world)).status_code == 200, template
    for template, _ in WRITE_PAGES:
        response = reader.get(_url(template, world))
        assert response.status_code == 403, template
        assert "may read this" in response.get_data(as_text=True)
    # Imports belong to the importing agency, whatever is shared.
    assert reader.get(_url("/genotypes/imports/{import_id}", world)).status_code == 404
    assert "A-CASE" in reader.get("/cases").get_data(as_text=True)
    response = reader.post(_url("/profiles/{profile_id}/review", world))
    assert response.status_code == 403


def test_a_contribute_share_lets_the_other_agency_add_evidence(app, agencies, world):
    share_case(app, world.case_id, agencies["B"], "contribute")
    contributor = make_browser(app, agencies, "custodian", agency="B")
    for template, _ in WRITE_PAGES:
        assert contributor.get(_url(template, world)).status_code == 200, template
    response = contributor.post(
        _url("/seizures/{seizure_id}/items/new", world), {"label": "T9", "kind": "tusk"}
    )
    assert response.status_code == 302
    assert count(app, Item) == 3


def _valid_posts(world: World) -> list[tuple[str, dict, type, int]]:
    """(url, form data, model counted, how many rows the post adds)."""
    return [
        ("/cases/new", {"reference": "C-NEW", "title": "New", "kind": "investigation"}, Case, 1),
        (f"/cases/{world.case_id}/seizures/new", {"reference": "SZ-NEW"}, Seizure, 1),
        (f"/seizures/{world.seizure_id}/items/new", {"label": "T3", "kind": "horn"}, Item, 1),
        (f"/items/{world.item_ids[1]}/samples/new",
         {"barcode": "NEW-1", "sample_type": "powder"}, Sample, 1),
        (f"/source-animals/{world.animal_id}/samples/new",
         {"barcode": "NEW-2", "sample_type": "tissue"}, Sample, 1),
        (f"/samples/{world.sample_ids[1]}/aliquots/new",
         {"barcode": "NEW-3", "sample_type": "powder"}, Sample, 1),
        ("/storage", {"name": "Shelf 9", "kind": "shelf"}, StorageLocation, 1),
        ("/custody/scan",
         {"barcode": world.barcodes[1], "event_type": "open", "signature_meaning": "performed"},
         CustodyEvent, 1),
    ]


def test_every_form_needs_its_csrf_token(app, agencies, world):
    browser = make_browser(app, agencies, *EVERY_ROLE)
    for url, data, model, added in _valid_posts(world):
        before = count(app, model)
        response = browser.post(url, data, csrf=False)
        assert response.status_code == 400, url
        assert "CSRF" in response.get_data(as_text=True)
        assert count(app, model) == before, url
        # The same data with the token goes through: the token was all that was missing.
        response = browser.post(url, data)
        assert response.status_code == 302, (url, response.get_data(as_text=True)[:2000])
        assert count(app, model) == before + added, url


def test_workflow_logout_and_import_forms_need_the_csrf_token(app, agencies, world):
    browser = make_browser(app, agencies, "reviewer", "analyst")
    for action in ("review", "release", "reject"):
        response = browser.post(f"/profiles/{world.profile_id}/{action}", {"p1-reason": "x"},
                                csrf=False)
        assert response.status_code == 400, action
    upload = {"file": (io.BytesIO(b"sample,locus,allele1,allele2\n"), "g.csv"),
              "panel": "test_str4"}
    response = browser.post("/genotypes/import", upload, csrf=False,
                            content_type="multipart/form-data")
    assert response.status_code == 400
    assert count(app, GenotypeImport) == 1
    assert browser.post("/logout", csrf=False).status_code == 400
    assert browser.get("/cases").status_code == 200


def test_forms_refuse_roles_without_the_permission(app, agencies, world):
    researcher = make_browser(app, agencies, "researcher", "reviewer")
    for url, data, model, _ in _valid_posts(world):
        before = count(app, model)
        response = researcher.post(url, data)
        assert response.status_code == 403, url
        assert count(app, model) == before


@pytest.mark.parametrize("role", ROLES)
def test_the_navigation_shows_the_pages_the_role_may_open(app, agencies, role):
    browser = make_browser(app, agencies, role)
    html = browser.get("/").get_data(as_text=True)
    navigation = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    shown = re.findall(r'<a href="[^"]*"[^>]*>(.*?)</a>', navigation)
    expected = [link.label for link in NAV_LINKS if _allowed(role, link.permissions)]
    assert shown == expected
    with app.test_request_context():
        for link in NAV_LINKS:
            assert browser.get(url_for(link.endpoint)).status_code in (200, 403), link
