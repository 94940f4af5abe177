"""The console's live stream survives the service going away: a restart on the same port, a
stream closed by the server, an answer that is not a stream (a proxy's 503 while the service
comes back). The page reconnects by itself, reloads what it missed, and follows what is pushed
after, without a reload."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from feederdao.api.app import create_app
from feederdao.store.audit import StoreAuditLog
from feederdao.workflows.metrics import Metrics
from feederdao.workflows.operator import Operator
from tests.api.conftest import NOON, Env, make_env, served
from tests.api.test_console import ARTIFACTS, CHROMIUM, Watch
from tests.scada_bridge.conftest import free_port


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(f"sqlite:///{tmp_path / 'market.db'}", str(tmp_path), with_chain=False)
    yield e
    e.service.db.dispose()


class RefuseEvents:
    """The first ``n`` requests for ``/events`` answered 503, as a reverse proxy answers while
    the service behind it is still starting; everything else passed to ``app``."""

    def __init__(self, app: object, n: int) -> None:
        self.app = app
        self.left = n

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/events" and self.left > 0:
            self.left -= 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"text/plain"), (b"retry-after", b"1")],
                }
            )
            await send({"type": "http.response.body", "body": b"upstream restarting"})
            return
        await self.app(scope, receive, send)  # type: ignore[operator]


def test_reconnecting_stream_is_told_to_resync(env: Env) -> None:
    """A client that comes back with ``Last-Event-ID`` may have missed events (the hub keeps no
    history, and a restarted service numbers its events afresh): it is sent ``resync`` first."""
    with served(env) as url:
        for last, first in ((None, None), ("41", "resync")):
            headers = {"Last-Event-ID": last} if last else {}
            kinds: list[str] = []
            with httpx.stream("GET", f"{url}/events", headers=headers, timeout=10) as r:
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        kinds.append(line[7:])
                        break
                    if line == ": connected" and last is None:
                        break
            assert (kinds[0] if kinds else None) == first


def test_console_reconnects_after_a_restart_and_follows_without_a_reload(env: Env) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    op = env.auth("operator")
    watch = Watch()
    # while the service is down the browser's attempts fail: these, and only these, are expected
    refused = "GET /events net::ERR_CONNECTION_REFUSED"
    logged = "Failed to load resource: net::ERR_CONNECTION_REFUSED (/events)"
    watch.tolerated.update({refused: 0, logged: 0})
    watch.expected.append(("GET", "/events", 503))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            watch.attach(page, "market")
            live = page.locator("#live")
            with served(env, port=port) as url:
                page.goto(f"{url}/#market")
                page.wait_for_selector("body[data-ready='true']")
                expect(live).to_have_text("live")
                page.evaluate("window.notReloaded = true")
                first = httpx.post(
                    f"{url}/intervals", json={"start": NOON.isoformat()}, headers=op
                ).json()["id"]
                expect(page.locator(f"#m-timeline li[data-interval='{first}']")).to_have_count(1)
                env.operator.shutdown()  # as `feederdao serve` does on SIGTERM: streams end
            expect(live).to_have_text("reconnecting…")
            # the browser tries again while nothing listens on the port
            with page.expect_event(
                "requestfailed", lambda r: httpx.URL(r.url).path == "/events", timeout=15_000
            ):
                pass

            # while the service is down, an interval is opened (no one is told)
            gap = env.service.intervals.open(NOON + timedelta(hours=2)).id
            # the restarted service: a new process's operator and app on the same port, behind
            # a proxy that refuses the first stream
            again = Operator(env.service, Metrics(), StoreAuditLog(env.service.db))
            with served(env, app=RefuseEvents(create_app(again), 1), port=port) as url:
                # the page finds its way back and reloads what it missed
                row = page.locator(f"#m-timeline li[data-interval='{gap}']")
                expect(row).to_have_attribute("data-state", "open", timeout=30_000)
                expect(live).to_have_text("live")
                # an update pushed after the reconnection is shown without a reload
                r = httpx.post(f"{url}/intervals/{gap}/gate-closure", headers=op)
                assert r.status_code == 200, r.text
                expect(row).to_have_attribute("data-state", "gate-closed")
                assert page.evaluate("window.notReloaded") is True
                assert again.events.subscribers == 1
                assert page.locator("#flash").is_hidden()
                page.screenshot(path=str(ARTIFACTS / "reconnected.png"))
                page.context.close()
            assert watch.problems == []
            assert watch.expected == []  # the proxy's 503 was met
            assert watch.tolerated[refused] >= 1 and watch.tolerated[logged] >= 1
        finally:
            browser.close()
