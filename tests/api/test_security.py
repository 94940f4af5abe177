"""The service as an attacker sees it, in process (the served process is in test_hostile.py, the
concurrent clients in test_concurrency.py): signatures bound to one deployment and low-s only,
strict numbers, dates at the edge of the calendar, bounded bodies, security headers, /docs
without a CDN, key revocation and rotation, a limit on wrong keys, private files, and a health
answer that tells the public no more than the failing step and a reason code."""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from eth_account import Account
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from feederdao.api.ratelimit import ClientLimiter
from feederdao.cli.main import app as cli
from feederdao.domain.network import DeviceKind
from feederdao.governance.eip2 import SECP256K1_N
from feederdao.governance.signing import sign
from feederdao.workflows.market.keys import ApiKeys
from tests.api.conftest import GATE, NOON, Env, backend_url, make_env

# -- one service per backend for the whole module (starting one deploys a DAO: seconds) ----------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def menv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("svc")
    env = make_env(backend_url(request, request.param, work, "security"), str(work))
    try:
        yield env
    finally:
        env.service.db.dispose()


def malleate(signature: str) -> str:
    """The high-s twin of a signature: (r, n - s, v ^ 1) recovers to the same address."""
    raw = bytes.fromhex(signature.removeprefix("0x"))
    s = int.from_bytes(raw[32:64], "big")
    v = raw[64]
    flipped = (55 - v) if v in (27, 28) else (1 - v)
    return "0x" + (raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([flipped])).hex()


def keyed_bid(m: Any, iv: int, **change: Any) -> dict[str, Any]:
    bid = {
        "interval_id": iv,
        "period": 0,
        "bus": m.bus,
        "side": "buy",
        "blocks": [{"price_eur_per_mwh": 150.0, "quantity_mw": 0.002}],
    }
    return {**bid, **change}


def test_high_s_signatures_are_refused(menv: Env) -> None:
    c = menv.client
    acct = Account.create()
    bus, dev = menv.free_device()
    body = menv.registration(acct, "mallory", bus, [dev])
    r = c.post("/participants", json={**body, "signature": malleate(body["signature"])})
    assert r.status_code == 422 and r.json()["field"] == "signature", r.text
    assert "low-s" in r.json()["error"]
    m = menv.join()
    iv = menv.open_interval(NOON + timedelta(days=1))
    signed = menv.signed_bid(m, iv, [(120.0, 0.002)])
    before = menv.bid_count()
    r = c.post("/bids/signed", json={**signed, "signature": malleate(signed["signature"])})
    assert r.status_code == 422 and r.json()["field"] == "signature", r.text
    assert menv.bid_count() == before
    assert c.post("/bids/signed", json=signed).status_code == 201  # the low-s original


def test_numbers_are_strict(menv: Env) -> None:
    c = menv.client
    m = menv.join()
    iv = menv.open_interval(NOON + timedelta(days=2))
    before = menv.bid_count()
    block = {"price_eur_per_mwh": 150.0, "quantity_mw": 0.002}
    bad = [
        (keyed_bid(m, iv, blocks=[{**block, "quantity_mw": "0.002"}]), "blocks[0].quantity_mw"),
        (keyed_bid(m, iv, blocks=[{**block, "quantity_mw": True}]), "blocks[0].quantity_mw"),
        (
            keyed_bid(m, iv, blocks=[{**block, "price_eur_per_mwh": "150"}]),
            "blocks[0].price_eur_per_mwh",
        ),
        (keyed_bid(m, iv, interval_id=str(iv)), "interval_id"),
        (keyed_bid(m, iv, period=True), "period"),
        (keyed_bid(m, iv, bus=float(m.bus)), "bus"),
    ]
    for n, (body, field) in enumerate(bad):
        r = c.post("/bids", json=body, headers={**m.auth, "Idempotency-Key": f"s{n}"})
        assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)
    signed = menv.signed_bid(m, iv, [(150.0, 0.002)])
    for key, value in (("prices", ["150000"]), ("quantities", [True]), ("period", "0")):
        msg = {**signed["message"], key: value}
        r = c.post("/bids/signed", json={"message": msg, "signature": signed["signature"]})
        assert r.status_code == 422 and r.json()["field"].startswith(f"message.{key}"), r.text
    assert menv.bid_count() == before
    # an integer is a number for a price or a quantity
    ok = keyed_bid(m, iv, blocks=[{"price_eur_per_mwh": 150, "quantity_mw": 0.002}])
    assert c.post("/bids", json=ok, headers={**m.auth, "Idempotency-Key": "int"}).status_code == 201


