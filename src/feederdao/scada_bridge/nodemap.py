"""The node map: which OPC UA nodes carry each device's setpoints and measurements.

A TOML file; node identifiers are string ids within a namespace named by its URI (resolved to
an index when connecting, never written as one)::

    [server]
    endpoint = "opc.tcp://127.0.0.1:4841/feederdao/simulator"
    namespace = "urn:feederdao:feeder-simulator"
    heartbeat = "Heartbeat"

    [devices."sgen:0"]
    kind = "pv"
    p_setpoint = "Devices.sgen:0.P_setpoint_MW"
    q_setpoint = "Devices.sgen:0.Q_setpoint_Mvar"
    enable = "Devices.sgen:0.Enable"
    reversion_timeout = "Devices.sgen:0.ReversionTimeout_s"
    ramp = "Devices.sgen:0.Ramp_MW_per_s"
    command_id = "Devices.sgen:0.CommandId"
    p_measured = "Devices.sgen:0.P_MW"
    q_measured = "Devices.sgen:0.Q_Mvar"
    p_min_mw = 0.0         # nameplate: a setpoint outside is refused, not clipped
    p_max_mw = 0.04
    s_mva = 0.04
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from feederdao.scada_bridge.errors import NodeMapError

NODE_FIELDS = (
    "p_setpoint",
    "q_setpoint",
    "enable",
    "reversion_timeout",
    "ramp",
    "valid_until",
    "position_setpoint",
    "position_measured",
    "command_id",
    "p_measured",
    "q_measured",
    "energy_imported",
    "energy_exported",
)
DISCRETE_KINDS = ("tap", "capacitor")


@dataclass(frozen=True)
class DeviceNodes:
    device_id: str
    kind: str
    p_min_mw: float
    p_max_mw: float
    s_mva: float
    nodes: dict[str, str]
    namespace: str | None = None
    position_min: int | None = None
    position_max: int | None = None

    @property
    def discrete(self) -> bool:
        """A tap changer or capacitor bank: set by position, not by P and Q."""
        return self.kind in DISCRETE_KINDS


@dataclass(frozen=True)
class NodeMap:
    endpoint: str
    namespace: str
    heartbeat: str | None
    devices: dict[str, DeviceNodes] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> NodeMap:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise NodeMapError(f"cannot read the node map {str(path)!r}: {exc}") from exc
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "node map") -> NodeMap:
        server = raw.get("server")
        if not isinstance(server, dict) or "endpoint" not in server or "namespace" not in server:
            raise NodeMapError(f"{where}: [server] needs endpoint and namespace (a URI)")
        devices: dict[str, DeviceNodes] = {}
        for dev_id, spec in (raw.get("devices") or {}).items():
            if not isinstance(spec, dict):
                raise NodeMapError(f"{where}: [devices.{dev_id!r}] must be a table")
            kind = str(spec.get("kind", "device"))
            discrete = kind in DISCRETE_KINDS
            required = ("position_setpoint" if discrete else "p_setpoint", "command_id")
            missing = [f for f in required if f not in spec]
            if missing:
                raise NodeMapError(f"{where}: device {dev_id!r} lacks {', '.join(missing)}")
            nodes = {f: str(spec[f]) for f in NODE_FIELDS if f in spec}
            try:
                if discrete:
                    lo, hi = int(spec["position_min"]), int(spec["position_max"])
                    if lo > hi:
                        raise NodeMapError(f"{where}: device {dev_id!r}: position_min > max")
                    devices[dev_id] = DeviceNodes(
                        dev_id, kind, 0.0, 0.0, 1.0, nodes, spec.get("namespace"), lo, hi
                    )
                    continue
                p_min, p_max = float(spec["p_min_mw"]), float(spec["p_max_mw"])
                s = float(spec.get("s_mva", max(abs(p_min), abs(p_max))))
            except KeyError as exc:
                raise NodeMapError(f"{where}: device {dev_id!r} lacks {exc.args[0]}") from None
            except (TypeError, ValueError) as exc:
                raise NodeMapError(f"{where}: device {dev_id!r}: {exc}") from None
            if p_min > p_max or s <= 0:
                raise NodeMapError(f"{where}: device {dev_id!r}: p_min_mw > p_max_mw or s_mva ≤ 0")
            devices[dev_id] = DeviceNodes(
                dev_id, kind, p_min, p_max, s, nodes, spec.get("namespace")
            )
        return cls(
            str(server["endpoint"]), str(server["namespace"]), server.get("heartbeat"), devices
        )

    def to_toml(self) -> str:
        def q(value: str) -> str:
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = ["[server]", f"endpoint = {q(self.endpoint)}", f"namespace = {q(self.namespace)}"]
        if self.heartbeat:
            lines.append(f"heartbeat = {q(self.heartbeat)}")
        for dev in self.devices.values():
            lines += ["", f"[devices.{q(dev.device_id)}]", f"kind = {q(dev.kind)}"]
            if dev.namespace:
                lines.append(f"namespace = {q(dev.namespace)}")
            lines += [f"{k} = {q(v)}" for k, v in dev.nodes.items()]
            if dev.discrete:
                lines += [
                    f"position_min = {dev.position_min}",
                    f"position_max = {dev.position_max}",
                ]
            else:
                lines += [
                    f"p_min_mw = {dev.p_min_mw!r}",
                    f"p_max_mw = {dev.p_max_mw!r}",
                    f"s_mva = {dev.s_mva!r}",
                ]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        path.write_text(self.to_toml())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def nodemap_for(
    devices: Any,
    endpoint: str,
    namespace: str,
    heartbeat: str | None = "Heartbeat",
    discrete: Any = (),
) -> NodeMap:
    """A node map for devices laid out as the simulator and feederdao's server do
    (``Devices.<id>.<field>``); ``devices`` yields (device_id, kind, p_min, p_max, s)."""
    fields = {
        "p_setpoint": "P_setpoint_MW",
        "q_setpoint": "Q_setpoint_Mvar",
        "enable": "Enable",
        "reversion_timeout": "ReversionTimeout_s",
        "ramp": "Ramp_MW_per_s",
        "valid_until": "ValidUntil_s",
        "command_id": "CommandId",
        "p_measured": "P_MW",
        "q_measured": "Q_Mvar",
        "energy_imported": "EnergyImported_Wh",
        "energy_exported": "EnergyExported_Wh",
    }
    out = {}
    for dev_id, kind, p_min, p_max, s in devices:
        out[dev_id] = DeviceNodes(
            dev_id,
            kind,
            float(p_min),
            float(p_max),
            float(s),
            {k: f"Devices.{dev_id}.{v}" for k, v in fields.items()},
        )
    for dev_id, kind, lo, hi in discrete:  # (device_id, tap|capacitor, min, max)
        out[dev_id] = DeviceNodes(
            dev_id,
            kind,
            0.0,
            0.0,
            1.0,
            {
                "position_setpoint": f"Devices.{dev_id}.Position_setpoint",
                "position_measured": f"Devices.{dev_id}.Position",
                "valid_until": f"Devices.{dev_id}.ValidUntil_s",
                "command_id": f"Devices.{dev_id}.CommandId",
            },
            None,
            int(lo),
            int(hi),
        )
    return NodeMap(endpoint, namespace, heartbeat, out)


async def nodemap_from_server(client: Any, endpoint: str, namespace: str) -> NodeMap:
    """Build a node map by browsing a server laid out as the simulator is
    (``Feeder/Devices/<device>`` with nameplate variables); asyncua's errors become
    :class:`~feederdao.scada_bridge.errors.BridgeError`."""
    from asyncua import ua

    from feederdao.scada_bridge.errors import BridgeError

    try:
        return await _nodemap_from_server(client, endpoint, namespace)
    except (ua.UaError, ValueError, ConnectionError, OSError, TimeoutError) as exc:
        raise BridgeError(
            f"cannot build a node map from {endpoint} (namespace {namespace}): "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc


async def _nodemap_from_server(client: Any, endpoint: str, namespace: str) -> NodeMap:
    from asyncua import ua

    idx = await client.get_namespace_index(namespace)
    devices_folder = client.get_node(ua.NodeId("Devices", idx))
    rows = []
    discrete = []
    for child in await devices_folder.get_children():
        name = (await child.read_browse_name()).Name
        base = f"Devices.{name}"
        if name.split(":", 1)[0] in ("trafo", "shunt"):
            lo = int(await client.get_node(ua.NodeId(f"{base}.Position_min", idx)).read_value())
            hi = int(await client.get_node(ua.NodeId(f"{base}.Position_max", idx)).read_value())
            discrete.append((name, "tap" if name.startswith("trafo") else "capacitor", lo, hi))
            continue

        async def value(field: str, base: str = base) -> float:
            return float(await client.get_node(ua.NodeId(f"{base}.{field}", idx)).read_value())

        p_min, p_max, s = (
            await value("P_min_MW"),
            await value("P_max_MW"),
            await value("S_rating_MVA"),
        )
        kind = name.split(":", 1)[0]
        rows.append((name, {"sgen": "pv"}.get(kind, kind), p_min, p_max, s))
    return nodemap_for(rows, endpoint, namespace, discrete=discrete)
