"""The operator loop settles metered deliveries on the embedded chain: after the metering
window it settles the interval from the anchored clearing and the stored readings, posts the
root to the vault, finalises it after the challenge window; a failing step is retried,
escalated and recovered like the others; a participant withdraws exactly its position."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feederdao.domain.network import DeviceKind
from feederdao.governance.chain import DevChain
from feederdao.governance.merkle import PositionTree
from feederdao.store import repositories as repo
from feederdao.workflows.metering import reading_for, sign_reading, verify_evidence
from tests.api.conftest import Env, make_env
from tests.api.test_collateral import deposit


def test_the_loop_settles_posts_and_finalises(database_url: str, tmp_path: Path) -> None:
    env = make_env(
        database_url, str(tmp_path), embedded_vault=True, max_attempts=2, retry_delay_s=1.0
    )
    try:
        asyncio.run(_run(env))
    finally:
        env.service.db.dispose()


async def _run(env: Env) -> None:
    svc, op, c = env.service, env.operator, env.client
    chain = svc.chain
    assert chain is not None and chain.vault is not None
    vault = chain.vault
    env.clock.now = datetime(2026, 6, 21, 10, 50, tzinfo=UTC)
    await op.tick()  # opens the interval 11:00–12:00 (gate 10:55)
    iv = c.get("/intervals").json()[0]["id"]
    buyer, seller = env.join(DeviceKind.LOAD), env.join(DeviceKind.PV)
    deposit(env, buyer, 5_000_000)
    env.trade_each_period(buyer, seller, iv, 4)
    keys = env.register_meters(buyer, seller)

    env.clock.now = datetime(2026, 6, 21, 10, 55, tzinfo=UTC)
    await op.tick()  # gate closes, clears, anchors, publishes
    assert c.get(f"/intervals/{iv}").json()["state"] == "published"

    # the meters report: the load as scheduled, the PV 100 Wh short in periods 0–2 and
    # silent in period 3 (settled on its schedule, flagged)
    wh_per_mw = 0.25 * 1e6
    schedule = {}
    for d in svc.results.dispatch(iv):
        if d.device_id in keys:
            sign = 1 if d.device_id == seller.device else -1
            schedule[(d.device_id, d.period)] = round(sign * d.p_mw * wh_per_mw)
    readings = []
    for (dev, t), wh in sorted(schedule.items()):
        if dev == seller.device and t == 3:
            continue
        delivered = wh - 100 if dev == seller.device else wh
        meter = keys[dev]
        r = reading_for(meter.address, iv, t, dev, delivered, t + 1)
        readings.append(sign_reading(meter.key, svc.ctx.domain, r))
    assert op.metering.ingest(readings).accepted == 7

    env.clock.now = datetime(2026, 6, 21, 12, 30, tzinfo=UTC)
    await op.tick()  # the metering window is still open: nothing settled
    with svc.db.read() as s:
        assert repo.step_status(s, iv, "settle") is None

    # a wrong account posts the root: the vault refuses it, the step is retried, escalated
    good_operator = chain.operator
    chain.operator = list(chain.w3.eth.accounts)[7]
    env.clock.now = datetime(2026, 6, 21, 13, 0, 1, tzinfo=UTC)
    await op.tick()  # settles; post-root fails (attempt 1)
    with svc.db.read() as s:
        assert repo.step_status(s, iv, "settle") == "ok"
        assert repo.step_status(s, iv, "post-root") == "failed"
        settled = repo.metered_settlement(s, iv)
        assert settled is not None
        assert settled.substituted == [[seller.device, 3]]
        assert settled.posted_tx is None
    env.clock.now += timedelta(seconds=2)
    await op.tick()  # attempt 2: escalated
    # (the loop opens the next intervals meanwhile; only this one's steps matter here)
    escalated = [e for e in op.escalations() if e.interval_id == iv]
    assert [e.step for e in escalated] == ["post-root"]
    assert "NotOperator" in escalated[0].detail
    env.clock.now += timedelta(seconds=60)
    await op.tick()  # escalated steps wait for the operator
    with svc.db.read() as s:
        assert repo.attempts(s, iv, "post-root") == 3  # two failures and the escalation
    chain.operator = good_operator
    operator = env.auth("operator")
    r = c.post(f"/intervals/{iv}/post-root", headers=operator)  # the operator retries it
    assert r.status_code == 200, r.text
    assert [e for e in op.escalations() if e.interval_id == iv] == []
    assert vault.posted(iv).root.hex() == settled.root[2:]

    # the evidence the loop stored recomputes the root
    shown = c.get(f"/intervals/{iv}/metered-settlement", headers=env.auth("auditor")).json()
    assert shown["root"] == settled.root and shown["posted_tx"] == r.json()["transaction"]
    doc = shown["evidence"]
    check, _ = verify_evidence(doc)
    assert check.matches and check.computed_root == settled.root
    assert check.readings == 7 and check.substituted == 1

    # not final before the challenge window has passed on the chain's clock
    env.clock.now += timedelta(seconds=2)
    await op.tick()
    with svc.db.read() as s:
        assert repo.step_status(s, iv, "finalise") is None
    DevChain(chain.w3).advance_time(vault.challenge_window_s() + 1)
    await op.tick()
    with svc.db.read() as s:
        assert repo.step_status(s, iv, "finalise") == "ok"
        final = repo.metered_settlement(s, iv)
        assert final is not None and final.finalised_tx is not None
    assert vault.final() == (iv, bytes.fromhex(settled.root[2:]))

    # the books balance and the buyer withdraws exactly deposit + position
    positions = {k: int(v) for k, v in settled.positions.items()}
    assert sum(positions.values()) == 0
    who = buyer.account.address
    position = positions[who.lower()]
    assert position < 0  # it bought energy
    proof = PositionTree.build(positions).proof(who)
    assert vault.available(who, position, proof) == 5_000_000 + position
    vault.request_withdrawal(who, 5_000_000 + position)
    DevChain(chain.w3).advance_time(vault.notice_base_s() + vault.challenge_window_s() + 1)
    before = vault.balance(who).wallet
    vault.withdraw(who, 5_000_000 + position, position, proof)
    assert vault.balance(who).wallet == before + 5_000_000 + position
