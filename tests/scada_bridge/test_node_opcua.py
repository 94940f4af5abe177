"""feederdao's servers as a third-party SCADA client sees them: node-opcua (tests/opcua_peer),
an OPC UA stack independent of asyncua, against the simulator and the market server."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import Client, ua

import feederdao
from feederdao.scada_bridge.infomodel import TYPES_NAMESPACE, UNECE_NAMESPACE
from feederdao.scada_bridge.security import secure_client
from feederdao.scada_bridge.server import NAMESPACE as MARKET
from feederdao.scada_bridge.server import MarketServer
from feederdao.scada_bridge.simulator import NAMESPACE as SIM
from feederdao.scada_bridge.simulator import FeederSimulator
from tests.scada_bridge.conftest import Pki, StartSim, client_security, node_peer
from tests.scada_bridge.peer import nid

pytestmark = pytest.mark.anyio


def dev(device: str, name: str) -> str:
    return nid(SIM, f"Devices.{device}.{name}")


def read(node: str, attribute: str = "Value") -> dict[str, str]:
    return {"op": "read", "nodeId": node, "attribute": attribute}


def write(node: str, value: object, data_type: str = "Double") -> dict[str, object]:
    return {"op": "write", "nodeId": node, "dataType": data_type, "value": value}


async def test_nan_and_out_of_nameplate_setpoints_are_refused_per_item_and_never_applied(
    start_sim: StartSim, pki: Pki
) -> None:
    sim = await start_sim()
    pv = sim.devices["sgen:0"]
    assert pv.p_max_mw == pytest.approx(0.04, rel=0.5)  # a small PV inverter
    peer = node_peer(pki)
    many = {
        "op": "write-many",
        "items": [
            {"nodeId": dev("sgen:0", "P_setpoint_MW"), "dataType": "Double", "value": "NaN"},
            {"nodeId": dev("sgen:0", "Q_setpoint_Mvar"), "dataType": "Double", "value": 0.0},
            {"nodeId": dev("sgen:1", "P_setpoint_MW"), "dataType": "Double", "value": 40.0},
            {"nodeId": dev("sgen:2", "P_setpoint_MW"), "dataType": "Double", "value": -1.0},
            {"nodeId": dev("sgen:3", "P_setpoint_MW"), "dataType": "Double", "value": "Infinity"},
            {"nodeId": dev("sgen:4", "P_setpoint_MW"), "dataType": "Double", "value": 0.001},
            {"nodeId": dev("sgen:4", "Ramp_MW_per_s"), "dataType": "Double", "value": -1.0},
            {"nodeId": dev("sgen:4", "P_setpoint_MW"), "dataType": "String", "value": "0.002"},
        ],
    }
    commands = [write(dev(d, "CommandId"), f"probe/{d}", "String") for d in ("sgen:0", "sgen:4")]
    (statuses, *command_statuses) = await peer.results(sim.endpoint, many, *commands)
    assert statuses == [
        "BadOutOfRange",
        "Good",
        "BadOutOfRange",
        "BadOutOfRange",
        "BadOutOfRange",
        "Good",
        "BadOutOfRange",
        "BadTypeMismatch",
    ]
    assert [r["status"] for r in command_statuses] == ["Good", "Good"]
    cycles = sim.cycles
    await asyncio.sleep(0.4)
    assert sim.cycles > cycles + 3  # the cycle never stopped
    assert sim.devices["sgen:0"].applied == ["probe/sgen:0"]
    assert math.isfinite(sim.devices["sgen:0"].actual_p)  # its last good P setpoint stayed
    assert sim.devices["sgen:4"].actual_p == pytest.approx(0.001)
    for d in ("sgen:1", "sgen:2", "sgen:3"):
        assert sim.devices[d].target_p == sim.devices[d].default_p
    # measurements stay Good and fresh: the simulator keeps computing
    p_mw, vm = await peer.results(
        sim.endpoint, read(dev("sgen:0", "P_MW")), read(nid(SIM, "Buses.0.Vm_pu"))
    )
    assert p_mw["status"] == vm["status"] == "Good"
    assert datetime.fromisoformat(vm["sourceTimestamp"]) > datetime.now(UTC) - timedelta(seconds=2)


async def test_asyncua_clients_are_refused_nan_the_same_way(start_sim: StartSim, pki: Pki) -> None:
    sim = await start_sim()
    client = Client(sim.endpoint, timeout=4)
    await secure_client(client, client_security(pki))
    async with client:
        idx = await client.get_namespace_index(SIM)
        nodes = [
            client.get_node(ua.NodeId("Devices.storage:0.P_setpoint_MW", idx)),
            client.get_node(ua.NodeId("Devices.storage:0.P_setpoint_MW", idx)),
            client.get_node(ua.NodeId("Devices.trafo:0.Position_setpoint", idx)),
        ]
        storage = sim.devices["storage:0"]
        codes = await client.write_values(
            nodes,
            [
                ua.Variant(math.nan, ua.VariantType.Double),
                ua.Variant(-storage.p_max_mw / 2, ua.VariantType.Double),  # discharging: fine
                ua.Variant(0, ua.VariantType.Int32),
            ],
            raise_on_partial_error=False,
        )
        assert [c.name for c in codes] == ["BadOutOfRange", "Good", "BadNodeIdUnknown"]


async def test_a_failed_cycle_turns_measurements_uncertain_with_the_reason_then_good_again(
    start_sim: StartSim, pki: Pki
) -> None:
    sim = await start_sim()
    peer = node_peer(pki, user="scada")
    probe = (
        read(dev("load:0", "P_MW")),
        read(nid(SIM, "Buses.1.Vm_pu")),
        read(nid(SIM, "Diagnostics.LastCycleError")),
    )
    before = await peer.results(sim.endpoint, *probe)
    assert [r["status"] for r in before] == ["Good", "Good", "Good"]
    # a load far beyond what the feeder can carry: the AC power flow cannot converge
    sim.set_operating_point({"load:0": 500.0}, {"load:0": 0.0})
    await asyncio.sleep(0.5)
    p, vm, error = await peer.results(sim.endpoint, *probe)
    assert p["status"] == vm["status"] == "UncertainLastUsableValue"
    assert vm["value"] == pytest.approx(before[1]["value"])  # the last usable value …
    assert vm["sourceTimestamp"] < datetime.now(UTC).isoformat()  # … with its own time
    assert "converge" in error["value"] or "PowerFlow" in error["value"]
    failed = sim.failed_cycles
    await asyncio.sleep(0.3)
    assert sim.failed_cycles > failed  # the cycle keeps running
    sim.set_operating_point({"load:0": 0.001}, {"load:0": 0.0})
    await asyncio.sleep(0.5)
    p, vm, error = await peer.results(sim.endpoint, *probe)
    assert p["status"] == vm["status"] == "Good" and error["value"] == ""


async def test_status_codes_are_per_item_and_user_access_levels_follow_the_role(
    start_sim: StartSim, pki: Pki
) -> None:
    sim = await start_sim()
    setpoint, measured = dev("sgen:1", "P_setpoint_MW"), dev("sgen:1", "P_MW")
    dispatcher = node_peer(pki, user="dispatch")
    statuses, *levels = await dispatcher.results(
        sim.endpoint,
        {
            "op": "write-many",
            "items": [
                {"nodeId": measured, "dataType": "Double", "value": 0.001},
                {
                    "nodeId": nid(SIM, "Devices.sgen:1.NoSuchNode"),
                    "dataType": "Double",
                    "value": 0.0,
                },
                {"nodeId": setpoint, "dataType": "Double", "value": 0.001},
            ],
        },
        read(setpoint, "AccessLevel"),
        read(setpoint, "UserAccessLevel"),
    )
    assert statuses == ["BadNotWritable", "BadNodeIdUnknown", "Good"]
    assert [lv["value"] for lv in levels] == [3, 3]
    viewer = node_peer(pki, user="scada")
    answer = await viewer.session(
        sim.endpoint,
        write(setpoint, 0.002),
        write(measured, 0.002),
        read(setpoint, "AccessLevel"),
        read(setpoint, "UserAccessLevel"),
        read(setpoint),
    )
    assert answer["connected"], answer  # no ServiceFault: the session carries on
    w1, w2, level, user_level, value = answer["results"]
    assert (w1["status"], w2["status"]) == ("BadUserAccessDenied", "BadNotWritable")
    assert (level["value"], user_level["value"]) == (3, 1)  # may read, may not write
    assert value["value"] == pytest.approx(0.001)


async def test_devices_are_typed_analog_items_with_units_and_nameplate_ranges(
    start_sim: StartSim, pki: Pki
) -> None:
    sim = await start_sim()
    peer = node_peer(pki, user="scada")
    devices, pv_children, units, eu_range, datatype, descr, bus = await peer.results(
        sim.endpoint,
        {"op": "browse", "nodeId": nid(SIM, "Devices")},
        {"op": "browse", "nodeId": dev("sgen:0", "P_setpoint_MW"), "referenceType": "HasProperty"},
        read(nid(SIM, "Devices.sgen:0.P_setpoint_MW.EngineeringUnits")),
        read(nid(SIM, "Devices.sgen:0.P_setpoint_MW.EURange")),
        read(dev("sgen:0", "Bus"), "DataType"),
        read(dev("sgen:0", "P_setpoint_MW"), "Description"),
        read(dev("sgen:0", "Bus")),
    )
    (names,) = await peer.results(sim.endpoint, read("i=2255"))  # the NamespaceArray
    namespaces = names["value"]
    types_ns = namespaces.index(TYPES_NAMESPACE)
    by_device = {r["browseName"]: r["typeDefinition"] for r in devices["references"]}
    assert by_device["sgen:0"] == f"ns={types_ns};i=1001"  # PvInverterType
    assert by_device["storage:0"] == f"ns={types_ns};i=1002"  # StorageType
    assert by_device["load:0"] == f"ns={types_ns};i=1003"  # LoadType
    assert {r["browseName"] for r in pv_children["references"]} == {"EngineeringUnits", "EURange"}
    pv = sim.devices["sgen:0"]
    assert units["value"]["namespaceUri"] == UNECE_NAMESPACE
    assert units["value"]["unitId"] == (ord("M") << 16) | (ord("A") << 8) | ord("W")  # MAW
    assert units["value"]["displayName"]["text"] == "MW"
    assert (eu_range["value"]["low"], eu_range["value"]["high"]) == pytest.approx(
        (pv.p_min_mw, pv.p_max_mw)
    )
    assert datatype["value"] == "ns=0;i=7"  # UInt32: a bus index is an integer
    assert bus["dataType"] == "UInt32" and bus["value"] == pv.device.bus
    assert "nameplate" in descr["value"]["text"] and descr["value"]["text"] != "P_setpoint_MW"


async def test_the_type_of_every_node_can_be_browsed(start_sim: StartSim, pki: Pki) -> None:
    sim = await start_sim()
    peer = node_peer(pki, user="scada")
    (p_set,) = await peer.results(
        sim.endpoint,
        {
            "op": "browse",
            "nodeId": dev("sgen:0", "P_setpoint_MW"),
            "referenceType": "HasTypeDefinition",
        },
    )
    assert [r["nodeId"] for r in p_set["references"]] == ["ns=0;i=2368"]  # AnalogItemType


async def test_client_writes_get_a_source_timestamp(start_sim: StartSim, pki: Pki) -> None:
    sim = await start_sim()
    peer = node_peer(pki)
    before = datetime.now(UTC) - timedelta(seconds=1)
    _, value = await peer.results(
        sim.endpoint,
        write(dev("sgen:2", "P_setpoint_MW"), 0.001),
        read(dev("sgen:2", "P_setpoint_MW")),
    )
    assert value["sourceTimestamp"] is not None
    assert datetime.fromisoformat(value["sourceTimestamp"]) >= before


async def test_build_info_capabilities_and_diagnostics(start_sim: StartSim, pki: Pki) -> None:
    sim = await start_sim()
    peer = node_peer(pki, user="scada")
    steps = [
        read("i=2261"),  # BuildInfo.ProductName
        read("i=2263"),  # BuildInfo.ManufacturerName
        read("i=2264"),  # BuildInfo.SoftwareVersion
        read(f"i={ua.ObjectIds.Server_ServerCapabilities_MaxArrayLength}"),
        read(f"i={ua.ObjectIds.Server_ServerCapabilities_ServerProfileArray}"),
        read(f"i={ua.ObjectIds.Server_ServerCapabilities_LocaleIdArray}"),
        read(
            f"i={ua.ObjectIds.Server_ServerDiagnostics_ServerDiagnosticsSummary_CurrentSessionCount}"
        ),
        read(
            f"i={ua.ObjectIds.Server_ServerDiagnostics_ServerDiagnosticsSummary_CumulatedSessionCount}"
        ),
        read(
            f"i={ua.ObjectIds.Server_ServerDiagnostics_SessionsDiagnosticsSummary_SessionDiagnosticsArray}"
        ),
    ]
    product, maker, version, max_array, profiles, locales, current, cumulated, sessions = (
        r["value"] for r in await peer.results(sim.endpoint, *steps)
    )
    assert "feederdao" in product and maker == "feederdao" and version == feederdao.__version__
    assert max_array > 0 and profiles and locales == ["en"]
    assert current >= 1 and cumulated >= current and len(sessions) >= 1


async def test_market_methods_validate_arguments_and_change_state_only_after_success(
    pki: Pki, market_server: MarketServer
) -> None:
    calls: list[tuple[str, str]] = []
    failing = {"on": True}

    async def on_suspend(reason: str, user: str) -> None:
        if failing["on"]:
            raise RuntimeError("the dispatcher did not acknowledge")
        calls.append((reason, user))

    async def on_resume(user: str) -> None:
        calls.append(("resume", user))

    market_server.on_suspend, market_server.on_resume = on_suspend, on_resume
    obj, suspend = nid(MARKET, "Market"), nid(MARKET, "Market.SuspendDispatch")
    resume = nid(MARKET, "Market.ResumeDispatch")

    def call(method: str, *args: tuple[str, object]) -> dict[str, object]:
        return {
            "op": "call",
            "objectId": obj,
            "methodId": method,
            "args": [{"dataType": t, "value": v} for t, v in args],
        }

    status = read(nid(MARKET, "Market.Status"))
    operator = node_peer(pki, user="ops")
    viewer = node_peer(pki, user="scada")
    (viewer_call, viewer_exec, operator_exec, arguments, status_write) = await viewer.results(
        market_server.endpoint,
        call(suspend, ("String", "viewer tries")),
        read(suspend, "UserExecutable"),
        read(suspend, "Executable"),
        {"op": "arguments", "methodId": suspend},
        write(nid(MARKET, "Market.Status"), "hacked", "String"),
    )
    assert viewer_call["status"] == "BadUserAccessDenied"
    assert viewer_exec["value"] is False and operator_exec["value"] is True
    assert [a["name"] for a in arguments["inputs"]] == ["Reason"]
    assert arguments["inputs"][0]["description"] and arguments["outputs"][0]["name"] == "Suspended"
    assert status_write["status"] == "BadNotWritable"
    results = await operator.results(
        market_server.endpoint,
        read(suspend, "UserExecutable"),
        call(suspend),
        call(suspend, ("Double", 1.0)),
        call(suspend, ("String", "   ")),
        call(suspend, ("String", "a"), ("String", "b")),
        call(suspend, ("String", "storm warning")),  # the action fails
        status,
    )
    executable, missing, wrong_type, empty, too_many, action_failed, after = results
    assert executable["value"] is True
    assert missing["status"] == "BadArgumentsMissing"
    assert (wrong_type["status"], wrong_type["inputArgumentResults"]) == (
        "BadInvalidArgument",
        ["BadTypeMismatch"],
    )
    assert (empty["status"], empty["inputArgumentResults"]) == (
        "BadInvalidArgument",
        ["BadInvalidArgument"],
    )
    assert too_many["status"] == "BadTooManyArguments"
    assert action_failed["status"] == "BadInternalError"
    assert after["value"] == "running" and calls == []  # nothing changed
    failing["on"] = False
    ok, again, state, by, resumed, final = await operator.results(
        market_server.endpoint,
        call(suspend, ("String", "storm warning")),
        call(suspend, ("String", "twice")),
        status,
        read(nid(MARKET, "Market.SuspendedBy")),
        call(resume),
        status,
    )
    assert (ok["status"], ok["outputs"]) == ("Good", [True])
    assert again["outputs"] == [False]  # already suspended: nothing changes
    assert state["value"] == "suspended" and by["value"] == "operator:ops"
    assert resumed["outputs"] == [True] and final["value"] == "running"
    assert calls == [("storm warning", "operator:ops"), ("resume", "operator:ops")]


async def test_the_bridge_can_still_use_every_simulator_setpoint(
    start_sim: StartSim, pki: Pki
) -> None:
    """Regression guard for the rules: the values the bridge writes are all accepted."""
    sim: FeederSimulator = await start_sim()
    peer = node_peer(pki)
    (statuses,) = await peer.results(
        sim.endpoint,
        {
            "op": "write-many",
            "items": [
                {"nodeId": dev("sgen:0", "Enable"), "dataType": "Boolean", "value": True},
                {
                    "nodeId": dev("sgen:0", "ReversionTimeout_s"),
                    "dataType": "Double",
                    "value": 60.0,
                },
                {"nodeId": dev("sgen:0", "ValidUntil_s"), "dataType": "Double", "value": 2e9},
                {"nodeId": nid(SIM, "Heartbeat"), "dataType": "UInt32", "value": 7},
            ],
        },
    )
    assert statuses == ["Good"] * 4
