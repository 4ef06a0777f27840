"""An analyst imports a genotyping run whose positive control is wrong and sees the run held,
with the reason, in headless Chromium on the demo LIMS."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lims.extensions import db
from lims.models import PositiveControl, Sample

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect


def test_a_run_with_a_failing_control_is_shown_held_with_the_reason(page, log_in, live_server,
                                                                      tmp_path):
    with live_server.app.app_context():
        control = db.session.scalar(sa.select(PositiveControl).where(
            PositiveControl.name == "PC-ELE-1"))
        expected = control.alleles
        parent = db.session.scalar(sa.select(Sample).where(
            Sample.barcode == "KE-NBO-2403-T003-S1"))
        aliquot = Sample(barcode="KE-NBO-2403-T003-S1-Q1", case_id=parent.case_id,
                         parent_id=parent.id, sample_type="powder")
        db.session.add(aliquot)
        db.session.commit()
    locus = next(iter(expected))
    low, high = expected[locus]
    wrong = {**expected, locus: [low, high + 2 if high + 2 != low else high + 4]}
    typed = sorted(wrong[locus])
    lines = ["Sample Name\tSample Type\tWell\tMarker\tAllele 1\tAllele 2"]
    for well, name, kind, alleles in (("A01", "PC-ELE-1", "Positive Control", wrong),
                                      ("A02", "NTC-1", "Negative Control", {}),
                                      ("B01", "KE-NBO-2403-T003-S1-Q1", "Sample", expected)):
        for marker in expected:
            called = [str(a) for a in alleles.get(marker, [])] + ["", ""]
            lines.append("\t".join([name, kind, well, marker, *called[:2]]))
    export = tmp_path / "run-7.txt"
    export.write_text("\n".join(lines) + "\n")

    log_in("analyst")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    page.set_input_files("#file", str(export))
    page.select_option("#panel", control.panel)
    for field, value in (("#name", "RUN-BROWSER-7"), ("#instrument", "ABI 3500xL"),
                         ("#kit", "Elephant 16-STR"), ("#kit_lot", "LOT-7"),
                         ("#allelic_ladder", "GS500 LIZ"), ("#run_on", "2024-10-02")):
        page.fill(field, value)
    page.get_by_role("button", name="Import run").click()
    reason = (f"positive control PC-ELE-1 (well A01) failed: {locus}: expected {low}/{high}, "
              f"typed {typed[0]}/{typed[1]}")
    expect(page.locator("h1")).to_have_text("Run RUN-BROWSER-7")
    expect(page.locator(".run-hold h2")).to_have_text("On hold")
    expect(page.locator(".hold-reason")).to_have_text(reason)
    expect(page.locator("tr", has_text="KE-NBO-2403-T003-S1-Q1")).to_contain_text("pending")
