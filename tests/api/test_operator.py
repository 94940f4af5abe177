"""The operator loop end to end: open, gate closure, clear, anchor, publish over OPC UA, push to
the feeder simulator; a failing step is retried, escalated, shown by /health, and recovered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from feederdao.domain.network import DeviceKind
from feederdao.grid_model.profiles import build_profiles
from feederdao.scada_bridge.bridge import Bridge
from feederdao.scada_bridge.server import MarketServer
from feederdao.store import repositories as repo
from feederdao.workflows.dispatch import simulated_feeder
from feederdao.workflows.market import ServiceSettings
from tests.api.conftest import make_env
from tests.scada_bridge.conftest import free_port


def test_operator_loop(database_url: str, tmp_path: Path) -> None:
    env = make_env(
        database_url,
        str(tmp_path),
        max_attempts=2,
        retry_delay_s=1.0,
    )
    # the feeder's outage is the same on either store: it runs once
    asyncio.run(_run(env, tmp_path, outage=database_url.startswith("sqlite")))


async def _run(env, tmp_path: Path, outage: bool) -> None:  # type: ignore[no-untyped-def]
    from feederdao.api.serve import _market_server

    svc, op, c = env.service, env.operator, env.client
    svc.settings = ServiceSettings(
        **{**svc.settings.__dict__, "market_endpoint": f"opc.tcp://127.0.0.1:{free_port()}/m"}
    )
    op.settings = svc.settings
    env.clock.now = datetime(2026, 6, 21, 10, 50, tzinfo=UTC)
    profiles = build_profiles(svc.network.loaded, svc.network.view, datetime(2016, 6, 21, 11), 1)
    async with (
        _market_server(svc.settings, tmp_path) as market,
        simulated_feeder(svc.network, profiles, 0, tmp_path) as feeder,
        Bridge(feeder.nodemap, feeder.client, op.audit) as bridge,
    ):
        assert isinstance(market, MarketServer)
        op.publisher, op.bridge = market, bridge
        await op.tick()  # opens the interval starting at 11:00 (gate 10:55)
        intervals = c.get("/intervals").json()
        assert [(i["start"], i["state"]) for i in intervals] == [("2026-06-21T11:00:00Z", "open")]
        iv = intervals[0]["id"]
        buyer, seller = env.join(DeviceKind.LOAD), env.join(DeviceKind.PV)
        for t in range(4):
            assert (
                c.post(
                    "/bids/signed", json=env.signed_bid(buyer, iv, [(400.0, 0.003)], period=t)
                ).status_code
                == 201
            )
            assert (
                c.post(
                    "/bids/signed",
                    json=env.signed_bid(seller, iv, [(1.0, 0.004)], "sell", period=t),
                ).status_code
                == 201
            )

        # a broken anchoring account: anchoring fails, is retried after the back-off, escalates
        chain = svc.chain
        good_operator = chain.operator
        chain.operator = chain.w3.eth.accounts[7]
        env.clock.now = datetime(2026, 6, 21, 10, 55, tzinfo=UTC)
        await op.tick()  # gate closes, clears, anchor fails (attempt 1)
        assert c.get(f"/intervals/{iv}").json()["state"] == "cleared"
        await op.tick()  # back-off not over: no new attempt
        with svc.db.session() as s:
            assert repo.attempts(s, iv, "anchor") == 1
        env.clock.now += timedelta(seconds=2)
        await op.tick()  # attempt 2 fails: escalated
        health = c.get("/health")
        assert health.status_code == 503
        # anyone sees the step and its reason code; the message only with a key
        assert health.json()["escalations"] == [
            {"interval_id": iv, "step": "anchor", "reason": "chain", "detail": None}
        ]
        assert "NotOperator" not in health.text
        seen = c.get("/health", headers=env.auth("auditor")).json()["escalations"][0]
        assert "NotOperator" in seen["detail"]
        env.clock.now += timedelta(seconds=60)
        await op.tick()  # escalated steps are not retried by the loop
        with svc.db.session() as s:
            assert [r.status for r in repo.steps_of(s, iv) if r.step == "anchor"] == [
                "failed",
                "failed",
                "escalated",
            ]
        assert (
            'feederdao_operator_steps_total{status="escalated",step="anchor"} 1.0'
            in c.get("/metrics").text
        )

        # the operator fixes the account and retries by hand; the loop then publishes
        chain.operator = good_operator
        r = c.post(f"/intervals/{iv}/anchor", headers=env.auth("operator"))
        assert r.status_code == 200, r.text
        assert c.get("/health").json()["status"] == "ok"
        await op.tick()
        assert c.get(f"/intervals/{iv}").json()["state"] == "published"

        # SCADA reads the published prices over OPC UA
        assert await market._nodes["Interval"].read_value() == f"interval-{iv}"
        dlmp = await market._nodes[f"dlmp.{buyer.bus}"].read_value()
        prices = c.get(f"/intervals/{iv}/prices", params={"bus": buyer.bus}).json()
        assert dlmp == pytest.approx([p["dlmp"] for p in prices])

        # delivery: at 11:00 period 0 is pushed, at 11:15 period 1
        env.clock.now = datetime(2026, 6, 21, 11, 0, 30, tzinfo=UTC)
        await op.tick()
        env.clock.now = datetime(2026, 6, 21, 11, 15, 10, tzinfo=UTC)
        await op.tick()
        with svc.db.session() as s:
            pushed = [(r.step, r.status) for r in repo.steps_of(s, iv) if r.step.startswith("push")]
        assert pushed == [("push:0", "ok"), ("push:1", "ok")]
        audit = c.get(
            "/audit/commands", params={"event": "command"}, headers=env.auth("auditor")
        ).json()
        cycles = {a["fields"]["cycle"] for a in audit}
        assert cycles == {f"interval-{iv}-p0", f"interval-{iv}-p1"}
        # the equipment read back the scheduled value of each period
        for t in (0, 1):
            scheduled = {sp.device_id: sp.p_mw for sp in svc.results.setpoints(iv, t)}
            confirmed = {
                a["fields"]["device"]: a["fields"]["read_back_mw"]
                for a in audit
                if a["fields"]["cycle"] == f"interval-{iv}-p{t}"
            }
            assert confirmed == pytest.approx(scheduled, abs=1e-6)
            assert all(a["fields"]["status"] == "Good" for a in audit)
        # the next interval was opened on the way
        assert "2026-06-21T12:00:00Z" in [i["start"] for i in c.get("/intervals").json()]

        if outage:
            await _outage(env, iv, feeder, bridge)
    env.service.db.dispose()


async def _outage(env, iv: int, feeder, bridge: Bridge) -> None:  # type: ignore[no-untyped-def]
    """The feeder goes down during the interval: escalated pushes, an operator's retry once it is
    back, and the acknowledgement of a push whose period is over."""
    svc, op, c = env.service, env.operator, env.client
    # the feeder goes down: period 2's push fails twice and is escalated
    bridge.reconnect_attempts, bridge.backoff_s = 1, 0.05
    await feeder.simulator.stop()
    env.clock.now = datetime(2026, 6, 21, 11, 30, 5, tzinfo=UTC)
    await op.tick()
    env.clock.now += timedelta(seconds=2)
    await op.tick()
    escalated = c.get("/health").json()["escalations"]
    assert escalated == [{"interval_id": iv, "step": "push:2", "reason": "opcua", "detail": None}]
    operator = env.auth("operator")
    # the console's list: with the message, 200 whatever the health; operators and auditors only
    listed = c.get("/escalations", headers=operator).json()
    assert [e["step"] for e in listed] == ["push:2"] and "unreachable" in listed[0]["detail"]
    assert c.get("/escalations").status_code == 401
    # pushes run on this event loop, with the simulator's server: an in-process ASGI client
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=c.app), base_url="http://api")
    # a retry while it is still down is recorded and answered with the bridge's error
    r = await api.post(f"/intervals/{iv}/push/2", headers=operator)
    assert r.status_code == 400 and "not confirmed" in r.json()["error"], r.text
    # a period that is over, or not begun, is not pushed: its setpoints are out of date
    for period, when in ((1, "ended"), (3, "has not begun")):
        r = await api.post(f"/intervals/{iv}/push/{period}", headers=operator)
        assert r.status_code == 409 and when in r.json()["error"], r.text
    r = await api.post(f"/intervals/{iv}/push/9", headers=operator)
    assert r.status_code == 422 and r.json()["field"] == "period", r.text
    assert (await api.post(f"/intervals/{iv}/push/2")).status_code == 401
    auditor = env.auth("auditor")
    assert (await api.post(f"/intervals/{iv}/push/2", headers=auditor)).status_code == 403
    # the feeder is back: the operator's retry pushes period 2 and clears the escalation
    await feeder.simulator.start()
    r = await api.post(f"/intervals/{iv}/push/2", headers=operator)
    assert r.status_code == 200, r.text
    assert [s["status"] for s in r.json() if s["step"] == "push:2"][-1] == "ok"
    assert c.get("/health").json()["escalations"] == []

    # period 3's push escalates too, and is not retried once its period is over: the
    # operator acknowledges it, with who and why on record
    await feeder.simulator.stop()
    env.clock.now = datetime(2026, 6, 21, 11, 45, 5, tzinfo=UTC)
    await op.tick()
    env.clock.now += timedelta(seconds=2)
    await op.tick()
    assert [e["step"] for e in c.get("/health").json()["escalations"]] == ["push:3"]
    env.clock.now = datetime(2026, 6, 21, 12, 0, 5, tzinfo=UTC)
    r = await api.post(f"/intervals/{iv}/push/3", headers=operator)
    assert r.status_code == 409 and "acknowledge the escalation" in r.json()["error"]
    ack = f"/intervals/{iv}/steps/push:3/acknowledge"
    r = c.post(ack, json={"note": "feeder RTU down, crew on site"}, headers=operator)
    assert r.status_code == 200, r.text
    last = [s for s in r.json() if s["step"] == "push:3"][-1]
    assert last["status"] == "acknowledged"
    assert last["detail"].endswith(": feeder RTU down, crew on site")
    assert c.get("/health").json()["escalations"] == []
    r = c.post(ack, json={}, headers=operator)
    assert r.status_code == 409 and "not escalated" in r.json()["error"]
    r = c.post(f"/intervals/{iv}/steps/push:0/acknowledge", json={}, headers=operator)
    assert r.status_code == 409 and "is ok, not escalated" in r.json()["error"]
    await feeder.simulator.start()
    await op.tick()  # an acknowledged step is not run again
    with svc.db.session() as s:
        assert [r.status for r in repo.steps_of(s, iv) if r.step == "push:3"] == [
            "failed",
            "failed",
            "escalated",
            "acknowledged",
        ]
