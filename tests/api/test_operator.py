"""The operator loop end to end: open, gate closure, clear, anchor, publish over OPC UA, push to
the feeder simulator; a failing step is retried, escalated, shown by /health, and recovered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    asyncio.run(_run(env, tmp_path))


async def _run(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
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
    env.service.db.dispose()
