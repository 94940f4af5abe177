"""The bridge against the feeder simulator, both real asyncua peers on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from feederdao.domain.clearing import Setpoint
from feederdao.grid_model import run_power_flow
from feederdao.scada_bridge.audit import AuditLog
from feederdao.scada_bridge.bridge import Bridge
from feederdao.scada_bridge.errors import BridgeError, InsecureEndpointError
from feederdao.scada_bridge.security import ClientSecurity
from feederdao.workflows.clearing import clear_market, open_market
from tests.scada_bridge.conftest import Pki, client_security, nodemap, simulator


def test_clearing_setpoints_arrive_and_voltages_match_pandapower(pki: Pki, tmp_path: Path) -> None:
    market = open_market(
        "1-LV-rural1--2-sw", periods=1, start=__import__("datetime").datetime(2016, 6, 21, 12)
    )
    result = clear_market(market)
    setpoints = result.setpoints_for(0)
    assert setpoints

    async def scenario() -> None:
        sim = simulator(market.network, pki)
        async with sim:
            async with Bridge(
                nodemap(sim), client_security(pki), AuditLog(tmp_path / "a.jsonl")
            ) as bridge:
                report = await bridge.push("cycle-1", setpoints)
                assert report.ok, report.failed
                assert all(
                    abs(d.read_back_mw - sp.p_mw) <= 1e-6  # type: ignore[operator]
                    for d, sp in zip(report.devices, setpoints, strict=True)
                )
                await asyncio.sleep(0.3)  # a few simulator cycles
            for sp in setpoints:
                dev = sim.devices[sp.device_id]
                assert dev.actual_p == pytest.approx(sp.p_mw)
                assert dev.applied == [f"cycle-1/{sp.device_id}"]
            flow = run_power_flow(
                market.network.loaded.net,
                market.network.view,
                {sp.device_id: sp.p_mw for sp in setpoints},
                {sp.device_id: sp.q_mvar for sp in setpoints},
            )
            np.testing.assert_allclose(sim.vm_pu, flow.vm_pu[0], atol=1e-9)

    asyncio.run(scenario())


def test_server_restart_mid_push_repushes_once_without_duplicates(
    lv_rural,
    pki: Pki,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")

    async def scenario() -> None:
        sim = simulator(lv_rural, pki)
        await sim.start()
        ids = list(sim.devices)
        first = [Setpoint(d, 0, 0, sim.devices[d].p_max_mw * 0.5, 0.0) for d in ids]
        second = [Setpoint(d, 0, 0, sim.devices[d].p_max_mw * 0.25, 0.0) for d in ids]
        bridge = Bridge(nodemap(sim), client_security(pki), audit, backoff_s=0.2)
        await bridge.connect()
        assert (await bridge.push("c1", first)).ok
        await asyncio.sleep(0.2)
        await sim.stop()  # the server goes down: the next push finds a dead connection

        async def restart() -> None:
            await asyncio.sleep(0.6)
            await sim.start()

        restarting = asyncio.create_task(restart())
        report = await bridge.push("c2", second)
        await restarting
        assert report.repushed and report.ok, report.failed
        # the bridge re-sends a cycle whose fate it does not know: equipment ignores it
        again = await bridge.push("c2", second)
        assert again.ok
        await asyncio.sleep(0.3)
        for d in ids:
            assert sim.devices[d].applied == [f"c1/{d}", f"c2/{d}"]  # each command once
            assert sim.devices[d].actual_p == pytest.approx(sim.devices[d].p_max_mw * 0.25)
        await bridge.close()
        await sim.stop()

    asyncio.run(scenario())
    events = [r["event"] for r in audit.records()]
    assert "push-interrupted" in events and "reconnected" in events
    assert events.count("re-push") == 1
    assert len(audit.records("command")) == 3 * 41  # 8 PV, 5 storage, 28 loads


def test_a_rejected_write_is_reported_for_that_device_only(
    lv_rural,
    pki: Pki,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    async def scenario() -> None:
        sim = simulator(lv_rural, pki, read_only=("storage:0",))
        async with (
            sim,
            Bridge(nodemap(sim), client_security(pki), AuditLog(tmp_path / "a.jsonl")) as bridge,
        ):
            sps = [Setpoint(d, 0, 0, 0.0, 0.0) for d in sim.devices]
            report = await bridge.push("c1", sps)
            failed = {d.device_id: d.status for d in report.failed}
            assert list(failed) == ["storage:0"]
            assert "BadNotWritable" in failed["storage:0"] or "Denied" in failed["storage:0"]
            await asyncio.sleep(0.2)
            assert sim.devices["sgen:0"].applied == ["c1/sgen:0"]

    asyncio.run(scenario())


def test_setpoint_outside_nameplate_is_refused_not_clipped(
    lv_rural,
    pki: Pki,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    async def scenario() -> None:
        sim = simulator(lv_rural, pki)
        async with (
            sim,
            Bridge(nodemap(sim), client_security(pki), AuditLog(tmp_path / "a.jsonl")) as bridge,
        ):
            too_much = sim.devices["sgen:0"].p_max_mw * 2
            report = await bridge.push(
                "c1", [Setpoint("sgen:0", 0, 0, too_much, 0.0), Setpoint("sgen:1", 0, 0, 0.01, 0.0)]
            )
            bad = {d.device_id: d.status for d in report.failed}
            assert "outside nameplate" in bad["sgen:0"] and "refused, not clipped" in bad["sgen:0"]
            await asyncio.sleep(0.2)
            assert sim.devices["sgen:0"].applied == []
            assert sim.devices["sgen:1"].applied == ["c1/sgen:1"]

    asyncio.run(scenario())


def test_devices_revert_when_the_heartbeat_stops(
    lv_rural,
    pki: Pki,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    async def scenario() -> None:
        sim = simulator(lv_rural, pki)
        async with sim:
            bridge = Bridge(
                nodemap(sim),
                client_security(pki),
                AuditLog(tmp_path / "a.jsonl"),
                reversion_timeout_s=0.5,
                heartbeat_period_s=0.1,
            )
            await bridge.connect()
            dev = sim.devices["sgen:1"]
            assert (await bridge.push("c1", [Setpoint("sgen:1", 0, 0, 0.001, 0.0)])).ok
            bridge.start_heartbeat()
            await asyncio.sleep(1.2)  # longer than the timeout, but the heartbeat keeps it
            assert not dev.reverted and dev.actual_p == pytest.approx(0.001)
            await bridge.stop_heartbeat()
            await asyncio.sleep(0.9)  # timeout 0.5 s, simulator cycle 0.05 s
            assert dev.reverted and dev.actual_p == pytest.approx(dev.default_p)
            await bridge.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("make_security", "message"),
    [
        (lambda pki: client_security(pki, password="wrong"), "cannot connect"),
        (
            lambda pki: ClientSecurity(
                "Basic256Sha256", pki.rogue_cert, pki.rogue_key, pki.server_cert, "dispatch", "x"
            ),
            "cannot connect",
        ),
        (
            lambda pki: ClientSecurity("None", username="dispatch", password="x"),
            "SecurityPolicy None is refused",
        ),
        (lambda pki: ClientSecurity("None", allow_insecure=True), "cannot connect"),
    ],
    ids=["wrong-password", "untrusted-certificate", "insecure-refused", "no-insecure-endpoint"],
)
def test_bad_credentials_and_insecure_endpoints_are_refused(
    lv_rural,
    pki: Pki,
    tmp_path: Path,
    make_security,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    async def scenario() -> None:
        sim = simulator(lv_rural, pki)
        async with sim:
            bridge = Bridge(
                nodemap(sim), make_security(pki), AuditLog(tmp_path / "a.jsonl"), timeout_s=2.0
            )
            with pytest.raises((BridgeError, InsecureEndpointError), match=message):
                await bridge.connect()
            await bridge.close()

    asyncio.run(scenario())


def test_a_viewer_may_read_but_not_write(lv_rural, pki: Pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        sim = simulator(lv_rural, pki)
        async with (
            sim,
            Bridge(
                nodemap(sim), client_security(pki, user="scada"), AuditLog(tmp_path / "a.jsonl")
            ) as bridge,
        ):
            report = await bridge.push("c1", [Setpoint("sgen:1", 0, 0, 0.001, 0.0)])
            assert not report.ok and "BadUserAccessDenied" in report.failed[0].status

    asyncio.run(scenario())


def test_a_command_past_its_validity_window_is_ignored(
    lv_rural,
    pki: Pki,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    async def scenario() -> None:
        sim = simulator(lv_rural, pki)
        async with (
            sim,
            Bridge(
                nodemap(sim), client_security(pki), AuditLog(tmp_path / "a.jsonl"), validity_s=-1.0
            ) as bridge,
        ):
            report = await bridge.push("late", [Setpoint("sgen:1", 0, 0, 0.001, 0.0)])
            assert report.ok  # written and read back …
            await asyncio.sleep(0.3)
            dev = sim.devices["sgen:1"]
            assert dev.expired == ["late/sgen:1"] and dev.applied == []  # … but never acted on

    asyncio.run(scenario())
