"""A root the guardian rejects has a way forward: the loop sees the rejection and escalates
``finalise`` at once (``root-rejected`` in /health); the operator resolves the interval's
recorded conflict, adds a missing reading and re-settles it (API and ``feederdao settle
resettle``); the loop posts the new root, finalises it after a fresh challenge window, and a
participant withdraws exactly the corrected position. Re-settling an interval whose root was
not rejected, or one that is not the latest settled, is refused and changes nothing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from typer.testing import CliRunner

from feederdao.cli.main import app
from feederdao.domain.network import DeviceKind
from feederdao.governance.chain import DevChain
from feederdao.governance.merkle import PositionTree
from feederdao.store import repositories as repo
from feederdao.workflows.metering import reading_for, sign_reading, verify_evidence
from tests.api.conftest import Env, make_env
from tests.api.test_collateral import deposit

runner = CliRunner()
BASE = "http://market.test"


def test_a_rejected_root_is_escalated_resettled_posted_and_final(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_env(
        database_url, str(tmp_path), embedded_vault=True, max_attempts=3, retry_delay_s=1.0
    )

    def post(url: str, **kw: Any) -> httpx.Response:  # the CLI's requests reach the real app
        assert url.startswith(BASE)
        kw.pop("timeout", None)
        answer: httpx.Response = env.client.post(url.removeprefix(BASE), **kw)
        return answer

    monkeypatch.setattr(httpx, "post", post)
    try:
        asyncio.run(_run(env, tmp_path))
    finally:
        env.service.db.dispose()


def _cli(env: Env, *args: str) -> Any:
    key = env.keys["operator"]
    return runner.invoke(app, ["settle", "resettle", *args, "--url", BASE, "--api-key", key])


async def _run(env: Env, tmp_path: Path) -> None:
    svc, op, c = env.service, env.operator, env.client
    chain = svc.chain
    assert chain is not None and chain.vault is not None
    vault = chain.vault
    operator = env.auth("operator")
    env.clock.now = datetime(2026, 6, 21, 10, 50, tzinfo=UTC)
    await op.tick()  # opens the interval 11:00–12:00 (gate 10:55)
    iv = c.get("/intervals").json()[0]["id"]
    buyer, seller = env.join(DeviceKind.LOAD), env.join(DeviceKind.PV)
    deposit(env, buyer, 5_000_000)
    deposit(env, seller, 1_000_000)
    for t in range(4):
        for b in (
            env.signed_bid(buyer, iv, [(400.0, 0.003)], period=t),
            env.signed_bid(seller, iv, [(1.0, 0.004)], "sell", period=t),
        ):
            assert c.post("/bids/signed", json=b).status_code == 201
    keys = {}
    for m in (buyer, seller):
        meter = Account.create()
        keys[m.device] = meter
        reg = {"meter": meter.address, "participant_id": m.id, "devices": [m.device]}
        assert c.post("/meters", json=reg, headers=operator).status_code == 201
    env.clock.now = datetime(2026, 6, 21, 10, 55, tzinfo=UTC)
    await op.tick()  # gate closes, clears, anchors, publishes
    assert c.get(f"/intervals/{iv}").json()["state"] == "published"

    schedule = {}
    for d in svc.results.dispatch(iv):
        if d.device_id in keys:
            sign = 1 if d.device_id == seller.device else -1
            schedule[(d.device_id, d.period)] = round(sign * d.p_mw * 0.25e6)

    def signed(dev: str, t: int, wh: int, seq: int) -> Any:
        return sign_reading(
            keys[dev].key, svc.ctx.domain, reading_for(keys[dev].address, iv, t, dev, wh, seq)
        )

    # the PV meter first reports period 0 short by 1,000 Wh, then (its second reading, kept as
    # a conflict) as delivered; its period 3 never arrives (settled on schedule)
    readings = [
        signed(dev, t, wh - 1000 if (dev, t) == (seller.device, 0) else wh, t + 1)
        for (dev, t), wh in sorted(schedule.items())
        if (dev, t) != (seller.device, 3)
    ]
    assert op.metering.ingest(readings).accepted == 7
    right = signed(seller.device, 0, schedule[(seller.device, 0)], 9)
    assert c.post("/readings", json={"readings": [asdict(right)]}).status_code == 422
    assert len(op.metering.conflicts(iv)) == 1

    env.clock.now = datetime(2026, 6, 21, 13, 0, 1, tzinfo=UTC)
    await op.tick()  # settles and posts the root
    with svc.db.read() as s:
        first = repo.metered_settlement(s, iv)
        assert first is not None and first.posted_tx is not None
    assert vault.posted(iv).root.hex() == first.root[2:]

    # a root that was not rejected is not re-settled
    r = c.post(f"/intervals/{iv}/resettle", headers=operator)
    assert r.status_code == 409, r.text
    assert "is posted and not rejected" in r.json()["error"]
    out = _cli(env, "--interval", str(iv))
    assert out.exit_code == 2 and "refused the re-settlement (409)" in out.output
    assert "only an interval whose root the guardian or the DAO rejected" in out.output

    # the guardian rejects it: the loop escalates finalise at once, with its reason
    vault.reject(chain.dao.addresses.guardian, iv)
    env.clock.now += timedelta(seconds=2)
    await op.tick()
    with svc.db.read() as s:
        assert repo.step_status(s, iv, "finalise") == "escalated"
        assert repo.attempts(s, iv, "finalise") == 2  # the failure and its escalation
    health = c.get("/health", headers=operator).json()
    shown = [e for e in health["escalations"] if e["interval_id"] == iv]
    assert [(e["step"], e["reason"]) for e in shown] == [("finalise", "root-rejected")]
    assert "re-settle it" in shown[0]["detail"] and f"--interval {iv}" in shown[0]["detail"]
    public = c.get("/health").json()["escalations"]
    assert [e["reason"] for e in public if e["interval_id"] == iv] == ["root-rejected"]
    env.clock.now += timedelta(seconds=60)
    await op.tick()  # escalated: waits for the operator
    with svc.db.read() as s:
        assert repo.attempts(s, iv, "finalise") == 2

    # nothing corrected: the same root again is refused; so is a reading the store never held
    r = c.post(f"/intervals/{iv}/resettle", headers=operator)
    assert r.status_code == 409 and "gives the rejected root" in r.json()["error"]
    forged = signed(seller.device, 0, schedule[(seller.device, 0)] - 1, 10)
    r = c.post(f"/intervals/{iv}/resettle", json={"readings": [asdict(forged)]}, headers=operator)
    assert r.status_code == 422 and "not a conflict the store recorded" in r.json()["error"]
    with svc.db.read() as s:
        unchanged = repo.metered_settlement(s, iv)
        assert unchanged is not None and unchanged.root == first.root

    # the operator resolves the conflict and adds the missing reading, through the CLI
    late = signed(seller.device, 3, schedule[(seller.device, 3)] - 200, 4)
    corrections = tmp_path / "corrections.jsonl"
    corrections.write_text(json.dumps(asdict(right)) + "\n" + json.dumps(asdict(late)) + "\n")
    out = _cli(env, "--interval", str(iv), "--readings", str(corrections))
    assert out.exit_code == 0, out.output
    assert "substituted by the schedule: 0 device-period(s)" in out.output
    with svc.db.read() as s:
        fixed = repo.metered_settlement(s, iv)
        assert fixed is not None and fixed.root != first.root
        assert fixed.substituted == [] and fixed.posted_tx is None
    assert f"root: {fixed.root}" in out.output
    assert op.metering.conflicts(iv) == []  # resolved
    held = {(x.device, x.period): x for x in op.metering.readings(iv)}
    assert held[(seller.device, 0)] == right and held[(seller.device, 3)] == late
    doc = c.get(f"/intervals/{iv}/metered-settlement", headers=operator).json()["evidence"]
    check, settled = verify_evidence(doc)
    assert check.matches and check.computed_root == fixed.root and check.readings == 8
    assert [e for e in op.escalations() if e.interval_id == iv] == []

    # the loop posts the new root: a fresh challenge window, then final
    old_window = vault.posted(iv).final_after
    env.clock.now += timedelta(seconds=2)
    await op.tick()
    posted = vault.posted(iv)
    assert posted.root.hex() == fixed.root[2:] and not posted.rejected
    assert posted.final_after > old_window
    with svc.db.read() as s:
        assert repo.step_status(s, iv, "post-root") == "ok"
        assert repo.step_status(s, iv, "finalise") == "redo"  # due, but the window is open
    DevChain(chain.w3).advance_time(vault.challenge_window_s() + 1)
    env.clock.now += timedelta(seconds=2)
    await op.tick()
    with svc.db.read() as s:
        assert repo.step_status(s, iv, "finalise") == "ok"
    assert vault.final() == (iv, bytes.fromhex(fixed.root[2:]))

    # withdrawals follow the corrected settlement, to the token's smallest unit
    positions = {k: int(v) for k, v in fixed.positions.items()}
    assert positions == settled.positions and sum(positions.values()) == 0
    assert positions != {k: int(v) for k, v in first.positions.items()}
    tree = PositionTree.build(positions)
    # the operator, counterparty of both, holds collateral for its own debit
    vault.mint(chain.w3.eth.accounts[0], chain.operator, 5_000_000)
    vault.deposit(chain.operator, 5_000_000)
    for m, deposited in ((buyer, 5_000_000), (seller, 1_000_000)):
        who = m.account.address
        owed = deposited + positions[who.lower()]
        vault.request_withdrawal(who, owed)
        DevChain(chain.w3).advance_time(vault.notice_base_s() + vault.challenge_window_s() + 1)
        before = vault.balance(who).wallet
        vault.withdraw(who, owed, positions[who.lower()], tree.proof(who))
        assert vault.balance(who).wallet == before + owed

    # once a later interval is settled, this one is no longer the latest: refused
    later = env.open_interval(datetime(2026, 6, 22, 11, 0, tzinfo=UTC))
    with svc.db.session() as s:
        repo.save_metered_settlement(s, later, "0x" + "22" * 32, positions, [], [], 0)
    r = c.post(f"/intervals/{iv}/resettle", headers=operator)
    assert r.status_code == 409
    assert f"not the latest settled interval (interval {later} is)" in r.json()["error"]
