"""Escalations in the operator's console, in a real browser: each escalated step is retried
through its own route (a push only while its period runs: the page shows the server's refusal)
or acknowledged, and leaves the list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from feederdao.store import repositories as repo
from tests.api.conftest import Env, make_env, served
from tests.api.test_console import ARTIFACTS, CHROMIUM, Watch, sign_in


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(f"sqlite:///{tmp_path / 'market.db'}", str(tmp_path), with_chain=False)
    yield e
    e.service.db.dispose()


def _escalate(env: Env, interval_id: int, step: str, reason: str) -> None:
    """The record the loop leaves after a step failed ``max_attempts`` times."""
    with env.service.db.session() as s:
        for status in ("failed", "failed", "escalated"):
            repo.record_step(s, interval_id, step, status, f"{reason} went wrong", None, reason)


def test_operator_retries_and_acknowledges_escalations_in_a_real_browser(env: Env) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    iid = env.open_interval(env.clock.now.replace(hour=12))
    op = env.auth("operator")
    assert env.client.post(f"/intervals/{iid}/gate-closure", headers=op).status_code == 200
    _escalate(env, iid, "clear", "solver")
    _escalate(env, iid, "push:0", "opcua")
    watch = Watch()
    with served(env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            oper = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            watch.attach(oper, "operator")
            sign_in(oper, url, "operator", env.keys["operator"])
            items = oper.locator("#o-escalations li")
            expect(items).to_have_count(2)
            oper.locator("#o-escalations").scroll_into_view_if_needed()
            oper.screenshot(path=str(ARTIFACTS / "operator-escalations.png"))
            clear = items.filter(has_text="clear: solver")
            clear.get_by_role("button", name="Retry").click()  # the clearing runs again
            expect(items).to_have_count(1)
            row = oper.locator(f"#o-intervals tr[data-interval='{iid}']")
            expect(row).to_contain_text("cleared")
            push = items.filter(has_text="push:0: opcua")
            watch.expected.append(("POST", f"/intervals/{iid}/push/0", 409))
            push.get_by_role("button", name="Retry").click()
            expect(oper.locator("#flash")).to_contain_text("no feeder bridge")
            push.get_by_role("button", name="Acknowledge").click()
            expect(items).to_have_text(["none"])
            assert watch.problems == []
            assert watch.expected == []
        finally:
            browser.close()
    health = env.client.get("/health").json()
    assert health["escalations"] == []
    with env.service.db.read() as s:
        last = repo.last_step(s, iid, "push:0")
        assert last is not None and last.status == "acknowledged"
        assert last.detail == "acknowledged by api key 1: acknowledged in the console"
