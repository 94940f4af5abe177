"""The bridge against the feeder simulator, both real asyncua peers on 127.0.0.1."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feederdao.domain.clearing import Setpoint
from feederdao.errors import FeederDaoError
from feederdao.grid_model import run_power_flow
from feederdao.scada_bridge.audit import AuditLog
from feederdao.scada_bridge.errors import BridgeError, ConnectionLostError, InsecureEndpointError
from feederdao.scada_bridge.nodemap import DeviceNodes
from feederdao.scada_bridge.security import ClientSecurity
from feederdao.workflows.clearing import clear_market, open_market
from tests.scada_bridge.conftest import Pki, StartBridge, StartSim, client_security

pytestmark = pytest.mark.anyio


async def test_clearing_setpoints_arrive_and_voltages_match_pandapower(
    start_sim: StartSim, start_bridge: StartBridge
) -> None:
    market = open_market("1-LV-rural1--2-sw", periods=1, start=datetime(2016, 6, 21, 12))
    result = clear_market(market)
    setpoints = result.setpoints_for(0)
    assert setpoints
    sim = await start_sim(market.network)
    bridge = await start_bridge(sim)
    report = await bridge.push("cycle-1", setpoints)
    assert report.ok, report.failed
    for d, sp in zip(report.devices, setpoints, strict=True):
        assert d.read_back_mw == pytest.approx(sp.p_mw, abs=1e-6)
        assert d.read_back_mvar == pytest.approx(sp.q_mvar, abs=1e-6)
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
    # the workflow reads the measured voltages through the bridge's public interface
    measured = await bridge.read([f"Buses.{b}.Vm_pu" for b in result.bus_indices])
    np.testing.assert_allclose(measured, sim.vm_pu, atol=1e-12)


async def test_server_restart_mid_push_repushes_once_without_duplicates(
    start_sim: StartSim, start_bridge: StartBridge, tmp_path: Path
) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    sim = await start_sim()
    ids = list(sim.devices)
    first = [Setpoint(d, 0, 0, sim.devices[d].p_max_mw * 0.5, 0.0) for d in ids]
    second = [Setpoint(d, 0, 0, sim.devices[d].p_max_mw * 0.25, 0.0) for d in ids]
    bridge = await start_bridge(sim, audit=audit, backoff_s=0.2)
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
    events = [r["event"] for r in audit.records()]
    assert "push-interrupted" in events and "reconnected" in events
    assert events.count("re-push") == 1
    assert len(audit.records("command")) == 3 * 41  # 8 PV, 5 storage, 28 loads


async def test_reconnect_attempts_exhausted_is_a_typed_error_and_every_command_is_audited(
    start_sim: StartSim, start_bridge: StartBridge, tmp_path: Path
) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    sim = await start_sim()
    bridge = await start_bridge(sim, audit=audit, reconnect_attempts=2, backoff_s=0.05)
    sps = [Setpoint("sgen:1", 0, 0, 0.001, 0.0), Setpoint("sgen:2", 0, 0, 0.002, 0.0)]
    sps.append(Setpoint("sgen:3", 0, 0, 99.0, 0.0))  # refused before sending
    await sim.stop()  # and it stays down
    with pytest.raises(ConnectionLostError, match="2 command\\(s\\).*not confirmed") as caught:
        await bridge.push("c1", sps)
    assert isinstance(caught.value, FeederDaoError) and isinstance(caught.value, ConnectionError)
    commands = {r["device"]: r for r in audit.records("command")}
    assert set(commands) == {"sgen:1", "sgen:2"}
    assert all(r["status"].startswith("not confirmed: ") for r in commands.values())
    assert [r["device"] for r in audit.records("refused")] == ["sgen:3"]
    assert [r["event"] for r in audit.records() if r["event"] == "reconnect-failed"] == [
        "reconnect-failed"
    ] * 2


async def test_equipment_back_after_an_outage_is_reached_without_a_restart(
    start_sim: StartSim, start_bridge: StartBridge, tmp_path: Path
) -> None:
    """A bridge whose reconnect gave up used to stay disconnected: every later push failed with
    "not connected" until the service restarted. Its next request reconnects."""
    audit = AuditLog(tmp_path / "audit.jsonl")
    sim = await start_sim()
    bridge = await start_bridge(sim, audit=audit, reconnect_attempts=1, backoff_s=0.05)
    sps = [Setpoint("sgen:1", 0, 0, 0.001, 0.0)]
    await sim.stop()
    with pytest.raises(ConnectionLostError):
        await bridge.push("c1", sps)
    with pytest.raises(BridgeError, match="unreachable"):
        await bridge.read(["Buses.0.Vm_pu"])
    await sim.start()  # the equipment is back
    report = await bridge.push("c2", sps)
    assert report.ok, report.failed
    imported, exported = (await bridge.read_energy(["sgen:1"]))["sgen:1"]
    assert imported == 0 and exported <= round(sim.devices["sgen:1"].exported_wh) + 1
    await asyncio.sleep(0.3)
    assert sim.devices["sgen:1"].applied == ["c2/sgen:1"]
    assert [r["event"] for r in audit.records() if r["event"].startswith("reconnect")] == [
        "reconnect-failed",
        "reconnect-failed",
        "reconnected",
    ]


async def test_a_failing_re_push_is_a_typed_error_and_every_command_is_audited(
    start_sim: StartSim, start_bridge: StartBridge, tmp_path: Path
) -> None:
    sim = await start_sim()
    holder: dict[str, Any] = {}

    class CutAfterReconnect(AuditLog):
        """Fault injection: the TCP connection drops again right after the reconnect."""

        def record(self, event: str, **fields: Any) -> None:
            super().record(event, **fields)
            if event == "reconnected":
                holder["bridge"]._client.uaclient.protocol.transport.abort()

    audit = CutAfterReconnect(tmp_path / "audit.jsonl")
    bridge = await start_bridge(sim, audit=audit, backoff_s=0.05)
    holder["bridge"] = bridge
    assert bridge._client is not None
    bridge._client.uaclient.protocol.transport.abort()  # the first write finds it dead
    with pytest.raises(ConnectionLostError, match="after the re-push"):
        await bridge.push("c1", [Setpoint("sgen:1", 0, 0, 0.001, 0.0)])
    events = [r["event"] for r in audit.records()]
    assert events.count("re-push") == 1
    (command,) = audit.records("command")
    assert command["repushed"] is True and command["status"].startswith("not confirmed")


async def test_read_back_checks_q_as_well_as_p(
    start_sim: StartSim, start_bridge: StartBridge
) -> None:
    sim = await start_sim()
    bridge = await start_bridge(sim, read_back_deadline_s=0.3)
    # a node map that maps sgen:0's Q setpoint onto sgen:1's node (a classic mapping slip)
    dev = bridge.nodemap.devices["sgen:0"]
    nodes = {**dev.nodes, "q_setpoint": "Devices.sgen:1.Q_setpoint_Mvar"}
    bridge.nodemap.devices["sgen:0"] = DeviceNodes(
        dev.device_id, dev.kind, dev.p_min_mw, dev.p_max_mw, dev.s_mva, nodes
    )
    report = await bridge.push(
        "c1", [Setpoint("sgen:0", 0, 0, 0.001, 0.001), Setpoint("sgen:1", 0, 0, 0.001, 0.002)]
    )
    failed = {d.device_id: d for d in report.failed}
    assert list(failed) == ["sgen:0"]
    assert failed["sgen:0"].read_back_mw == pytest.approx(0.001)
    assert failed["sgen:0"].read_back_mvar == pytest.approx(0.002)
    assert "Q 0.002" in failed["sgen:0"].status


async def test_a_rejected_write_is_reported_for_that_device_only(
    start_sim: StartSim, start_bridge: StartBridge
) -> None:
    sim = await start_sim(read_only=("storage:0",))
    bridge = await start_bridge(sim)
    sps = [Setpoint(d, 0, 0, 0.0, 0.0) for d in sim.devices]
    report = await bridge.push("c1", sps)
    failed = {d.device_id: d.status for d in report.failed}
    assert list(failed) == ["storage:0"]
    assert failed["storage:0"] == "write: BadNotWritable"
    await asyncio.sleep(0.2)
    assert sim.devices["sgen:0"].applied == ["c1/sgen:0"]


async def test_setpoint_outside_nameplate_is_refused_not_clipped(
    start_sim: StartSim, start_bridge: StartBridge
) -> None:
    sim = await start_sim()
    bridge = await start_bridge(sim)
    too_much = sim.devices["sgen:0"].p_max_mw * 2
    report = await bridge.push(
        "c1", [Setpoint("sgen:0", 0, 0, too_much, 0.0), Setpoint("sgen:1", 0, 0, 0.01, 0.0)]
    )
    bad = {d.device_id: d.status for d in report.failed}
    assert "outside nameplate" in bad["sgen:0"] and "refused, not clipped" in bad["sgen:0"]
    await asyncio.sleep(0.2)
    assert sim.devices["sgen:0"].applied == []
    assert sim.devices["sgen:1"].applied == ["c1/sgen:1"]


async def test_devices_revert_when_the_heartbeat_stops(
    start_sim: StartSim, start_bridge: StartBridge
) -> None:
    sim = await start_sim()
    bridge = await start_bridge(sim, reversion_timeout_s=0.5, heartbeat_period_s=0.1)
    dev = sim.devices["sgen:1"]
    assert (await bridge.push("c1", [Setpoint("sgen:1", 0, 0, 0.001, 0.0)])).ok
    bridge.start_heartbeat()
    await asyncio.sleep(1.2)  # longer than the timeout, but the heartbeat keeps it
    assert not dev.reverted and dev.actual_p == pytest.approx(0.001)
    await bridge.stop_heartbeat()
    await asyncio.sleep(0.9)  # timeout 0.5 s, simulator cycle 0.05 s
    assert dev.reverted and dev.actual_p == pytest.approx(dev.default_p)


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
async def test_bad_credentials_and_insecure_endpoints_are_refused(
    start_sim: StartSim, start_bridge: StartBridge, pki: Pki, make_security: Any, message: str
) -> None:
    sim = await start_sim()
    bridge = await start_bridge(sim, make_security(pki), connect=False, timeout_s=2.0)
    with pytest.raises((BridgeError, InsecureEndpointError), match=message):
        await bridge.connect()


async def test_a_viewer_may_read_but_not_write(
    start_sim: StartSim, start_bridge: StartBridge, pki: Pki
) -> None:
    sim = await start_sim()
    bridge = await start_bridge(sim, client_security(pki, user="scada"))
    report = await bridge.push("c1", [Setpoint("sgen:1", 0, 0, 0.001, 0.0)])
    assert not report.ok and report.failed[0].status == "write: BadUserAccessDenied"
    (vm,) = await bridge.read(["Buses.0.Vm_pu"])
    assert 0.9 < vm < 1.1


async def test_a_command_past_its_validity_window_is_ignored(
    start_sim: StartSim, start_bridge: StartBridge
) -> None:
    sim = await start_sim()
    bridge = await start_bridge(sim, validity_s=-1.0)
    report = await bridge.push("late", [Setpoint("sgen:1", 0, 0, 0.001, 0.0)])
    assert report.ok  # written and read back …
    await asyncio.sleep(0.3)
    dev = sim.devices["sgen:1"]
    assert dev.expired == ["late/sgen:1"] and dev.applied == []  # … but never acted on
