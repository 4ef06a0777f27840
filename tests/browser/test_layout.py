"""Page layout in headless Chromium: the review queue fits a 768 px tablet, the request form's
checkboxes sit beside their labels under one legend, and the report's HTML keeps long sample
ids and population names inside their columns. Each test saves a screenshot under
``test-artifacts/`` to look at."""

from __future__ import annotations

import pytest

from lims.reports.render import render_html
from tests.browser.conftest import ARTIFACTS
from tests.lims.test_report_layout import LONG_BARCODES, long_names_body

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

TABLET = {"width": 768, "height": 1024}

# The page is wider than the window when it scrolls sideways.
PAGE_OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


def screenshot(page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"layout-{name}.png"), full_page=full_page)


def test_the_review_queue_fits_a_tablet_without_scrolling_sideways(page, log_in):
    page.set_viewport_size(TABLET)
    log_in("reviewer")
    page.goto("/genotypes/review")
    # The demo leaves two replicate profiles waiting.
    expect(page.get_by_role("button", name="Mark reviewed").first).to_be_visible()
    screenshot(page, "review-queue-768")
    assert page.evaluate(PAGE_OVERFLOW) <= 0
    # Nor does the table scroll inside its own wrapper.
    assert page.evaluate("[...document.querySelectorAll('.table-wrap')]"
                         ".every(w => w.scrollWidth <= w.clientWidth)")


def test_the_request_forms_checkboxes_sit_beside_their_labels_under_one_legend(page, log_in):
    log_in("investigator")
    page.goto("/cases")
    page.get_by_role("link", name="DEMO-2024-IVORY").click()
    page.get_by_role("link", name="KE-MBA-2401").click()
    page.get_by_role("link", name="Request analyses").click()
    screenshot(page, "request-form")
    for legend in ("Analyses", "Reference sets"):
        fieldset = page.locator("fieldset", has=page.locator("legend", has_text=legend))
        # The legend names the group once: no label repeats it.
        assert fieldset.inner_text().count(legend) == 1, legend
        boxes = fieldset.locator("input[type=checkbox]")
        assert boxes.count() >= 2
        for k in range(boxes.count()):
            box = boxes.nth(k)
            label = fieldset.locator(f"label[for='{box.get_attribute('id')}']")
            box_at, label_at = box.bounding_box(), label.bounding_box()
            # Beside: on the label's line, just left of it.
            middle = box_at["y"] + box_at["height"] / 2
            assert label_at["y"] <= middle <= label_at["y"] + label_at["height"], label.inner_text()
            gap = label_at["x"] - (box_at["x"] + box_at["width"])
            assert 0 <= gap <= 16, (label.inner_text(), gap)


@pytest.mark.parametrize("width", [1100, TABLET["width"]])
def test_the_report_html_keeps_long_ids_inside_their_columns(page, live_server, width):
    with live_server.app.app_context():
        html = render_html(long_names_body(), figures={"network": None, "maps": []})
    page.set_viewport_size({"width": width, "height": 1024})
    page.set_content(html)
    # The assignment table, in view: the page is too long for a whole-page screenshot.
    page.get_by_role("heading", name="6. Population assignment").scroll_into_view_if_needed()
    expect(page.get_by_text(LONG_BARCODES[-1]).first).to_be_visible()
    screenshot(page, f"report-html-{width}", full_page=False)
    assert page.evaluate(PAGE_OVERFLOW) <= 0
    overflowing = page.evaluate(
        "[...document.querySelectorAll('td, th')]"
        ".filter(cell => cell.scrollWidth > cell.clientWidth).map(cell => cell.innerText)")
    assert overflowing == []
