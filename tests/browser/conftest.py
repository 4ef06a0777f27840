"""Browser tests: Playwright's sync API driving Debian's headless Chromium against the demo LIMS
served on a free localhost port.

The browser is ``/usr/bin/chromium`` (the Debian package, installed by ``.ci/run``); Playwright
never downloads one. Without it, or without the ``playwright`` package, every test here is
skipped with the reason. A failing test leaves a screenshot of its page under
``test-artifacts/``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from lims.demo import DEMO_PASSWORD, open_demo
from lims.extensions import db
from tests.lims.conftest import TEST_PASSWORD_METHOD

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the test extra is not installed
    sync_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_TESTS = Path(__file__).resolve().parent
ARTIFACTS = BROWSER_TESTS.parents[1] / "test-artifacts"
TIMEOUT_MS = 15_000


def _missing() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.is_file():
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


def pytest_collection_modifyitems(config, items) -> None:
    reason = _missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"browser tests need a browser: {reason}")
    for item in items:
        if BROWSER_TESTS in Path(item.path).parents:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


class LiveServer:
    """The demo LIMS served by Werkzeug in a thread."""

    def __init__(self, app) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    app, _, _ = open_demo(
        tmp_path_factory.mktemp("browser-demo") / "demo",
        config={"PASSWORD_HASH_METHOD": TEST_PASSWORD_METHOD, "SECRET_KEY": "browser tests"},
    )
    with LiveServer(app) as server:
        yield server
    db.engine_for(app).dispose()


@pytest.fixture(scope="session")
def playwright_driver():
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def page(request, playwright_driver, live_server, tmp_path):
    """A page in a fresh Chromium profile; screenshot under test-artifacts/ on failure.

    A device scale factor of 3 draws label barcodes finely enough (over 3 pixels per
    Code128 module) to decode them from a screenshot."""
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1100, "height": 900},
        device_scale_factor=3,
        base_url=live_server.url,
    )
    context.set_default_timeout(TIMEOUT_MS)
    browser_page = context.new_page()
    # Chromium reports what the Content-Security-Policy blocked on the console.
    blocked = []
    browser_page.on(
        "console",
        lambda message: blocked.append(message.text)
        if "Content Security Policy" in message.text
        else None,
    )
    yield browser_page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        browser_page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    assert blocked == [], "the pages broke their Content-Security-Policy"


@pytest.fixture
def log_in(page):
    """``log_in(username, password=DEMO_PASSWORD)`` through the login form."""

    def submit(username: str, password: str = DEMO_PASSWORD) -> None:
        page.goto("/login")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button[type=submit]")

    return submit
