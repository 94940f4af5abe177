"""The web console: served from the package under a strict policy, its routes (topology, event
stream, dispatch hold, re-clear and compare), and a real browser (Debian's headless Chromium
driven by Playwright) going through a participant's, an operator's and an auditor's work."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from feederdao.api.limits import CONSOLE_POLICY
from feederdao.store import repositories as repo
from feederdao.store.models import ClearingResultRow
from tests.api.conftest import NOON, Env, keyed_members, make_env, served

CONSOLE = Path(__file__).parents[2] / "src" / "feederdao" / "api" / "console"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SVG_NS = "http://www.w3.org/2000/svg"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(f"sqlite:///{tmp_path / 'market.db'}", str(tmp_path))
    yield e
    e.service.db.dispose()


def bid(interval: int, bus: int, device: str, quantity: float = 0.01) -> dict[str, Any]:
    return {
        "interval_id": interval,
        "period": 0,
        "bus": bus,
        "side": "buy",
        "device_id": device,
        "blocks": [{"price_eur_per_mwh": 80.0, "quantity_mw": quantity}],
    }


def cleared_and_anchored(env: Env) -> int:
    """An interval with one bid, its gate closed, cleared and anchored through the API."""
    iid = env.open_interval(NOON)
    (m,) = keyed_members(env, 1)
    dev = repo_devices(env, m.id)[0]
    r = env.client.post(
        "/bids", json=bid(iid, m.bus, dev), headers={**m.auth, "Idempotency-Key": "k1"}
    )
    assert r.status_code == 201, r.text
    op = env.auth("operator")
    for step in ("gate-closure", "clear", "anchor"):
        r = env.client.post(f"/intervals/{iid}/{step}", headers=op)
        assert r.status_code == 200, r.text
    return iid


def repo_devices(env: Env, participant_id: str) -> list[str]:
    with env.service.db.read() as s:
        return list(repo.get_participant(s, participant_id).devices)


# -- served from the package -------------------------------------------------------------------


def test_console_is_served_from_the_package_under_a_same_origin_policy(env: Env) -> None:
    r = env.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = r.headers["content-security-policy"]
    assert policy == CONSOLE_POLICY.decode()
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "http" not in policy and "*" not in policy and "unsafe" not in policy
    for name in sorted(p.name for p in CONSOLE.iterdir() if p.suffix in (".js", ".css", ".svg")):
        got = env.client.get(f"/console/{name}")
        assert got.status_code == 200, name
        assert got.headers["content-security-policy"] == policy
        assert got.content == (CONSOLE / name).read_bytes()
    assert env.client.get("/console/main.js").headers["content-type"].startswith("text/javascript")
    # nothing remote anywhere in the console's files (the SVG namespace is a name, not a load)
    for path in CONSOLE.iterdir():
        text = path.read_text().replace(SVG_NS, "")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
    assert env.client.get("/console/nope.js").status_code == 404
    assert env.client.get("/console/..%2Fapp.py").status_code in (404, 422)
    # the API keeps its own stricter policy
    assert "default-src 'none'" in env.client.get("/health").headers["content-security-policy"]
    assert "script-src" not in env.client.get("/market").headers["content-security-policy"]


def test_console_files_are_package_data() -> None:
    import tomllib

    data = tomllib.loads((CONSOLE.parents[3] / "pyproject.toml").read_text())
    assert "api/console/*" in data["tool"]["setuptools"]["package-data"]["feederdao"]


def test_network_route_draws_the_feeder_it_clears(env: Env) -> None:
    net = env.client.get("/network").json()
    view = env.service.network.view
    assert net["name"] == view.name and net["radial"] is True
    assert [b["index"] for b in net["buses"]] == [b.index for b in view.buses]
    assert len(net["branches"]) == len(view.branches)
    indices = {b["index"] for b in net["buses"]}
    assert all(br["from_bus"] in indices and br["to_bus"] in indices for br in net["branches"])
    assert net["slack_buses"] == [s.bus for s in view.slacks]
    assert sum(b["devices"] for b in net["buses"]) == len(view.devices)
    if net["geographic"]:
        assert all(b["x"] is not None and b["y"] is not None for b in net["buses"])


def test_session_names_the_keys_role(env: Env) -> None:
    (m,) = keyed_members(env, 1)
    assert env.client.get("/session", headers=m.auth).json() == {
        "role": "participant",
        "participant_id": m.id,
        "key_id": 3,
    }
    assert env.client.get("/session", headers=env.auth("auditor")).json()["role"] == "auditor"
    assert env.client.get("/session").status_code == 401


# -- live events ------------------------------------------------------------------------------


def test_events_stream_pushes_what_the_api_and_the_loop_do(env: Env) -> None:
    got: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()
    with served(env) as url:

        def listen() -> None:
            with httpx.stream("GET", f"{url}/events", timeout=30) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                kind = None
                for line in r.iter_lines():
                    if line.startswith("retry:"):
                        ready.set()
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind:
                        got.append((kind, json.loads(line[6:])))
                        if len(got) == 3:
                            return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        assert ready.wait(10)
        op = env.auth("operator")
        iid = httpx.post(f"{url}/intervals", json={"start": NOON.isoformat()}, headers=op).json()[
            "id"
        ]
        httpx.post(f"{url}/intervals/{iid}/gate-closure", headers=op).raise_for_status()
        httpx.post(f"{url}/intervals/{iid}/clear", headers=op, timeout=60).raise_for_status()
        t.join(30)
    assert got == [
        ("interval", {"interval_id": iid, "state": "open"}),
        ("interval", {"interval_id": iid, "state": "gate-closed"}),
        ("step", {"interval_id": iid, "step": "clear", "status": "ok", "reason": ""}),
    ]
    assert env.operator.events.subscribers == 0  # the stream's subscription ended with it


def test_a_subscriber_that_falls_behind_is_told_to_resync() -> None:
    import asyncio

    from feederdao.workflows.events import QUEUE_SIZE, RESYNC, EventHub

    async def main() -> list[str]:
        hub = EventHub()
        with hub.subscribe() as sub:
            for i in range(QUEUE_SIZE + 5):
                hub.publish("step", n=i)
            await asyncio.sleep(0.05)
            first = await sub.next(1)
            hub.publish("interval", n=-1)
            second = await sub.next(1)
            hub.close()
            try:
                await sub.next(1)
            except EOFError:
                closed = "closed"
        assert first is not None and second is not None
        return [first.kind, second.kind, closed]

    assert asyncio.run(main()) == [RESYNC, "interval", "closed"]


# -- dispatch hold and re-clear -----------------------------------------------------------------


def test_dispatch_can_be_held_and_released_from_the_api(env: Env) -> None:
    op = env.auth("operator")
    assert env.client.get("/dispatch").json()["state"] == "running"
    r = env.client.post("/dispatch/suspend", json={"reason": "storm"}, headers=op)
    assert r.status_code == 200 and r.json()["state"] == "suspended"
    assert r.json()["reason"] == "storm" and r.json()["by"] == "api key 1"
    assert env.client.post("/dispatch/suspend", json={}, headers=op).status_code == 422
    auditor = env.auth("auditor")
    assert env.client.post("/dispatch/resume", headers=auditor).status_code == 403
    assert env.client.post("/dispatch/resume", headers=op).json()["state"] == "running"


def test_re_clear_reproduces_the_anchored_result(env: Env) -> None:
    iid = cleared_and_anchored(env)
    r = env.client.post(f"/intervals/{iid}/re-clear", headers=env.auth("auditor"))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["match"] is True and got["first_difference"] is None
    assert got["stored_hash"] == got["stored_document_hash"] == got["anchor"]["on_chain_hash"]
    assert got["comparable_hash_stored"] == got["comparable_hash_recomputed"]
    assert got["anchor"]["verified"] is True
    assert "solve_s" in got["ignored"]
    # participants cannot, nor can anyone before the interval is cleared
    (m,) = keyed_members(env, 1)
    assert env.client.post(f"/intervals/{iid}/re-clear", headers=m.auth).status_code == 403
    open_id = env.open_interval(NOON.replace(hour=14))
    r = env.client.post(f"/intervals/{open_id}/re-clear", headers=env.auth("operator"))
    assert r.status_code == 409 and "no clearing" in r.json()["error"]


def test_re_clear_names_the_first_difference_of_a_tampered_result(env: Env) -> None:
    iid = cleared_and_anchored(env)
    with env.service.db.session() as s:
        row = s.get(ClearingResultRow, iid)
        assert row is not None
        doc = json.loads(row.result_json)
        was = doc["prices"]["dlmp"][0][2]
        doc["prices"]["dlmp"][0][2] = was + 1.0
        row.result_json = json.dumps(doc)  # the stored hash is left as anchored
    got = env.client.post(f"/intervals/{iid}/re-clear", headers=env.auth("auditor")).json()
    assert got["match"] is False
    assert got["stored_hash"] == got["anchor"]["on_chain_hash"] != got["stored_document_hash"]
    assert got["first_difference"]["path"] == "$.prices.dlmp[0][2]"
    assert float(got["first_difference"]["stored"]) == pytest.approx(was + 1.0)
    assert float(got["first_difference"]["recomputed"]) == pytest.approx(was)


# -- in a real browser ----------------------------------------------------------------------------


class Watch:
    """Every console error, uncaught exception, failed request and HTTP error of a page."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.expected: list[tuple[str, str, int]] = []  # (method, path, status) allowed once
        # what a test expects to see (a console error or a failed request containing the text),
        # with how often it was seen
        self.tolerated: dict[str, int] = {}

    def _tolerated(self, text: str) -> bool:
        for pattern in self.tolerated:
            if pattern in text:
                self.tolerated[pattern] += 1
                return True
        return False

    def attach(self, page: Any, name: str) -> None:
        def console(msg: Any) -> None:
            # Chromium also logs each HTTP error response as a console error: those are judged
            # by response() below, against what the test expects
            if msg.type != "error" or "the server responded with a status of" in msg.text:
                return
            where = httpx.URL(msg.location.get("url") or "/").path
            if not self._tolerated(f"{msg.text} ({where})"):
                self.problems.append(f"{name}: console error: {msg.text} ({where})")

        def response(r: Any) -> None:
            if r.status < 400:
                return
            path = httpx.URL(r.url).path
            key = (r.request.method, path, r.status)
            if key in self.expected:
                self.expected.remove(key)
                return
            self.problems.append(f"{name}: {r.request.method} {path} answered {r.status}")

        def failed(req: Any) -> None:
            path = httpx.URL(req.url).path
            if path == "/events" and "ERR_ABORTED" in (req.failure or ""):
                return  # the event stream, closed with its page
            if not self._tolerated(f"{req.method} {path} {req.failure}"):
                self.problems.append(f"{name}: request failed: {req.method} {path} {req.failure}")

        page.on("console", console)
        page.on("pageerror", lambda exc: self.problems.append(f"{name}: page error: {exc}"))
        page.on("response", response)
        page.on("requestfailed", failed)


