"""API keys from the operator's console: ``POST /api-keys`` issues a participant's or an
auditor's key (operator keys stay on the server), and a real browser issues a participant key,
uses it, revokes it and sees it stop working."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from feederdao.store import repositories as repo
from tests.api.conftest import Env, keyed_members, make_env, served
from tests.api.test_console import ARTIFACTS, CHROMIUM, Watch, sign_in


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(f"sqlite:///{tmp_path / 'market.db'}", str(tmp_path), with_chain=False)
    yield e
    e.service.db.dispose()


def test_operator_issues_participant_and_auditor_keys(env: Env) -> None:
    (m,) = keyed_members(env, 1)
    op = env.auth("operator")
    r = env.client.post(
        "/api-keys",
        json={"role": "participant", "participant_id": m.id, "label": "ems"},
        headers=op,
    )
    assert r.status_code == 201, r.text
    key = r.json()
    assert key["role"] == "participant" and key["participant_id"] == m.id
    me = env.client.get("/session", headers={"Authorization": f"Bearer {key['api_key']}"})
    assert me.json() == {"role": "participant", "participant_id": m.id, "key_id": key["key_id"]}
    listed = {k["id"]: k for k in env.client.get("/api-keys", headers=op).json()}
    assert listed[key["key_id"]]["label"] == "ems"
    r = env.client.post("/api-keys", json={"role": "auditor"}, headers=op)
    assert r.status_code == 201, r.text
    auditor = {"Authorization": f"Bearer {r.json()['api_key']}"}
    assert env.client.get("/session", headers=auditor).json()["role"] == "auditor"


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"role": "operator"}, 422, "role", "feederdao db api-key operator"),
        ({"role": "admin"}, 422, "role", "choose one of participant, auditor"),
        ({"role": "participant"}, 422, "participant_id", "needs a participant"),
        ({"role": "auditor", "participant_id": "P"}, 422, "participant_id", "other roles take"),
        ({"role": "participant", "participant_id": "nobody"}, 404, None, "does not exist"),
        ({"role": "auditor", "extra": 1}, 422, "extra", ""),
    ],
)
def test_issuing_a_key_refuses_what_it_cannot_issue(
    env: Env, body: dict[str, object], status: int, field: str | None, words: str
) -> None:
    before = len(env.client.get("/api-keys", headers=env.auth("operator")).json())
    r = env.client.post("/api-keys", json=body, headers=env.auth("operator"))
    assert r.status_code == status, r.text
    assert r.json().get("field") == field and words in r.json()["error"]
    assert len(env.client.get("/api-keys", headers=env.auth("operator")).json()) == before


def test_only_the_operator_issues_keys(env: Env) -> None:
    (m,) = keyed_members(env, 1)
    with env.service.db.session() as s:  # a participant waiting for approval gets no key
        pending = repo.register_participant(s, "p", Account.create().address, m.bus, [])
    body = {"role": "participant", "participant_id": m.id}
    assert env.client.post("/api-keys", json=body).status_code == 401
    assert env.client.post("/api-keys", json=body, headers=m.auth).status_code == 403
    assert env.client.post("/api-keys", json=body, headers=env.auth("auditor")).status_code == 403
    r = env.client.post(
        "/api-keys",
        json={"role": "participant", "participant_id": pending.id},
        headers=env.auth("operator"),
    )
    assert r.status_code == 409 and "not approved" in r.json()["error"]


def test_operator_issues_and_revokes_a_key_in_a_real_browser(env: Env) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env.open_interval(env.clock.now.replace(hour=12))
    (m,) = keyed_members(env, 1)
    watch = Watch()
    with served(env) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            oper = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            watch.attach(oper, "operator")
            sign_in(oper, url, "operator", env.keys["operator"])
            keys = oper.locator("#o-keys tbody tr")
            expect(keys).to_have_count(3)  # operator, auditor, the participant's first
            oper.select_option("#o-key-role", "participant")
            oper.select_option("#o-key-participant", m.id)
            oper.fill("#o-key-label", "home battery")
            oper.get_by_role("button", name="Issue a key").click()
            expect(oper.locator("#o-newkey")).to_contain_text("API key of k")
            key = oper.locator("#o-newkey-value").inner_text()
            assert key.startswith("fdk_")
            expect(keys).to_have_count(4)
            new_row = keys.filter(has_text="home battery")
            expect(new_row).to_contain_text("active")

            # the key works: over HTTP and in a participant's page
            bearer = {"Authorization": f"Bearer {key}"}
            assert httpx.get(f"{url}/session", headers=bearer).json()["participant_id"] == m.id
            part = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            watch.attach(part, "participant")
            sign_in(part, url, "participant", key)
            expect(part.locator("#p-me")).to_contain_text(f"bus {m.bus}")

            # revoked, it stops working at once: over HTTP, and the page signs out
            new_row.get_by_role("button", name="Revoke").click()
            expect(new_row).to_contain_text("revoked")
            expect(new_row.get_by_role("button", name="Revoke")).to_have_count(0)
            r = httpx.get(f"{url}/session", headers=bearer)
            assert r.status_code == 401 and r.json()["error"] == "unknown or revoked API key"
            watch.expected.append(("POST", "/bids", 401))
            part.click("#p-bid button[type=submit]")
            expect(part.locator("#flash")).to_have_text(
                "Signed out: unknown or revoked API key. Sign in again."
            )
            expect(part.locator("#signin")).to_be_visible()
            expect(part.locator("#view-participant .role-body")).to_be_hidden()
            # an auditor's key from the same form
            oper.select_option("#o-key-role", "auditor")
            expect(oper.locator("#o-key-participant")).to_be_disabled()
            oper.get_by_role("button", name="Issue a key").click()
            expect(oper.locator("#o-newkey")).to_contain_text("Auditor API key")
            auditor = oper.locator("#o-newkey-value").inner_text()
            got = httpx.get(f"{url}/session", headers={"Authorization": f"Bearer {auditor}"})
            assert got.json()["role"] == "auditor"
            oper.screenshot(path=str(ARTIFACTS / "operator-keys.png"), full_page=True)
            assert watch.problems == []
            assert watch.expected == []
        finally:
            browser.close()
