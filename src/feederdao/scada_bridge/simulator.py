"""A feeder simulator: the stand-in for feeder equipment, served over OPC UA.

One object per controllable device (PV inverters, storage, loads with demand response,
flexible loads; transformer tap changers and capacitor banks, set by position) under ``Devices``,
each an instance of its feederdao ObjectType (:mod:`.infomodel`), with writable setpoints (P, Q,
enable, reversion timeout, ramp, command id) and measurements as ``AnalogItemType`` variables
whose ``EURange`` is the nameplate; ``Buses`` and ``Branches`` publish voltages and loadings;
``Heartbeat`` is written by the bridge; ``Diagnostics`` says whether the last cycle succeeded.

A written setpoint that is not finite or lies outside the nameplate is refused for that item
(``BadOutOfRange``) and never applied. Every cycle the simulator

* applies a new command (its ``CommandId`` changed) — a command id seen before is ignored, so a
  re-pushed cycle never acts twice, and so is a command past its ``ValidUntil_s`` (epoch s), and
  one whose setpoints together exceed the rating (S² = P² + Q²);
* ramps each device toward its setpoint;
* reverts a device to its default when its reversion timeout passes without a fresh command or
  heartbeat;
* runs an AC power flow (pandapower's model) at the devices' actual powers and publishes it;
* meters every device: ``EnergyImported_Wh`` and ``EnergyExported_Wh`` are cumulative energy
  registers (as a meter's import and export registers, OBIS 1.8.0 and 2.8.0) counting the
  device's actual power over simulated time (``time_scale`` simulated seconds per second).

Deliveries deviate from the setpoints the way real devices do (:class:`Deviations`, seeded):
a device ramps toward its setpoint (late response), clouds cap what PV delivers, and a
stubborn device accepts a command and keeps running where it was.

A cycle that fails (the power flow does not converge, say) is logged, the measurements it could
not update keep their last value and time but turn ``UncertainLastUsableValue``, and
``Diagnostics.LastCycleError`` gives the reason; the next cycle runs as usual and, when it
succeeds, the values are Good again.

Namespaces are identified by URI (:data:`NAMESPACE`), never by index.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from feederdao.scada_bridge import infomodel as im
from feederdao.scada_bridge.errors import BridgeError
from feederdao.scada_bridge.security import ServerSecurity, secure_server
from feederdao.scada_bridge.uaserver import (
    AccessGuard,
    Rule,
    describe_server,
    install_guard,
    integer_rule,
    number_rule,
    publish_diagnostics,
    start_server,
    type_rule,
)

NAMESPACE = "urn:feederdao:feeder-simulator"
CONTROLLABLE = (
    DeviceKind.PV,
    DeviceKind.RENEWABLE,
    DeviceKind.STORAGE,
    DeviceKind.FLEX_LOAD,
    DeviceKind.LOAD,
)
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


@dataclass(frozen=True)
class Deviations:
    """How the simulated devices deliver less than their setpoints: every cycle a cloud caps
    each PV inverter at ``1 − cloud_fraction · u`` of its setpoint (u uniform in [0, 1), drawn
    from ``seed``), and the ``stubborn`` devices ignore their setpoints."""

    seed: int = 0
    cloud_fraction: float = 0.0
    stubborn: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.cloud_fraction <= 1.0:
            raise BridgeError(f"cloud_fraction must be in [0, 1], not {self.cloud_fraction}")


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
    refused: list[str] = field(default_factory=list)
    duplicates: int = 0
    nodes: dict[str, Any] = field(default_factory=dict)
    imported_wh: float = 0.0  # the meter's registers
    exported_wh: float = 0.0

    @property
    def export_mw(self) -> float:
        """Net export: generation positive for PV and renewables, the negative of the
        consumption (or charging) for the others."""
        generation = self.device.kind in (DeviceKind.PV, DeviceKind.RENEWABLE)
        return self.actual_p if generation else -self.actual_p


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
        time_scale: float = 1.0,
        deviations: Deviations | None = None,
    ) -> None:
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise BridgeError(f"time_scale must be a positive number, not {time_scale}")
        self.time_scale = time_scale
        self.deviations = deviations or Deviations()
        self._rng = np.random.default_rng(self.deviations.seed)
        if security is None and not allow_insecure:
            raise BridgeError("the simulator serves encrypted endpoints only unless allow_insecure")
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
        self.guard = AccessGuard()
        self.last_cycle_error = ""
        self.failed_cycles = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        await describe_server(
            server, "feederdao feeder simulator", "urn:feederdao:feeder-simulator:server"
        )
        self.guard = AccessGuard()
        if self.security is not None:
            await secure_server(server, self.security, self._security_rejected)
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        install_guard(server, self.guard)
        publish_diagnostics(server, self.guard)
        types = await im.add_types(server)
        idx = await server.register_namespace(NAMESPACE)
        objects = server.nodes.objects
        root = await objects.add_folder(ua.NodeId("Feeder", idx), ua.QualifiedName("Feeder", idx))
        await im.describe(root, f"The feeder {self.view.name}, simulated by feederdao.")
        devices = await root.add_folder(ua.NodeId("Devices", idx), ua.QualifiedName("Devices", idx))
        await im.describe(devices, "The feeder's controllable devices, one object each.")
        now = time.monotonic()
        for dev_id, dev in self.devices.items():
            kind = str(dev.device.kind)
            obj = await devices.add_object(
                ua.NodeId(f"Devices.{dev_id}", idx),
                ua.QualifiedName(dev_id, idx),
                objecttype=types.get(kind, types["load"]),
            )
            await im.describe(obj, f"{im.DEVICE_TYPES[kind].description} At bus {dev.device.bus}.")
            await self._add_device_nodes(obj, idx, dev_id, dev)
            dev.last_contact = now
        for dev_id, disc in self.discrete.items():
            obj = await devices.add_object(
                ua.NodeId(f"Devices.{dev_id}", idx),
                ua.QualifiedName(dev_id, idx),
                objecttype=types[disc.device.kind],
            )
            await im.describe(
                obj, f"{im.DEVICE_TYPES[disc.device.kind].description} At bus {disc.device.bus}."
            )
            await self._add_discrete_nodes(obj, idx, dev_id, disc)
        buses = await root.add_folder(ua.NodeId("Buses", idx), ua.QualifiedName("Buses", idx))
        await im.describe(buses, "Bus voltage magnitudes from the simulator's AC power flow.")
        for i, bus in enumerate(self.view.buses):
            self._nodes[f"bus{i}"] = await im.add_analog(
                buses,
                ua.NodeId(f"Buses.{bus.index}.Vm_pu", idx),
                f"{bus.name} Vm_pu",
                float(self.vm_pu[i]),
                im.PER_UNIT,
                f"Voltage magnitude of bus {bus.index} ({bus.name}) in per unit of its nominal "
                f"{bus.vn_kv:g} kV.",
                (0.9, 1.1),
            )
        branches = await root.add_folder(
            ua.NodeId("Branches", idx), ua.QualifiedName("Branches", idx)
        )
        await im.describe(branches, "Branch loadings from the simulator's AC power flow.")
        for k, br in enumerate(self.view.branches):
            self._nodes[f"br{k}"] = await im.add_analog(
                branches,
                ua.NodeId(f"Branches.{br.branch_id}.Loading_pct", idx),
                f"{br.name} Loading_pct",
                float(self.loading_percent[k]),
                im.PERCENT,
                f"Loading of {br.branch_id} ({br.name}) in percent of its thermal rating.",
                (0.0, 100.0),
            )
        hb = await im.add_value(
            root,
            ua.NodeId("Heartbeat", idx),
            "Heartbeat",
            ua.Variant(self.heartbeat, ua.VariantType.UInt32),
            "A counter the dispatcher increments; while it changes, devices do not revert.",
            writable=True,
        )
        self.guard.accept(hb.nodeid, type_rule(ua.VariantType.UInt32, "Heartbeat"))
        self._nodes["heartbeat"] = hb
        diag = await root.add_object(
            ua.NodeId("Diagnostics", idx), ua.QualifiedName("Diagnostics", idx)
        )
        await im.describe(diag, "How the simulation cycles go.")
        self._nodes["last_error"] = await im.add_value(
            diag,
            ua.NodeId("Diagnostics.LastCycleError", idx),
            "LastCycleError",
            ua.Variant("", ua.VariantType.String),
            "Why the last simulation cycle failed; empty when it succeeded.",
        )
        self._nodes["cycles"] = await im.add_value(
            diag,
            ua.NodeId("Diagnostics.Cycles", idx),
            "Cycles",
            ua.Variant(0, ua.VariantType.UInt32),
            "Simulation cycles completed.",
        )
        self.last_heartbeat_at = now
        await start_server(server, self.endpoint)
        self._server = server
        self._task = asyncio.create_task(self._run())

    def _security_rejected(self) -> None:
        self.guard.security_rejected_sessions += 1

    async def _add_device_nodes(self, obj: Any, idx: int, dev_id: str, dev: SimDevice) -> None:
        writable = dev_id not in self.read_only
        p_range = (dev.p_min_mw, dev.p_max_mw)
        q_range = (-dev.s_mva, dev.s_mva)
        sign = {
            DeviceKind.PV: "generation positive",
            DeviceKind.RENEWABLE: "generation positive",
            DeviceKind.STORAGE: "charging positive, discharging negative",
        }.get(dev.device.kind, "consumption positive")
        analog: list[tuple[str, float, im.Unit, str, tuple[float, float] | None, Rule | None]] = [
            (
                "P_setpoint_MW",
                dev.target_p,
                im.MW,
                f"Active-power setpoint ({sign}); refused outside the nameplate "
                f"[{dev.p_min_mw:g}, {dev.p_max_mw:g}] MW.",
                p_range,
                number_rule(*p_range, f"{dev_id} P_setpoint_MW"),
            ),
            (
                "Q_setpoint_Mvar",
                dev.target_q,
                im.MVAR,
                f"Reactive-power setpoint; refused outside ±{dev.s_mva:g} Mvar, and a command "
                "whose P and Q together exceed the rating is not applied.",
                q_range,
                number_rule(*q_range, f"{dev_id} Q_setpoint_Mvar"),
            ),
            (
                "ReversionTimeout_s",
                0.0 if math.isinf(dev.timeout_s) else dev.timeout_s,
                im.SECOND,
                "After this long without a new command or heartbeat the device returns to its "
                "default operating point (0: never).",
                (0.0, 86400.0),
                number_rule(0.0, 86400.0, f"{dev_id} ReversionTimeout_s"),
            ),
            (
                "Ramp_MW_per_s",
                0.0 if math.isinf(dev.ramp) else dev.ramp,
                im.MW_PER_S,
                "Largest change of P per second toward a new setpoint (0: a step).",
                None,
                number_rule(0.0, math.inf, f"{dev_id} Ramp_MW_per_s"),
            ),
            ("P_MW", dev.actual_p, im.MW, f"Measured active power ({sign}).", p_range, None),
            ("Q_Mvar", dev.actual_q, im.MVAR, "Measured reactive power.", q_range, None),
            ("P_min_MW", dev.p_min_mw, im.MW, "Nameplate: lowest active power.", p_range, None),
            ("P_max_MW", dev.p_max_mw, im.MW, "Nameplate: highest active power.", p_range, None),
            (
                "S_rating_MVA",
                dev.s_mva,
                im.MVA,
                "Nameplate: apparent-power rating.",
                (0.0, dev.s_mva),
                None,
            ),
        ]
        for name, value, unit, text, rng, rule in analog:
            node = await im.add_analog(
                obj,
                ua.NodeId(f"Devices.{dev_id}.{name}", idx),
                name,
                float(value),
                unit,
                text,
                rng,
                writable=writable and rule is not None,
            )
            if writable and rule is not None:
                self.guard.accept(node.nodeid, rule)
            dev.nodes[name] = node
        plain: list[tuple[str, ua.Variant, str, Rule | None]] = [
            (
                "Enable",
                ua.Variant(True, ua.VariantType.Boolean),
                "False: the device ignores P and Q and runs at its default.",
                type_rule(ua.VariantType.Boolean, f"{dev_id} Enable"),
            ),
            (
                "ValidUntil_s",
                ua.Variant(0.0, ua.VariantType.Double),
                "End of the command's validity (Unix time, s); a command arriving later is "
                "ignored (0: no limit).",
                number_rule(0.0, math.inf, f"{dev_id} ValidUntil_s"),
            ),
            (
                "CommandId",
                ua.Variant(dev.last_command, ua.VariantType.String),
                "Idempotent command id, written last: a new id applies the setpoints once; "
                "an id seen before is ignored.",
                type_rule(ua.VariantType.String, f"{dev_id} CommandId"),
            ),
            (
                "Reverted",
                ua.Variant(dev.reverted, ua.VariantType.Boolean),
                "True while the device runs at its default after its reversion timeout.",
                None,
            ),
            (
                "Bus",
                ua.Variant(int(dev.device.bus), ua.VariantType.UInt32),
                "Index of the bus the device is connected to.",
                None,
            ),
            (
                "EnergyImported_Wh",
                ua.Variant(0, ua.VariantType.UInt64),
                "Meter register: energy the device has taken from the network (consumed or "
                "charged) since the simulator started, Wh, cumulative.",
                None,
            ),
            (
                "EnergyExported_Wh",
                ua.Variant(0, ua.VariantType.UInt64),
                "Meter register: energy the device has fed into the network (generated or "
                "discharged) since the simulator started, Wh, cumulative.",
                None,
            ),
        ]
        for name, variant, text, rule in plain:
            node = await im.add_value(
                obj,
                ua.NodeId(f"Devices.{dev_id}.{name}", idx),
                name,
                variant,
                text,
                writable=writable and rule is not None,
            )
            if writable and rule is not None:
                self.guard.accept(node.nodeid, rule)
            dev.nodes[name] = node

    async def _add_discrete_nodes(self, obj: Any, idx: int, dev_id: str, disc: SimDiscrete) -> None:
        d = disc.device
        int32 = ua.VariantType.Int32
        what = "tap position" if d.kind == "tap" else "number of capacitor steps in service"
        entries: list[tuple[str, ua.Variant, str, Rule | None]] = [
            (
                "Position_setpoint",
                ua.Variant(disc.position, int32),
                f"Commanded {what}; refused outside [{d.minimum}, {d.maximum}].",
                integer_rule(d.minimum, d.maximum, f"{dev_id} Position_setpoint", int32),
            ),
            (
                "CommandId",
                ua.Variant(disc.last_command, ua.VariantType.String),
                "Idempotent command id, written last: a new id moves the device once.",
                type_rule(ua.VariantType.String, f"{dev_id} CommandId"),
            ),
            (
                "ValidUntil_s",
                ua.Variant(0.0, ua.VariantType.Double),
                "End of the command's validity (Unix time, s); 0: no limit.",
                number_rule(0.0, math.inf, f"{dev_id} ValidUntil_s"),
            ),
            ("Position", ua.Variant(disc.position, int32), f"Measured {what}.", None),
            ("Position_min", ua.Variant(d.minimum, int32), f"Lowest {what}.", None),
            ("Position_max", ua.Variant(d.maximum, int32), f"Highest {what}.", None),
            (
                "Bus",
                ua.Variant(int(d.bus), ua.VariantType.UInt32),
                "Index of the bus the device regulates.",
                None,
            ),
        ]
        for name, variant, text, rule in entries:
            node = await im.add_value(
                obj,
                ua.NodeId(f"Devices.{dev_id}.{name}", idx),
                name,
                variant,
                text,
                writable=rule is not None,
            )
            if rule is not None:
                self.guard.accept(node.nodeid, rule)
            disc.nodes[name] = node

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
            except Exception as exc:  # a failed cycle is logged; the simulator keeps serving
                log.warning("simulator cycle failed: %s", exc)
                await self._degrade(f"{type(exc).__name__}: {exc}")
            last = now

    async def _degrade(self, reason: str) -> None:
        """The measurements this cycle could not update keep their value and time but are
        Uncertain (last usable value) until a cycle succeeds; the reason is published."""
        self.failed_cycles += 1
        self.last_cycle_error = reason
        nodes = [self._nodes[k] for k in self._nodes if k.startswith(("bus", "br"))]
        for dev in self.devices.values():
            nodes += [dev.nodes["P_MW"], dev.nodes["Q_Mvar"], dev.nodes["Reverted"]]
        nodes += [disc.nodes["Position"] for disc in self.discrete.values()]
        uncertain = ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)
        for node in nodes:
            old = await node.read_data_value(raise_on_bad_status=False)
            await node.write_value(
                ua.DataValue(
                    old.Value,
                    StatusCode=uncertain,
                    SourceTimestamp=old.SourceTimestamp,
                    ServerTimestamp=datetime.now(UTC),
                )
            )
        await self._nodes["last_error"].write_value(ua.Variant(reason[:500], ua.VariantType.String))

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
                    if not _admissible(dev, p, q, timeout, ramp):
                        dev.refused.append(command)  # equipment never acts on such a command
                        dev.last_command = command
                        continue
                    if dev.device.device_id not in self.deviations.stubborn:
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
            if dev.device.kind == DeviceKind.PV and self.deviations.cloud_fraction:
                cap = dev.target_p * (1.0 - self.deviations.cloud_fraction * self._rng.random())
                dev.actual_p = min(dev.actual_p, cap)
            wh = dev.export_mw * 1e6 * dt * self.time_scale / 3600.0
            if wh >= 0:
                dev.exported_wh += wh
            else:
                dev.imported_wh -= wh
            # the registers count whole watt-hours, as a meter shows them
            for name, value in (
                ("EnergyImported_Wh", dev.imported_wh),
                ("EnergyExported_Wh", dev.exported_wh),
            ):
                await dev.nodes[name].write_value(ua.Variant(int(value), ua.VariantType.UInt64))
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
                raise BridgeError("this AC checker cannot move taps or capacitor steps")
            self._ac = with_positions(positions)
        await self._power_flow()
        self.cycles += 1

    async def _power_flow(self) -> None:
        p_dev = {d.device.device_id: d.actual_p for d in self.devices.values()}
        q_dev = {d.device.device_id: d.actual_q for d in self.devices.values()}
        p, q = device_bus_consumption(self.view, p_dev, q_dev)
        flow = self._ac(p[None, :], q[None, :])
        vm, loading = flow.vm_pu[0], flow.branch_loading_percent[0]
        if not (np.isfinite(vm).all() and np.isfinite(loading).all()):
            raise BridgeError("the AC power flow returned non-finite voltages or loadings")
        self.vm_pu, self.loading_percent = vm, loading
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
        if self.last_cycle_error:
            self.last_cycle_error = ""
            await self._nodes["last_error"].write_value(ua.Variant("", ua.VariantType.String))
        await self._nodes["cycles"].write_value(
            ua.Variant((self.cycles + 1) % 2**32, ua.VariantType.UInt32)
        )


def _admissible(dev: SimDevice, p: float, q: float, timeout: float, ramp: float) -> bool:
    """Finite values within the nameplate, P and Q together within the rating."""
    if not all(math.isfinite(v) for v in (p, q, timeout, ramp)) or timeout < 0 or ramp < 0:
        return False
    if not dev.p_min_mw - 1e-9 <= p <= dev.p_max_mw + 1e-9:
        return False
    return math.hypot(p, q) <= dev.s_mva * (1 + 1e-6)
