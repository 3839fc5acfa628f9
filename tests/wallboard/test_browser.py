"""End to end in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

The wallboard runs as ``ccpulse wallboard`` in a subprocess; the test plays the worker's
Redis sink (``Feed``/``Feeder``). Missing Playwright or Chromium fails these tests with a
clear message; they are never skipped. ``WALLBOARD_SCREENSHOT=docs/images/wallboard.png``
makes ``test_screenshot`` also write the README's picture.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.sinks.redis_server import RedisServer, free_port
from tests.wallboard import data
from tests.wallboard.conftest import APP_ID, PREFIX
from tests.wallboard.feed import Feed, Feeder

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# As on the machines this runs on: no sandbox as root, and nothing that phones home.
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
VIEWPORT = {"width": 1600, "height": 900}


class WallboardProcess:
    """``ccpulse wallboard`` on a fixed free port, killable and restartable."""

    def __init__(self, redis_url: str, log_path: Path, token: str = "") -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")}
        self.env |= {
            "CCPULSE_REDIS_URL": redis_url,
            "CCPULSE_REDIS_PREFIX": PREFIX,
            "CCPULSE_APP_ID": APP_ID,
            "CCPULSE_WALLBOARD_TOKEN": token,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 20.0) -> WallboardProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ccpulse.cli",
                    "wallboard",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"wallboard exited:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "healthz", timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"wallboard not up in {timeout} s:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def playwright() -> Any:
    """Return Playwright's async entry point, or fail saying what to install."""
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        pytest.fail(
            f"the wallboard browser tests need the Python package playwright ({exc}); "
            "run `make install` (pip install -e '.[test]')",
            pytrace=False,
        )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"the wallboard browser tests need Debian's Chromium at {CHROMIUM} "
            "(apt-get install chromium; `make install` does it) — never a downloaded browser",
            pytrace=False,
        )
    return async_playwright


