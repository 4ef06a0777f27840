"""An investigator on the intelligence pages: opens them, filters by year, downloads the
network; screenshots at 1280 px and 768 px under ``test-artifacts/`` show the figures."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from lims import jobs
from lims.database import utcnow
from lims.demo import DEMO_SEED, IVORY_SEIZURES, simulate_scenarios
from lims.extensions import db
from lims.intelligence import NETWORK_COLUMNS, fold_links
from lims.models import LinkSearch, MatchRequest, Seizure, SeizureRecord, User
from tests.browser.conftest import ARTIFACTS

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

PAGE_OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


@pytest.fixture(scope="module")
def coded_demo(live_server):
    """The demo's ivory seizures coded, its released profiles searched into the network, and
    then a finished request linking KE-MBA-2401 and KE-NBO-2403 (the demo's split tusk pair)
    folded in: the latest evidence for that pair."""
    _searched(live_server.app)
    with live_server.app.app_context():
        seizures = {s.reference: s for s in db.session.scalars(sa.select(Seizure))}
        for reference, country, kg in (("KE-MBA-2401", "KE", 640.0), ("KE-NBO-2403", "KE", 35.0),
                                       ("TZ-DAR-2402", "TZ", 120.0)):
            if db.session.get(SeizureRecord, seizures[reference].id) is None:
                db.session.add(SeizureRecord(
                    seizure_id=seizures[reference].id, discovery_country=country,
                    origins=[{"country": "TZ", "share": None}], transits=[],
                    destination_country="VN", commodity="ivory", commodity_form="raw",
                    species=[{"name": "Loxodonta africana", "quantity_kg": kg, "pieces": 4}],
                    offender_nationalities=[], validation_status="validated"))
        first, second = seizures["KE-MBA-2401"], seizures["KE-NBO-2403"]
        investigator = db.session.scalars(sa.select(User).filter_by(username="investigator")).one()
        finished = utcnow()
        result = {"links": [{"node1": f"seizure:{first.id}", "node2": f"seizure:{second.id}",
                             "n_pairs": 2, "relationships": {"same animal": 2},
                             "max_log10_lr": 14.2, "visible": True}]}
        request = MatchRequest(case_id=first.case_id, seizure_id=first.id, analyses=["kinship"],
                               reference_sets=[], status="done", result=result,
                               requested_by_id=investigator.id, finished_at=finished)
        db.session.add(request)
        db.session.flush()
        fold_links(db.session, request.id, finished, result)
        db.session.commit()


def _searched(app) -> None:
    """Wait until the network searches the demo's releases queued have run (here, or in the
    live server's workers)."""
    deadline = time.monotonic() + 600
    while True:
        jobs.run_queued(app)
        with app.app_context():
            waiting = db.session.scalar(sa.select(sa.func.count()).select_from(LinkSearch).where(
                LinkSearch.status.in_(("queued", "running"))))
        if not waiting:
            return
        assert time.monotonic() < deadline, "the demo's network searches did not finish"
        time.sleep(0.5)


def _planted_pairs(visible: set[str]) -> set[tuple[str, str]]:
    """Pairs of the demo's ivory seizures (references) among ``visible`` that a planted pair
    links."""
    ivory = simulate_scenarios(DEMO_SEED)[0]
    reference_of = {spec.group: spec.reference for spec in IVORY_SEIZURES}
    pairs = set()
    for record in ivory.relationships:
        ends = sorted(reference_of[item.split("-", 1)[0]] for item in (record.item1,
                                                                       record.item2))
        if ends[0] != ends[1] and set(ends) <= visible:
            pairs.add(tuple(ends))
    return pairs


def _screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"intelligence-{name}.png"), full_page=True)


@pytest.mark.parametrize("width", [1280, 768])
def test_an_investigator_filters_by_year_and_downloads_the_network(page, log_in, coded_demo,
                                                                   width):
    page.set_viewport_size({"width": width, "height": 1000})
    log_in("investigator")
    page.get_by_role("link", name="Intelligence").click()
    expect(page.get_by_role("heading", name="Seizure intelligence")).to_be_visible()
    page.fill("#from_year", "2024")
    page.fill("#to_year", "2024")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".data-statement").first).to_contain_text("seizures you may see, 2024")
    expect(page.locator("table.trends")).to_contain_text("500 to < 1,000 kg")
    # Both figures are drawn and shown at a readable size, inside the window.
    figures = page.locator("img.figure")
    assert figures.count() == 3
    for k in range(3):
        box = figures.nth(k).bounding_box()
        assert box["width"] >= min(600, width - 80) and box["x"] + box["width"] <= width
        assert figures.nth(k).evaluate("img => img.complete && img.naturalWidth > 0")
    _screenshot(page, f"overview-{width}")
    assert page.evaluate(PAGE_OVERFLOW) <= 0

    with page.expect_download() as waiting:
        page.get_by_role("link", name="Network CSV").click()
    download = waiting.value
    assert download.suggested_filename == "seizure-network.csv"
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(NETWORK_COLUMNS)
    # The links the searches of the released profiles found between the seizures the
    # investigator may see (not the other laboratory's TZ-ZNZ-2404), the request's last.
    planted = _planted_pairs({"KE-MBA-2401", "TZ-DAR-2402", "KE-NBO-2403"})
    assert ("KE-MBA-2401", "KE-NBO-2403") in planted
    assert {tuple(sorted((r["seizure1"], r["seizure2"]))) for r in rows} == planted
    assert [r["same_animal"] for r in rows
            if {r["seizure1"], r["seizure2"]} == {"KE-MBA-2401", "KE-NBO-2403"}] == ["2"]

    page.goto("/intelligence?from_year=2025&to_year=2025")
    expect(page.locator(".data-statement").first).to_contain_text("0 seizures you may see")