def sign_in(page: Any, url: str, view: str, key: str) -> None:
    page.goto(f"{url}/#{view}")
    page.wait_for_selector("body[data-ready='true']")
    page.fill("#apikey", key)
    page.click("#signin button")
    page.wait_for_selector(f"#view-{view} .role-body:not([hidden])")


def test_participant_operator_and_auditor_in_a_real_browser(env: Env) -> None:
    from playwright.sync_api import ViewportSize, expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    iid = env.open_interval(NOON)
    (m,) = keyed_members(env, 1)
    device = repo_devices(env, m.id)[0]
    with env.service.db.session() as s:  # someone waiting for the operator's approval
        bus5 = next(b.index for b in env.service.network.view.buses if b.index != m.bus)
        repo.register_participant(s, "Dana's battery", Account.create().address, bus5, [])
    # what the API itself answers to a bid with a negative quantity
    bad = bid(iid, m.bus, device, -0.5)
    api_says = env.client.post("/bids", json=bad, headers={**m.auth, "Idempotency-Key": "x"})
    assert api_says.status_code == 422
    body = api_says.json()
    message = f"{body['field']}: {body['error']}" if body.get("field") else body["error"]
    watch = Watch()
    with served(env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            size: ViewportSize = {"width": 1280, "height": 800}
            market = browser.new_context(viewport=size).new_page()
            watch.attach(market, "market")
            market.goto(f"{url}/#market")
            market.wait_for_selector("body[data-ready='true']")
            n_buses = len(env.service.network.view.buses)
            assert market.locator("#m-feeder circle.bus").count() == n_buses
            market.evaluate("window.notReloaded = true")
            row = market.locator(f"#m-timeline li[data-interval='{iid}']")
            expect(row).to_have_attribute("data-state", "open")

            # a participant signs in, is refused a bad bid with the API's words, bids, cancels
            part = browser.new_context(viewport=size).new_page()
            watch.attach(part, "participant")
            sign_in(part, url, "participant", m.key)
            expect(part.locator("#p-me")).to_contain_text(f"bus {m.bus}")
            part.select_option("#p-device", device)
            part.fill("#p-qty", "-0.5")
            watch.expected.append(("POST", "/bids", 422))
            part.click("#p-bid button[type=submit]")
            expect(part.locator("#p-bid-error")).to_have_text(message)
            part.fill("#p-qty", "0.01")
            part.click("#p-bid button[type=submit]")
            bids = part.locator("#p-bids tbody tr")
            expect(bids).to_have_count(1)
            expect(bids.first).to_have_attribute("data-status", "active")
            bids.first.get_by_role("button", name="Cancel").click()
            expect(bids.first).to_have_attribute("data-status", "cancelled")
            part.click("#p-bid button[type=submit]")
            expect(part.locator("#p-bids tbody tr[data-status='active']")).to_have_count(1)

            # the operator closes the gate and clears; the market page follows without a reload
            oper = browser.new_context(viewport=size).new_page()
            watch.attach(oper, "operator")
            sign_in(oper, url, "operator", env.keys["operator"])
            expect(oper.locator("#o-pending tbody tr")).to_have_count(1)
            oper.get_by_role("button", name="Approve and issue a key").click()
            expect(oper.locator("#o-newkey")).to_contain_text("API key of Dana's battery")
            expect(oper.locator("#o-pending tbody tr")).to_have_count(0)
            expect(oper.locator("#o-keys tbody tr")).to_have_count(4)
            orow = oper.locator(f"#o-intervals tr[data-interval='{iid}']")
            orow.get_by_role("button", name="Close gate").click()
            expect(row).to_have_attribute("data-state", "gate-closed")
            orow.get_by_role("button", name="Clear").click()
            expect(row).to_have_attribute("data-state", "cleared", timeout=60_000)
            orow.get_by_role("button", name="Anchor").click()
            expect(orow.get_by_role("button", name="Anchor")).to_have_count(0)
            expect(row.locator(".chip.done")).to_have_count(3)  # the anchor is not public yet
            orow.get_by_role("button", name="Publish").click()
            expect(row).to_have_attribute("data-state", "published")
            expect(row.locator(".chip.done")).to_have_count(5)
            expect(market.locator("body")).to_have_attribute("data-painted", f"{iid}:0")
            assert market.evaluate("window.notReloaded") is True
            fills = market.eval_on_selector_all(
                "#m-feeder circle.bus", "cs => new Set(cs.map(c => c.getAttribute('fill'))).size"
            )
            assert fills > 1  # coloured by price, not the grey of "no price"
            expect(market.locator("#m-anchor")).to_contain_text("verified ✓")
            oper.locator(f"#o-intervals tr[data-interval='{iid}']").get_by_role(
                "button", name="Steps"
            ).click()
            expect(oper.locator("#o-steps tbody tr")).to_have_count(3)  # clear, anchor, publish

            # keyboard: the slider, the heat map's cursor and a bus are reachable and say things
            market.focus("#m-heat")
            market.keyboard.press("ArrowRight")
            expect(market.locator("#m-heat-info")).to_contain_text("period 1,")
            market.locator("#m-feeder circle.bus").nth(3).focus()
            expect(market.locator("#m-bus-info")).to_contain_text("EUR/MWh = energy")
            market.focus("#m-period")
            market.keyboard.press("ArrowRight")
            expect(market.locator("body")).to_have_attribute("data-painted", f"{iid}:1")

            # the participant's page shows the accepted quantity and the settlement
            expect(part.locator("#p-settlement tbody tr")).to_have_count(1)

            # the auditor re-clears and compares
            aud = browser.new_context(viewport=size).new_page()
            watch.attach(aud, "auditor")
            sign_in(aud, url, "auditor", env.keys["auditor"])
            expect(aud.locator(f"#a-interval option[value='{iid}']")).to_have_count(1)
            aud.click("#a-form button")
            verdict = aud.locator("#a-result .verdict")
            expect(verdict).to_have_attribute("data-match", "true", timeout=60_000)

            for page, name in ((market, "market"), (part, "participant"), (oper, "operator")):
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            aud.screenshot(path=str(ARTIFACTS / "auditor.png"), full_page=True)
            # a phone's width: nothing wider than the screen
            phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            watch.attach(phone, "phone")
            phone.goto(f"{url}/#market")
            phone.wait_for_selector("body[data-ready='true']")
            expect(phone.locator("body")).to_have_attribute("data-painted", f"{iid}:0")
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390
            phone.screenshot(path=str(ARTIFACTS / "market-phone.png"), full_page=True)
            assert watch.problems == []
            assert watch.expected == []
        finally:
            browser.close()
    assert env.operator.events.subscribers == 0


def test_price_grid_is_the_prices_in_arrays_public_once_published(env: Env) -> None:
    iid = cleared_and_anchored(env)
    assert env.client.get(f"/intervals/{iid}/price-grid").status_code == 404  # not public yet
    auditor = env.auth("auditor")
    assert env.client.get(f"/intervals/{iid}/price-grid", headers=auditor).status_code == 200
    r = env.client.post(f"/intervals/{iid}/publish", headers=env.auth("operator"))
    assert r.status_code == 200, r.text
    r = env.client.get(f"/intervals/{iid}/price-grid", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    grid = r.json()  # httpx undoes the gzip
    rows = env.client.get(f"/intervals/{iid}/prices").json()
    col = {b: i for i, b in enumerate(grid["buses"])}
    assert len(rows) == len(grid["dlmp"]) * len(grid["buses"])
    for p in rows:
        for part in ("dlmp", "energy", "loss", "congestion", "voltage"):
            assert grid[part][p["period"]][col[p["bus"]]] == pytest.approx(p[part], abs=5e-5)
    plain = env.client.get(f"/intervals/{iid}/price-grid", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == grid


def test_price_grid_of_the_dlmp_alone_for_a_first_paint(env: Env) -> None:
    iid = cleared_and_anchored(env)
    auditor = env.auth("auditor")
    full = env.client.get(f"/intervals/{iid}/price-grid", headers=auditor).json()
    r = env.client.get(f"/intervals/{iid}/price-grid?parts=dlmp", headers=auditor)
    assert r.status_code == 200 and r.json() == {
        k: full[k] for k in ("interval_id", "buses", "dlmp")
    }
    r = env.client.get(f"/intervals/{iid}/price-grid?parts=energy", headers=auditor)
    assert r.status_code == 422 and r.json()["field"] == "query.parts"


def test_the_price_grid_is_kept_with_the_result(env: Env) -> None:
    """Made once when the result is stored (serving it reads no result document); a result
    stored before grids were kept gets the same grid from its document."""
    iid = cleared_and_anchored(env)
    auditor = env.auth("auditor")
    urls = [f"/intervals/{iid}/price-grid", f"/intervals/{iid}/price-grid?parts=dlmp"]
    kept = [env.client.get(u, headers=auditor).content for u in urls]
    with env.service.db.session() as s:
        row = s.get(ClearingResultRow, iid)
        assert row is not None and row.price_grid_gz is not None and row.dlmp_grid_gz is not None
        row.price_grid_gz = row.dlmp_grid_gz = None
    env.client.app.state.price_grids = type(env.client.app.state.price_grids)()  # type: ignore[attr-defined]
    assert [env.client.get(u, headers=auditor).content for u in urls] == kept


def test_the_console_docs_show_screenshots_that_exist() -> None:
    import re

    root = Path(__file__).parents[2]
    for doc, folder in ((root / "docs" / "console.md", root / "docs"), (root / "README.md", root)):
        images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", doc.read_text())
        assert images, doc
        for image in images:
            assert (folder / image).is_file(), f"{doc.name}: {image}"