@pytest.fixture
async def page(playwright: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh Chromium profile and page; fails the test on any script error."""
    errors: list[str] = []
    async with playwright() as driver:
        context = await driver.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
        )
        tab = context.pages[0] if context.pages else await context.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
        yield tab
        await context.close()
    assert errors == []


@pytest.fixture
def wallboard(redis_server: RedisServer, tmp_path: Path) -> Any:
    process = WallboardProcess(redis_server.url, tmp_path / "wallboard.log").start()
    yield process
    process.kill()


@pytest.fixture
async def feeder(feed: Feed) -> AsyncIterator[Feeder]:
    running = Feeder(feed, data.windows(), data.SL_TARGETS, interval=0.5)
    running.start()
    yield running
    await running.stop()


def cell(tab: Any, scope: str, kpi: str) -> Any:
    return tab.locator(f'article[data-scope="{scope}"] [data-kpi="{kpi}"] .metric-value')


async def test_live_stale_and_recovery(
    page: Any, wallboard: WallboardProcess, feed: Feed, feeder: Feeder, redis_server: RedisServer
) -> None:
    from playwright.async_api import expect

    body = page.locator("body")
    status = page.locator("#status-text")
    await page.goto(wallboard.url)
    await expect(cell(page, "queue:billing", "waiting")).to_have_text("6", timeout=2000)
    await expect(body).to_have_attribute("data-state", "live", timeout=2000)
    await expect(cell(page, "queue:tech_support", "service_level")).to_have_text("58\u00a0%")
    await expect(
        page.locator('[data-scope="queue:tech_support"] [data-kpi="service_level"]')
    ).to_have_class(re.compile(r"\blevel-bad\b"))
    await expect(
        page.locator('[data-scope="queue:sales"] [data-kpi="service_level"] .metric-target')
    ).to_have_text("✓ target ≥ 90\u00a0%")
    await expect(cell(page, "queue:retention", "csat")).to_have_text("—")
    await expect(page.locator("article[data-scope]")).to_have_count(5)  # no channel tile

    # An event reaches the page within a second or two.
    feeder.windows = data.windows(waiting=11)
    published = time.monotonic()
    await feed.publish(feeder.windows, data.SL_TARGETS)
    await expect(cell(page, "queue:billing", "waiting")).to_have_text("11", timeout=2000)
    assert time.monotonic() - published < 2.0

    # The event source stops: the page turns stale from the server's timestamps.
    await feeder.stop()
    await expect(body).to_have_attribute("data-state", "stale", timeout=9000)
    await expect(status).to_have_text(re.compile(r"^STALE · last data \d+ s ago$"))
    await expect(cell(page, "queue:billing", "waiting")).to_have_text("11")  # still shown, greyed
    # ... and recovers when it comes back.
    feeder.start()
    await expect(body).to_have_attribute("data-state", "live", timeout=3000)

    # The wallboard server dies: connection lost; a restart is picked up by itself.
    wallboard.kill()
    await expect(status).to_have_text(re.compile(r"^STALE · connection lost"), timeout=8000)
    await asyncio.to_thread(wallboard.start)
    await expect(body).to_have_attribute("data-state", "live", timeout=8000)

    # A 5xx makes EventSource give up for good; the page's own backoff reconnects.
    refused: list[str] = []

    async def refuse(route: Any) -> None:
        refused.append(route.request.url)
        await route.fulfill(status=503, body="restarting")

    await page.route(re.compile(r"/events\?"), refuse)
    wallboard.kill()
    deadline = time.monotonic() + 15
    while len(refused) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert len(refused) >= 3, refused  # the browser alone would have stopped after one
    await expect(status).to_have_text(re.compile(r"reconnecting in \d+ s"))
    await asyncio.to_thread(wallboard.start)
    await page.unroute(re.compile(r"/events\?"))
    await expect(body).to_have_attribute("data-state", "live", timeout=15000)

    # Redis goes away: the server keeps serving and says so; the page recovers after.
    redis_server.stop()
    await expect(status).to_have_text(re.compile(r"^STALE · data unavailable"), timeout=5000)
    redis_server.start()
    await expect(body).to_have_attribute("data-state", "live", timeout=6000)
    await expect(cell(page, "queue:billing", "waiting")).to_have_text("11")


async def test_window_switch(page: Any, wallboard: WallboardProcess, feeder: Feeder) -> None:
    from playwright.async_api import expect

    windows = data.windows()
    windows["1h"] = {**windows["1h"], "queue:sales": data.QUEUES["sales"] | {"offered": 777}}
    feeder.windows = windows
    await page.goto(wallboard.url)
    foot = page.locator('article[data-scope="queue:sales"] .tile-foot')
    await expect(foot).to_have_text("offered 83 · answered 82", timeout=3000)
    await page.get_by_role("button", name="1 hour").click()
    await expect(foot).to_have_text("offered 777 · answered 82", timeout=3000)
    await expect(page.get_by_role("button", name="1 hour")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert "window=1h" in page.url
    await page.reload()  # the window survives a reload (a TV's bookmark)
    await expect(foot).to_have_text("offered 777 · answered 82", timeout=3000)


async def test_token_in_the_url_opens_page_and_stream(
    page: Any, redis_server: RedisServer, feeder: Feeder, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    process = WallboardProcess(redis_server.url, tmp_path / "wb.log", token="s3cret").start()
    try:
        refused = await page.goto(process.url)
        assert refused is not None and refused.status == 401
        await page.goto(process.url + "?token=s3cret")
        await expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=3000)
        await expect(cell(page, "queue:billing", "waiting")).to_have_text("6")
    finally:
        process.kill()


async def test_markup_in_data_is_shown_as_text(
    page: Any, wallboard: WallboardProcess, feed: Feed
) -> None:
    from playwright.async_api import expect

    names = ["<script>alert(1)</script>", '<img src=x onerror="alert(2)">']
    windows = {"15m": {f"queue:{n}": data.QUEUES["billing"] for n in names} | {"all": data.ALL}}
    feeder = Feeder(feed, windows, {"default": 0.8})
    feeder.start()
    try:
        await page.goto(wallboard.url)
        titles = page.locator("#queues .tile-title")
        await expect(titles).to_have_text(sorted(names), timeout=3000)
        assert await page.locator("script").count() == 1  # only wallboard.js
        assert await page.locator("main img").count() == 0
        await asyncio.sleep(0.5)  # a dialog would have opened by now (the fixture fails on one)
    finally:
        await feeder.stop()


async def test_screenshot(
    page: Any, wallboard: WallboardProcess, feeder: Feeder, tmp_path: Path
) -> None:
    """Take the README's picture: four queues, 1600×900, live."""
    from playwright.async_api import expect

    await page.goto(wallboard.url)
    await expect(page.locator("body")).to_have_attribute("data-state", "live", timeout=3000)
    await expect(page.locator("#queues article")).to_have_count(4)
    await asyncio.sleep(1.0)  # let the status settle on "updated <1 s ago"
    await expect(page.locator("body")).to_have_attribute("data-state", "live")
    shot = tmp_path / "wallboard.png"
    await page.screenshot(path=str(shot))
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1600, 900)
    target = os.environ.get("WALLBOARD_SCREENSHOT")
    if target:
        shutil.copyfile(shot, ROOT / target)
