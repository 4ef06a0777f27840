"""The investigator's journey to a report, in headless Chromium on the demo LIMS: request the
analyses of a seizure, watch the background job finish, have the report drafted by an analyst
and issued by a reviewer, and open its PDF."""

from __future__ import annotations

import re

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

JOB_TIMEOUT_MS = 120_000


def test_request_a_report_on_a_seizure_and_open_its_pdf(page, log_in):
    pypdf = pytest.importorskip("pypdf")
    log_in("investigator")
    page.get_by_role("link", name="Cases").click()
    page.get_by_role("link", name="DEMO-2024-IVORY").click()
    page.get_by_role("link", name="KE-MBA-2401").click()
    page.get_by_role("link", name="Request analyses").click()
    # Both elephant sets are preselected, forest first; the seizure's tusks are assigned to
    # savanna elephants, whose frequencies then score the pairs.
    expect(page.get_by_label(re.compile(r"^forest_elephant_simulated"))).to_be_checked()
    expect(page.get_by_label(re.compile(r"^savanna_elephant_simulated"))).to_be_checked()
    page.get_by_role("button", name="Queue the request").click()
    # The request's page refreshes itself until the background job is done. The demo planted
    # one tusk pair and two parent-offspring pairs between this seizure and KE-NBO-2403.
    expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    link = page.locator("tr", has_text="KE-NBO-2403")
    expect(link).to_contain_text("same animal (1)")
    expect(link).to_contain_text("parent–offspring (2)")
    expect(page.locator("tr", has_text="KE-MBA-2401")).to_have_count(1)
    expect(page.get_by_text(
        "Allele frequencies and θ of reference set savanna_elephant_simulated")).to_be_visible()
    expect(page.get_by_text("Most likely origin of KE-MBA-2401")).to_be_visible()
    request_url = page.url

    page.get_by_role("button", name="Log out").click()
    log_in("analyst")
    page.goto(request_url)
    page.select_option("#kind", "evidential")
    page.get_by_role("button", name="Draft and sign as analyst").click()
    expect(page.locator(".flash.success")).to_be_visible()
    report_url = page.url

    page.get_by_role("button", name="Log out").click()
    log_in("reviewer")
    page.goto(report_url)
    page.get_by_role("button", name="Sign as reviewer and issue").click()
    expect(page.locator(".flash.success")).to_contain_text("signed and issued")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the PDF").click()
    pdf_path = download_info.value.path()
    with open(pdf_path, "rb") as handle:
        assert handle.read(5) == b"%PDF-"
    text = " ".join(page_.extract_text() for page_ in pypdf.PdfReader(pdf_path).pages)
    text = " ".join(text.split())
    for expected in ("KE-MBA-2401", "KE-NBO-2403", "Ana Analyst", "Rui Reviewer"):
        assert expected in text, expected