def test_interval_times_at_the_edge_of_the_calendar(menv: Env) -> None:
    c, op = menv.client, menv.auth("operator")
    for start in ("9999-12-31T23:45:00Z", "9999-12-31T23:00:00+00:00", "0001-01-01T00:00:00Z"):
        r = c.post("/intervals", json={"start": start}, headers=op)
        assert r.status_code == 422 and r.json()["field"] == "start", (start, r.text)
    r = c.post(
        "/intervals",
        json={"start": "2031-01-01T12:00:00Z", "gate_closure": "2031-01-01T11:00:00"},
        headers=op,
    )
    assert r.status_code == 422 and r.json()["field"] == "gate_closure", r.text
    assert c.get("/intervals", params={"limit": 1000}).status_code == 200


def test_bodies_are_bounded_before_they_are_parsed(menv: Env) -> None:
    c = menv.client
    limit = menv.service.settings.max_body_bytes
    for path in ("/participants", "/bids", "/bids/signed", "/intervals"):
        deep = b"[" * (limit - 10)
        r = c.post(path, content=deep, headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and "nests deeper" in r.json()["error"], (path, r.text)
        r = c.post(path, content=b" " * (limit + 1), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["field"] == "body", (path, r.text)
    # brackets inside strings do not count
    name = "[" * 150
    r = c.post("/participants", json={**menv.registration(Account.create(), name, 1, [])})
    assert r.status_code != 422 or "nests" not in r.json()["error"]
    # whatever a dependency sets the recursion limit to, a request lowers it again
    sys.setrecursionlimit(100_000)
    assert c.get("/market").status_code == 200
    assert sys.getrecursionlimit() <= 3000


def test_security_headers_and_offline_docs(menv: Env) -> None:
    c = menv.client
    for r in (
        c.get("/market"),
        c.get("/intervals/99999"),
        c.post("/bids", content=b"x" * (menv.service.settings.max_body_bytes + 1)),
        c.get("/docs"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert c.get("/bids", headers=menv.auth("auditor")).headers["cache-control"] == "no-store"
    page = c.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    assert "script-src 'self'" in page.headers["content-security-policy"]
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(links) == 4 and all(u.startswith("/docs/") for u in links), links
    for url in links:
        got = c.get(url)
        assert got.status_code == 200 and len(got.content) > 100, url
    bundle = c.get("/docs/assets/swagger-ui-bundle.js").text
    assert 'PACKAGE_VERSION:"5.' in bundle  # Swagger UI 5 renders OpenAPI 3.1
    assert "validatorUrl: null" in c.get("/docs/init.js").text  # no call out to a validator
    assert "Apache License" in c.get("/docs/assets/LICENSE").text
    assert c.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert c.get("/redoc").status_code == 404  # ReDoc would load its script from a CDN


def test_api_keys_are_revoked_and_rotated(menv: Env) -> None:
    c, op = menv.client, menv.auth("operator")
    m = menv.join()
    me = c.get("/participants/me", headers=m.auth)
    assert me.status_code == 200
    keys = c.get("/api-keys", headers=menv.auth("auditor")).json()
    mine = [k for k in keys if k["participant_id"] == m.id]
    assert len(mine) == 1 and mine[0]["revoked_at"] is None and "key_hash" not in mine[0]
    # the operator rotates it: the new key works, the old one no longer does
    r = c.post(f"/api-keys/{mine[0]['id']}/rotate", headers=op)
    assert r.status_code == 201, r.text
    new = {"Authorization": f"Bearer {r.json()['api_key']}"}
    assert c.get("/participants/me", headers=m.auth).status_code == 401
    assert c.get("/participants/me", headers=new).json()["id"] == m.id
    # the participant rotates its own key
    r = c.post("/api-keys/me/rotate", headers=new)
    assert r.status_code == 201 and r.json()["participant_id"] == m.id
    newer = {"Authorization": f"Bearer {r.json()['api_key']}"}
    assert c.get("/participants/me", headers=new).status_code == 401
    # the operator revokes it
    r = c.post(f"/api-keys/{r.json()['key_id']}/revoke", headers=op)
    assert r.status_code == 200 and r.json()["revoked_why"] == "revoked"
    assert c.get("/participants/me", headers=newer).status_code == 401
    assert c.post(f"/api-keys/{mine[0]['id']}/rotate", headers=op).status_code == 409
    assert c.post(f"/api-keys/{mine[0]['id']}/revoke", headers=newer).status_code == 401
    assert c.post("/api-keys/999999/revoke", headers=op).status_code == 404
    # only operators revoke; the last operator key cannot be revoked
    assert (
        c.post(f"/api-keys/{mine[0]['id']}/revoke", headers=menv.auth("auditor")).status_code == 403
    )
    operators = [k for k in c.get("/api-keys", headers=op).json() if k["role"] == "operator"]
    live = [k for k in operators if k["revoked_at"] is None]
    if len(live) == 1:
        r = c.post(f"/api-keys/{live[0]['id']}/revoke", headers=op)
        assert r.status_code == 409 and "last operator key" in r.json()["error"]


def test_feederdao_db_revokes_and_rotates_keys(menv: Env) -> None:
    runner = CliRunner()
    url = menv.service.db.url
    out = runner.invoke(cli, ["db", "api-key", "auditor", "--label", "cli", "--database-url", url])
    assert out.exit_code == 0, out.output
    key = out.output.strip()
    auth = {"Authorization": f"Bearer {key}"}
    assert menv.client.get("/participants", headers=auth).status_code == 200
    listed = runner.invoke(cli, ["db", "api-keys", "--database-url", url])
    assert listed.exit_code == 0, listed.output
    key_id = next(k.id for k in ApiKeys(menv.service.db).list() if k.label == "cli")
    assert re.search(rf"^\s*{key_id}\s+auditor\s+-\s+cli\s", listed.output, re.M), listed.output
    rotated = runner.invoke(cli, ["db", "rotate-key", str(key_id), "--database-url", url])
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.output.strip().splitlines()[-1]
    assert menv.client.get("/participants", headers=auth).status_code == 401
    new = {"Authorization": f"Bearer {new_key}"}
    assert menv.client.get("/participants", headers=new).status_code == 200
    new_id = max(k.id for k in ApiKeys(menv.service.db).list())
    revoked = runner.invoke(cli, ["db", "revoke-key", str(new_id), "--database-url", url])
    assert revoked.exit_code == 0 and "revoked" in revoked.output, revoked.output
    assert menv.client.get("/participants", headers=new).status_code == 401
    missing = runner.invoke(cli, ["db", "revoke-key", "999999", "--database-url", url])
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_wrong_keys_are_limited_per_client(menv: Env) -> None:
    app = cast(FastAPI, menv.client.app)
    now = [0.0]
    app.state.auth_limiter = ClientLimiter(10, 60.0, clock=lambda: now[0])
    try:
        c = menv.client
        guess = {"Authorization": "Bearer fdk_guess"}
        for _ in range(10):
            assert c.get("/participants", headers=guess).status_code == 401
        r = c.get("/participants", headers=guess)
        assert r.status_code == 429 and int(r.headers["retry-after"]) == 60, r.text
        # the client is held back, even with the right key; others are not
        assert c.get("/participants", headers=menv.auth("auditor")).status_code == 429
        assert c.get("/market").status_code == 200  # no key: public answers still come
        other = TestClient(app, client=("192.0.2.7", 40000))
        assert other.get("/participants", headers=menv.auth("auditor")).status_code == 200
        now[0] = 61.0
        assert c.get("/participants", headers=menv.auth("auditor")).status_code == 200
    finally:
        app.state.auth_limiter = ClientLimiter(10, 60.0)


def test_database_and_key_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        from feederdao.store.db import Database

        db = Database(f"sqlite:///{tmp_path / 'm.db'}")
        keys = ApiKeys(db)
        (tmp_path / "w").mkdir()
        (tmp_path / "w" / "operator.key").write_text("old")  # left over with mode 0644
        path = keys.bootstrap_operator_key(tmp_path / "w")
        assert path is not None
        for p in (tmp_path / "m.db", tmp_path / "m.db-wal", tmp_path / "m.db-shm", path):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        db.dispose()
        (tmp_path / "m.db").chmod(0o644)  # made by hand, or by an older version
        Database(f"sqlite:///{tmp_path / 'm.db'}").dispose()
        assert stat.S_IMODE((tmp_path / "m.db").stat().st_mode) == 0o600
    finally:
        os.umask(old)


# -- escalations: the public sees the step and a reason code, never the SQL ---------------------

FREEZE_PRICES = {
    "sqlite": [
        "CREATE TRIGGER freeze_prices BEFORE INSERT ON prices "
        "BEGIN SELECT RAISE(ABORT, 'prices are frozen'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION freeze_prices() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'prices are frozen'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER freeze_prices BEFORE INSERT ON prices "
        "FOR EACH ROW EXECUTE FUNCTION freeze_prices()",
    ],
}


def test_health_names_the_failing_step_not_its_sql(database_url: str, tmp_path: Path) -> None:
    env = make_env(database_url, str(tmp_path), max_attempts=1)
    try:
        c, op = env.client, env.auth("operator")
        buyer = env.join(DeviceKind.LOAD)
        iv = env.open_interval(NOON)
        r = c.post("/bids/signed", json=env.signed_bid(buyer, iv, [(400.0, 0.003)]))
        assert r.status_code == 201
        env.clock.now = GATE
        assert c.post(f"/intervals/{iv}/gate-closure", headers=op).status_code == 200
        with env.service.db.engine.begin() as conn:
            for statement in FREEZE_PRICES[env.service.db.engine.dialect.name]:
                conn.exec_driver_sql(statement)
        r = c.post(f"/intervals/{iv}/clear", headers=op)
        assert r.status_code == 503, r.text
        assert "INSERT" not in r.text and "prices" not in r.text.replace("prices are", "")
        public = c.get("/health")
        assert public.status_code == 503
        assert public.json()["escalations"] == [
            {"interval_id": iv, "step": "clear", "reason": "store", "detail": None}
        ]
        assert "escalated" in public.json()["problems"]
        for leak in ("INSERT", "SELECT", "dlmp", "parameters", "[SQL"):
            assert leak not in public.text, leak
        seen = c.get("/health", headers=op).json()["escalations"][0]
        assert seen["detail"] and seen["reason"] == "store"
        steps = c.get(f"/intervals/{iv}/steps", headers=op).json()
        assert [(s["step"], s["status"], s["reason"]) for s in steps] == [
            ("clear", "failed", "store"),
            ("clear", "escalated", "store"),
        ]
        assert "INSERT" not in str(steps)  # not even operators get the statement and its values
    finally:
        env.service.db.dispose()


# -- one deployment's signatures, and its anchors across restarts ------------------------------


def test_signatures_and_anchors_belong_to_one_deployment(database_url: str, tmp_path: Path) -> None:
    a = make_env(database_url, str(tmp_path / "a"))
    b = make_env(f"sqlite:///{tmp_path / 'b.db'}", str(tmp_path / "b"))
    try:
        domain_a, domain_b = a.service.ctx.domain, b.service.ctx.domain
        assert domain_a.as_dict() != domain_b.as_dict()
        assert a.client.get("/market").json()["eip712_domain"] == domain_a.as_dict()
        # a registration and a bid signed for deployment a are refused by deployment b
        acct = Account.create()
        bus, dev = a.free_device()
        r = b.client.post("/participants", json=a.registration(acct, "x", bus, [dev]))
        assert r.status_code == 401, r.text
        member = a.join()
        iv_a = a.open_interval(NOON)
        signed = a.signed_bid(member, iv_a, [(400.0, 0.003)])
        assert a.client.post("/bids/signed", json=signed).status_code == 201
        r = b.client.post("/bids/signed", json=signed)
        assert r.status_code in (401, 403), r.text  # another signer, or no such participant
        # the same bid signed in b's domain by the same wallet is b's to judge
        msg = signed["message"]
        sig_b = sign(member.account.key, domain_b, "Bid", msg)
        assert (
            b.client.post("/bids/signed", json={"message": msg, "signature": sig_b})
            .json()["error"]
            .startswith("address")
        )  # not registered in b

        # an interval of a is anchored, then a restarts (the embedded chain starts afresh)
        op = a.auth("operator")
        a.clock.now = GATE
        assert a.client.post(f"/intervals/{iv_a}/gate-closure", headers=op).status_code == 200
        assert a.client.post(f"/intervals/{iv_a}/clear", headers=op).status_code == 200
        assert a.client.post(f"/intervals/{iv_a}/anchor", headers=op).status_code == 200
        assert a.client.post(f"/intervals/{iv_a}/publish", headers=op).status_code == 200
        before = a.client.get(f"/intervals/{iv_a}/anchor").json()
        assert before["verified"] is True and before["reason"] is None
        a.service.db.dispose()
        again = make_env(database_url, str(tmp_path / "a"))
        try:
            assert again.service.ctx.domain == domain_a  # same deployment, same domain
            after = again.client.get(f"/intervals/{iv_a}/anchor").json()
            assert after["verified"] is False and after["reason"], after
            assert "chain" in after["reason"]
            assert after["transaction"] == before["transaction"]  # the record is kept
            # a signed bid replayed after the restart is still the same bid
            assert again.client.post("/bids/signed", json=signed).status_code == 200
        finally:
            again.service.db.dispose()
    finally:
        a.service.db.dispose()
        b.service.db.dispose()
