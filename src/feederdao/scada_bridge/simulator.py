"""A feeder simulator: the stand-in for feeder equipment, served over OPC UA.

One object per controllable device (PV inverters, storage, loads with demand response,
flexible loads; transformer tap changers and capacitor banks, set by position) under ``Devices``
with writable setpoints (P, Q, enable, reversion timeout, ramp, command id) and measurements;
``Buses`` and ``Branches`` publish voltages and loadings; ``Heartbeat`` is written by the
bridge. Every cycle the simulator

* applies a new command (its ``CommandId`` changed) — a command id seen before is ignored, so a
  re-pushed cycle never acts twice, and so is a command past its ``ValidUntil_s`` (epoch s);
* ramps each device toward its setpoint;
* reverts a device to its default when its reversion timeout passes without a fresh command or
  heartbeat;
* runs an AC power flow (pandapower's model) at the devices' actual powers and publishes it.

Namespaces are identified by URI (:data:`NAMESPACE`), never by index.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from asyncua import Server, ua

from feederdao.domain.network import (
    Device,
    DeviceKind,
    DiscreteDevice,
    NetworkView,
    device_bus_consumption,
)
from feederdao.domain.powerflow import AcChecker
from feederdao.scada_bridge.security import ServerSecurity, secure_server

NAMESPACE = "urn:feederdao:feeder-simulator"
CONTROLLABLE = (DeviceKind.PV, DeviceKind.STORAGE, DeviceKind.FLEX_LOAD, DeviceKind.LOAD)
SETPOINT_FIELDS = (
    "P_setpoint_MW",
    "Q_setpoint_Mvar",
    "Enable",
    "ReversionTimeout_s",
    "Ramp_MW_per_s",
    "ValidUntil_s",
    "CommandId",
)
MEASUREMENT_FIELDS = ("P_MW", "Q_Mvar", "Reverted")

log = logging.getLogger(__name__)


@dataclass
class SimDevice:
    device: Device
    p_min_mw: float
    p_max_mw: float
    s_mva: float
    default_p: float
    default_q: float
    actual_p: float = 0.0
    actual_q: float = 0.0
    target_p: float = 0.0
    target_q: float = 0.0
    timeout_s: float = math.inf
    ramp: float = math.inf
    last_command: str = ""
    last_contact: float = 0.0
    reverted: bool = False
    applied: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    duplicates: int = 0
    nodes: dict[str, Any] = field(default_factory=dict)


@dataclass
class SimDiscrete:
    """A tap changer or capacitor bank: it moves to a commanded position (no ramp, no
    reversion: it stays where it was put)."""

    device: DiscreteDevice
    position: int
    last_command: str = ""
    applied: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    nodes: dict[str, Any] = field(default_factory=dict)


def _variant(value: Any) -> ua.Variant:
    if isinstance(value, bool):
        return ua.Variant(value, ua.VariantType.Boolean)
    if isinstance(value, str):
        return ua.Variant(value, ua.VariantType.String)
    if isinstance(value, int) and not isinstance(value, bool):
        return ua.Variant(value, ua.VariantType.UInt32)
    return ua.Variant(float(value), ua.VariantType.Double)


class FeederSimulator:
    """Serve ``view``'s controllable devices on ``endpoint`` (loopback) and simulate them;
    ``ac`` runs the AC power flow (pandapower's model, from ``grid_model``)."""

    def __init__(
        self,
        view: NetworkView,
        ac: AcChecker,
        endpoint: str = "opc.tcp://127.0.0.1:4841/feederdao/simulator",
        security: ServerSecurity | None = None,
        allow_insecure: bool = False,
        period_s: float = 0.2,
        read_only: tuple[str, ...] = (),
    ) -> None:
        if security is None and not allow_insecure:
            raise ValueError("the simulator serves encrypted endpoints only unless allow_insecure")
        self.view = view
        self.endpoint = endpoint
        self.security = security
        self.period_s = period_s
        self.read_only = set(read_only)
        self._ac = ac
        self._base_ac = ac
        self.devices: dict[str, SimDevice] = {}
        for d in view.devices:
            if d.kind in CONTROLLABLE:
                s = d.sn_mva or max(
                    2 * abs(d.p_mw), abs(d.p_min_mw or 0), abs(d.p_max_mw or 0), 1e-3
                )
                lo = -s if d.kind == DeviceKind.STORAGE else 0.0
                self.devices[d.device_id] = SimDevice(
                    d, lo, s, s, d.p_mw, d.q_mvar, d.p_mw, d.q_mvar, d.p_mw, d.q_mvar
                )
        self.discrete = {d.device_id: SimDiscrete(d, d.position) for d in view.discrete}
        self.heartbeat = 0
        self.last_heartbeat_at = 0.0
        self.vm_pu = np.ones(len(view.buses))
        self.loading_percent = np.zeros(len(view.branches))
        self.cycles = 0
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._nodes: dict[str, Any] = {}

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("feederdao feeder simulator")
        await server.set_application_uri("urn:feederdao:feeder-simulator:server")
        if self.security is not None:
            await secure_server(server, self.security)
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(NAMESPACE)
        objects = server.nodes.objects
        root = await objects.add_folder(ua.NodeId("Feeder", idx), ua.QualifiedName("Feeder", idx))
        devices = await root.add_folder(ua.NodeId("Devices", idx), ua.QualifiedName("Devices", idx))
        now = time.monotonic()
        for dev_id, dev in self.devices.items():
            obj = await devices.add_object(
                ua.NodeId(f"Devices.{dev_id}", idx), ua.QualifiedName(dev_id, idx)
            )
            values = {
                "P_setpoint_MW": dev.target_p,
                "Q_setpoint_Mvar": dev.target_q,
                "Enable": True,
                "ReversionTimeout_s": 0.0 if math.isinf(dev.timeout_s) else dev.timeout_s,
                "Ramp_MW_per_s": 0.0 if math.isinf(dev.ramp) else dev.ramp,
                "ValidUntil_s": 0.0,
                "CommandId": dev.last_command,
                "P_MW": dev.actual_p,
                "Q_Mvar": dev.actual_q,
                "Reverted": dev.reverted,
                "P_min_MW": dev.p_min_mw,
                "P_max_MW": dev.p_max_mw,
                "S_rating_MVA": dev.s_mva,
                "Bus": float(dev.device.bus),
            }
            for name, value in values.items():
                node = await obj.add_variable(
                    ua.NodeId(f"Devices.{dev_id}.{name}", idx),
                    ua.QualifiedName(name, idx),
                    _variant(value),
                )
                if name in SETPOINT_FIELDS and dev_id not in self.read_only:
                    await node.set_writable()
                dev.nodes[name] = node
            dev.last_contact = now
        for dev_id, disc in self.discrete.items():
            obj = await devices.add_object(
                ua.NodeId(f"Devices.{dev_id}", idx), ua.QualifiedName(dev_id, idx)
            )
            d = disc.device
            values = {
                "Position_setpoint": ua.Variant(disc.position, ua.VariantType.Int32),
                "CommandId": _variant(disc.last_command),
                "ValidUntil_s": _variant(0.0),
                "Position": ua.Variant(disc.position, ua.VariantType.Int32),
                "Position_min": ua.Variant(d.minimum, ua.VariantType.Int32),
                "Position_max": ua.Variant(d.maximum, ua.VariantType.Int32),
                "Bus": _variant(float(d.bus)),
            }
            for name, value in values.items():
                node = await obj.add_variable(
                    ua.NodeId(f"Devices.{dev_id}.{name}", idx), ua.QualifiedName(name, idx), value
                )
                if name in ("Position_setpoint", "CommandId", "ValidUntil_s"):
                    await node.set_writable()
                disc.nodes[name] = node
        buses = await root.add_folder(ua.NodeId("Buses", idx), ua.QualifiedName("Buses", idx))
        for i, bus in enumerate(self.view.buses):
            self._nodes[f"bus{i}"] = await buses.add_variable(
                ua.NodeId(f"Buses.{bus.index}.Vm_pu", idx),
                ua.QualifiedName(f"{bus.name} Vm_pu", idx),
                _variant(float(self.vm_pu[i])),
            )
        branches = await root.add_folder(
            ua.NodeId("Branches", idx), ua.QualifiedName("Branches", idx)
        )
        for k, br in enumerate(self.view.branches):
            self._nodes[f"br{k}"] = await branches.add_variable(
                ua.NodeId(f"Branches.{br.branch_id}.Loading_pct", idx),
                ua.QualifiedName(f"{br.name} Loading_pct", idx),
                _variant(float(self.loading_percent[k])),
            )
        hb = await root.add_variable(
            ua.NodeId("Heartbeat", idx),
            ua.QualifiedName("Heartbeat", idx),
            ua.Variant(self.heartbeat, ua.VariantType.UInt32),
        )
        await hb.set_writable()
        self._nodes["heartbeat"] = hb
        self.last_heartbeat_at = now
        await server.start()
        self._server = server
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def __aenter__(self) -> FeederSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def set_operating_point(self, p_mw: dict[str, float], q_mvar: dict[str, float]) -> None:
        """Play a profile: devices listed here run at (and revert to) these powers until a
        command says otherwise."""
        for dev_id, p in p_mw.items():
            dev = self.devices.get(dev_id)
            if dev is None:
                continue
            q = q_mvar.get(dev_id, dev.default_q)
            dev.default_p, dev.default_q = p, q
            if not dev.applied or dev.reverted:
                dev.actual_p = dev.target_p = p
                dev.actual_q = dev.target_q = q

    # -- simulation -----------------------------------------------------------------------

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.period_s)
            now = time.monotonic()
            try:
                await self.step(now, now - last)
            except Exception:  # a failed cycle is logged; the simulator keeps serving
                log.exception("simulator cycle failed")
            last = now

    async def step(self, now: float, dt: float) -> None:
        hb = int(await self._nodes["heartbeat"].read_value())
        if hb != self.heartbeat:
            self.heartbeat = hb
            self.last_heartbeat_at = now
        for dev in self.devices.values():
            command = str(await dev.nodes["CommandId"].read_value())
            if command and command != dev.last_command:
                valid_until = float(await dev.nodes["ValidUntil_s"].read_value())
                if command in dev.applied:
                    dev.duplicates += 1  # an old command written again: never act twice
                elif valid_until and time.time() > valid_until:
                    dev.expired.append(command)  # arrived after its validity window: ignored
                else:
                    enabled = bool(await dev.nodes["Enable"].read_value())
                    p = float(await dev.nodes["P_setpoint_MW"].read_value())
                    q = float(await dev.nodes["Q_setpoint_Mvar"].read_value())
                    timeout = float(await dev.nodes["ReversionTimeout_s"].read_value())
                    ramp = float(await dev.nodes["Ramp_MW_per_s"].read_value())
                    dev.target_p, dev.target_q = (
                        (p, q) if enabled else (dev.default_p, dev.default_q)
                    )
                    dev.timeout_s = timeout if timeout > 0 else math.inf
                    dev.ramp = ramp if ramp > 0 else math.inf
                    dev.applied.append(command)
                    dev.reverted = False
                    dev.last_contact = now
                dev.last_command = command
            contact = max(dev.last_contact, self.last_heartbeat_at)
            if not dev.reverted and now - contact > dev.timeout_s:
                dev.target_p, dev.target_q = dev.default_p, dev.default_q
                dev.reverted = True
            step = dev.ramp * dt
            dev.actual_p += float(np.clip(dev.target_p - dev.actual_p, -step, step))
            dev.actual_q = dev.target_q
        moved = False
        for disc in self.discrete.values():
            command = str(await disc.nodes["CommandId"].read_value())
            if not command or command == disc.last_command:
                continue
            disc.last_command = command
            valid_until = float(await disc.nodes["ValidUntil_s"].read_value())
            position = int(await disc.nodes["Position_setpoint"].read_value())
            d = disc.device
            if command in disc.applied or (valid_until and time.time() > valid_until):
                continue
            if not d.minimum <= position <= d.maximum:
                disc.refused.append(command)  # out of range: equipment does not move
                continue
            disc.position = position
            disc.applied.append(command)
            moved = True
        if moved:
            positions = {k: v.position for k, v in self.discrete.items()}
            with_positions = getattr(self._base_ac, "with_positions", None)
            if with_positions is None:
                raise RuntimeError("this AC checker cannot move taps or capacitor steps")
            self._ac = with_positions(positions)
        await self._power_flow()
        self.cycles += 1

    async def _power_flow(self) -> None:
        p_dev = {d.device.device_id: d.actual_p for d in self.devices.values()}
        q_dev = {d.device.device_id: d.actual_q for d in self.devices.values()}
        p, q = device_bus_consumption(self.view, p_dev, q_dev)
        flow = self._ac(p[None, :], q[None, :])
        self.vm_pu = flow.vm_pu[0]
        self.loading_percent = flow.branch_loading_percent[0]
        for i in range(len(self.view.buses)):
            await self._nodes[f"bus{i}"].write_value(_variant(float(self.vm_pu[i])))
        for k in range(len(self.view.branches)):
            await self._nodes[f"br{k}"].write_value(_variant(float(self.loading_percent[k])))
        for disc in self.discrete.values():
            await disc.nodes["Position"].write_value(
                ua.Variant(disc.position, ua.VariantType.Int32)
            )
        for dev in self.devices.values():
            await dev.nodes["P_MW"].write_value(_variant(dev.actual_p))
            await dev.nodes["Q_Mvar"].write_value(_variant(dev.actual_q))
            await dev.nodes["Reverted"].write_value(_variant(dev.reverted))
