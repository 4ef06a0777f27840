"""The main journeys through the lab pages, in headless Chromium on the demo LIMS: logging in,
registering a seizure with samples and printing their labels, a custody hand-over by scanning,
importing genotypes and reviewing them."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from lims.extensions import db
from lims.models import GenotypeProfile, Sample

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect


def test_log_in_look_around_and_log_out(page, log_in):
    log_in("investigator", "not the password")
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    log_in("investigator")
    expect(page.locator("h1")).to_have_text("Welcome, Ines Investigator")
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="Cases")).to_be_visible()
    expect(navigation.get_by_role("link", name="Custody")).to_have_count(0)
    # Laptop, tablet and phone widths: nothing runs off the side of the page.
    for width in (1100, 768, 400):
        page.set_viewport_size({"width": width, "height": 900})
        for url in ("/cases", "/seizures/1", "/samples/1"):
            page.goto(url)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (width, url, overflow)
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("h1")).to_have_text("Log in")


def test_register_a_seizure_with_samples_and_print_their_labels(page, log_in):
    zxingcpp = pytest.importorskip("zxingcpp")
    image_module = pytest.importorskip("PIL.Image")
    log_in("custodian")
    page.get_by_role("link", name="Cases").click()
    page.get_by_role("link", name="DEMO-2024-IVORY").click()
    page.get_by_role("link", name="Register a seizure").click()
    page.fill("#reference", "KE-MSA-2410")
    page.fill("#seized_on", "2024-10-05")
    page.fill("#place", "Moi International Airport")
    page.fill("#country", "Kenya")
    page.fill("#latitude", "95")
    page.fill("#longitude", "39.59")
    page.select_option("#seizing_agency_id", label="Demo Customs Service")
    page.fill("#declared_pieces", "2")
    page.get_by_role("button", name="Register the seizure").click()
    expect(page.locator("#latitude-errors")).to_have_text("must be at most 90")
    expect(page.locator("#longitude")).to_have_value("39.59")
    page.fill("#latitude", "-4.03")
    page.get_by_role("button", name="Register the seizure").click()
    expect(page.locator("h1")).to_have_text("Seizure KE-MSA-2410")

    page.get_by_role("link", name="Register an item").click()
    page.fill("#label", "T001")
    page.select_option("#kind", "tusk")
    page.fill("#length_cm", "121.5")
    page.get_by_role("button", name="Register the item").click()
    expect(page.locator("h1")).to_have_text("Tusk T001")
    page.get_by_role("link", name="KE-MSA-2410").click()
    page.get_by_role("link", name="Register an item").click()
    page.fill("#label", "T002")
    page.select_option("#paired_item_id", label="T001")
    page.get_by_role("button", name="Register the item").click()
    expect(page.get_by_text("Paired with")).to_be_visible()

    page.get_by_role("link", name="T001").click()
    page.get_by_role("link", name="Take a sample").click()
    expect(page.locator("#barcode")).to_have_value("KE-MSA-2410-T001-S1")
    page.select_option("#storage_location_id",
                       label="Main laboratory / DNA unit / Freezer F1 / Rack A / Box A1")
    page.get_by_role("button", name="Register the sample").click()
    expect(page.locator("h1")).to_have_text("Sample KE-MSA-2410-T001-S1")
    expect(page.locator("ol.lineage")).to_contain_text("seizure KE-MSA-2410")
    expect(page.locator("ol.lineage")).to_contain_text("tusk T001")
    expect(page.get_by_text("Main laboratory / DNA unit / Freezer F1 / Rack A / Box A1")
           ).to_be_visible()

    page.get_by_role("link", name="Print label").click()
    label = page.locator(".label")
    expect(label).to_have_count(1)
    expect(label.locator("img.qr")).to_have_js_property("complete", True)
    expect(label.locator("img.code128")).to_have_js_property("complete", True)
    picture = image_module.open(io.BytesIO(label.screenshot()))
    decoded = {(found.format, found.text) for found in zxingcpp.read_barcodes(picture)}
    assert decoded == {(zxingcpp.BarcodeFormat.QRCode, "KE-MSA-2410-T001-S1"),
                       (zxingcpp.BarcodeFormat.Code128, "KE-MSA-2410-T001-S1")}


def test_a_hand_over_recorded_by_scanning_barcodes(page, log_in):
    log_in("custodian")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Custody").click()
    expect(page.locator("#barcode")).to_be_focused()
    page.select_option("#event_type", "transfer")
    page.select_option("#signature_meaning", "released")
    page.fill("#from_holder", "Cleo Custodian")
    page.fill("#to_holder", "Courier Kim, Demo Eastern Forensic Laboratory")
    page.fill("#place", "Evidence room")
    # The scanner types into the barcode field and presses Enter; one click first to put the
    # cursor back there after filling in the hand-over.
    page.click("#barcode")
    for barcode in ("TZ-DAR-2402-T001-S1", "TZ-DAR-2402-T002-S1"):
        page.keyboard.type(barcode)
        page.keyboard.press("Enter")
        expect(page.locator(".flash.success")).to_contain_text(f"Recorded transfer of sample "
                                                               f"{barcode}")
        expect(page.locator("#barcode")).to_be_focused()
        expect(page.locator("#barcode")).to_have_value("")
        expect(page.locator("#to_holder")).to_have_value(
            "Courier Kim, Demo Eastern Forensic Laboratory")
    page.keyboard.type("NO-SUCH-BARCODE")
    page.keyboard.press("Enter")
    expect(page.locator("#barcode-errors")).to_have_text(
        "'NO-SUCH-BARCODE' names no sample or extract you can see")

    page.get_by_role("link", name="TZ-DAR-2402-T002-S1").first.click()
    last = page.locator("ol.timeline > li").last
    expect(last).to_contain_text("Transfer · this sample")
    expect(last).to_contain_text("Cleo Custodian → Courier Kim, Demo Eastern Forensic Laboratory")
    expect(last).to_contain_text("recorded by Cleo Custodian, who released it")


def _replicate_file(live_server, parent_barcode: str, aliquot_barcode: str) -> str:
    """A long CSV typing the aliquot like its parent, as a replicate typing would."""
    with live_server.app.app_context():
        alleles = db.session.scalar(
            sa.select(GenotypeProfile.alleles).join(Sample).where(Sample.barcode == parent_barcode)
        )
    rows = [f"{aliquot_barcode},{locus},{a},{b}" for locus, (a, b) in alleles.items()]
    return "sample,locus,allele1,allele2\n" + "\n".join(rows) + "\n"


def test_import_genotypes_then_review_and_release_them(page, log_in, live_server, tmp_path):
    log_in("analyst")
    page.goto("/cases")
    page.get_by_role("link", name="DEMO-2024-IVORY").click()
    page.get_by_role("link", name="KE-NBO-2403").click()
    page.get_by_role("link", name="KE-NBO-2403-T004-S1").click()
    page.get_by_role("link", name="Take an aliquot").click()
    expect(page.locator("#barcode")).to_have_value("KE-NBO-2403-T004-S1-A1")
    page.get_by_role("button", name="Register the sample").click()
    expect(page.locator("h1")).to_have_text("Sample KE-NBO-2403-T004-S1-A1")

    good = _replicate_file(live_server, "KE-NBO-2403-T004-S1", "KE-NBO-2403-T004-S1-A1")
    bad = tmp_path / "replicate-typo.csv"
    bad.write_text(good + "KE-NBO-2403-T004-S1-AI,FH67,120,124\n")
    page.get_by_role("navigation", name="Main").get_by_role("link",
                                                            name="Import genotypes").click()
    page.set_input_files("#file", str(bad))
    page.select_option("#panel", "elephant_16str")
    page.fill("#run", "RUN-REPLICATE-7")
    page.get_by_role("button", name="Import").click()
    problems = page.locator("table.problems tbody tr")
    expect(problems).to_have_count(1)
    expect(problems.first).to_contain_text("KE-NBO-2403-T004-S1-AI")
    expect(problems.first.locator("td").first).to_have_text(str(good.count("\n") + 1))
    good_file = tmp_path / "replicate.csv"
    good_file.write_text(good)
    page.set_input_files("#file", str(good_file))
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".flash.success")).to_contain_text("Imported 1 profile from "
                                                           "replicate.csv")
    expect(page.locator("table tbody tr")).to_contain_text("pending")

    page.get_by_role("button", name="Log out").click()
    log_in("reviewer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Review").click()
    row = page.locator("tr", has_text="KE-NBO-2403-T004-S1-A1")
    expect(row).to_contain_text("Ana Analyst")
    row.get_by_role("button", name="Mark reviewed").click()
    expect(page.locator(".flash.success")).to_contain_text("reviewed")
    row.get_by_role("button", name="Release").click()
    expect(page.locator(".flash.success")).to_contain_text("released")
    expect(row).to_have_count(0)

    page.goto("/cases")
    page.get_by_role("link", name="DEMO-2024-IVORY").click()
    page.get_by_role("link", name="KE-NBO-2403").click()
    page.get_by_role("link", name="KE-NBO-2403-T004-S1").click()
    page.get_by_role("link", name="KE-NBO-2403-T004-S1-A1").click()
    expect(page.locator("table .state")).to_have_text("released")
