"""The bridge: push a clearing's setpoints to feeder equipment over OPC UA and prove they
arrived.

One push per dispatch cycle: every device's setpoints (P, Q, enable, reversion timeout, the end
of the command's validity window) and, last, its idempotent command id go out in one batched
write (split to the server's ``MaxNodesPerWrite``); each written value is read back until it
matches within a tolerance or a deadline passes (P and Q, or the position). A lost connection is
retried with backoff and the cycle re-pushed exactly once; equipment ignores a command id it has
seen, so nothing acts twice. If the re-push fails too, or the equipment cannot be reached again,
:class:`~feederdao.scada_bridge.errors.ConnectionLostError` is raised, and the bridge's next
request (push or read) tries to reconnect again, so equipment back after an outage is reached
without restarting the service. A heartbeat counter is
written at a fixed period. Every planned command, with its status code and read-back, goes to
the audit log whatever happens to the send, and failures are reported per device; asyncua's
errors never leave this module untranslated.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncua import Client, ua

from feederdao.domain.clearing import Setpoint
from feederdao.scada_bridge.audit import AuditSink
from feederdao.scada_bridge.errors import BridgeError, ConnectionLostError
from feederdao.scada_bridge.nodemap import DeviceNodes, NodeMap
from feederdao.scada_bridge.security import ClientSecurity, secure_client

_CONNECTION_ERRORS = (ConnectionError, OSError, asyncio.TimeoutError)
_LOST = {
    ua.StatusCodes.BadConnectionClosed,
    ua.StatusCodes.BadSessionClosed,
    ua.StatusCodes.BadSessionIdInvalid,
    ua.StatusCodes.BadSecureChannelClosed,
    ua.StatusCodes.BadCommunicationError,
    ua.StatusCodes.BadTimeout,
    ua.StatusCodes.BadServerNotConnected,
    ua.StatusCodes.BadSecureChannelIdInvalid,
}


@dataclass(frozen=True)
class DeviceResult:
    device_id: str
    command_id: str
    ok: bool
    status: str
    read_back_mw: float | None = None
    read_back_mvar: float | None = None


@dataclass(frozen=True)
class PushReport:
    cycle_id: str
    devices: tuple[DeviceResult, ...]
    repushed: bool
    write_s: float
    read_back_s: float

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.devices)

    @property
    def failed(self) -> tuple[DeviceResult, ...]:
        return tuple(d for d in self.devices if not d.ok)


@dataclass
class _Write:
    device: str
    node: Any
    value: Any
    field: str


@dataclass
class Bridge:
    """OPC UA client pushing setpoints to the equipment described by ``nodemap``."""

    nodemap: NodeMap
    security: ClientSecurity
    audit: AuditSink
    tolerance_mw: float = 1e-6
    read_back_deadline_s: float = 2.0
    reversion_timeout_s: float = 60.0
    validity_s: float = 900.0
    heartbeat_period_s: float = 1.0
    reconnect_attempts: int = 6
    backoff_s: float = 0.2
    timeout_s: float = 4.0
    _client: Client | None = None
    _ns: dict[str, int] = field(default_factory=dict)
    _max_per_write: int = 0
    _heartbeat_task: asyncio.Task[None] | None = None
    heartbeat_count: int = 0

    # -- connection -----------------------------------------------------------------------

    async def connect(self) -> None:
        client = Client(self.nodemap.endpoint, timeout=self.timeout_s)
        await secure_client(client, self.security)  # raises BridgeError
        try:
            await client.connect()
        except Exception as exc:
            raise BridgeError(f"cannot connect to {self.nodemap.endpoint}: {_reason(exc)}") from exc
        self._client = client
        self._ns = {}
        for uri in {
            self.nodemap.namespace,
            *(d.namespace for d in self.nodemap.devices.values() if d.namespace),
        }:
            try:
                self._ns[uri] = await client.get_namespace_index(uri)
            except Exception as exc:
                raise BridgeError(f"{self.nodemap.endpoint} has no namespace {uri!r}") from exc
        try:
            limit = client.get_node(
                ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerWrite
            )
            self._max_per_write = int(await limit.read_value() or 0)
        except Exception:
            self._max_per_write = 0
        self.audit.record("connected", endpoint=self.nodemap.endpoint, policy=self.security.policy)

    async def close(self) -> None:
        await self.stop_heartbeat()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.disconnect()
            self._client = None

    async def __aenter__(self) -> Bridge:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _reconnect(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.disconnect()
            self._client = None
        delay = self.backoff_s
        for attempt in range(1, self.reconnect_attempts + 1):
            try:
                await self.connect()
                self.audit.record("reconnected", attempt=attempt)
                return
            except BridgeError as exc:
                self.audit.record("reconnect-failed", attempt=attempt, reason=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise ConnectionLostError(
            f"{self.nodemap.endpoint} unreachable after {self.reconnect_attempts} attempts"
        )

    async def _connected(self) -> Client:
        """The client, reconnecting first when an earlier reconnect gave up."""
        if self._client is None:
            await self._reconnect()
        assert self._client is not None
        return self._client

    async def _forget_if_lost(self, exc: BaseException) -> None:
        """A read that lost the connection: the next request reconnects."""
        lost = isinstance(exc, _CONNECTION_ERRORS) or getattr(exc, "code", None) in _LOST
        if lost and self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.disconnect()
            self._client = None

    def _node(self, dev: DeviceNodes | None, ident: str) -> Any:
        assert self._client is not None
        uri = (dev.namespace if dev and dev.namespace else None) or self.nodemap.namespace
        return self._client.get_node(ua.NodeId(ident, self._ns[uri]))

    # -- push -----------------------------------------------------------------------------

    def command_id(self, cycle_id: str, device_id: str) -> str:
        return f"{cycle_id}/{device_id}"

    def _refusal(self, sp: Setpoint, dev: DeviceNodes | None) -> str | None:
        if dev is None:
            return "device not in the node map"
        if dev.discrete:
            if sp.position is None:
                return f"a {dev.kind} setpoint needs a position"
            lo, hi = dev.position_min, dev.position_max
            if lo is not None and hi is not None and not lo <= sp.position <= hi:
                return f"position {sp.position} outside [{lo}, {hi}]: refused, not clipped"
            return None
        if not (math.isfinite(sp.p_mw) and math.isfinite(sp.q_mvar)):
            return "setpoint is not a finite number"
        if not dev.p_min_mw - 1e-9 <= sp.p_mw <= dev.p_max_mw + 1e-9:
            return (
                f"P {sp.p_mw:.6f} MW outside nameplate [{dev.p_min_mw:g}, {dev.p_max_mw:g}] "
                "MW: refused, not clipped"
            )
        if math.hypot(sp.p_mw, sp.q_mvar) > dev.s_mva * (1 + 1e-6):
            return (
                f"S {math.hypot(sp.p_mw, sp.q_mvar):.6f} MVA above the {dev.s_mva:g} MVA "
                "rating: refused, not clipped"
            )
        return None

    async def push(self, cycle_id: str, setpoints: Sequence[Setpoint]) -> PushReport:
        """Write one cycle's setpoints in one batch, read them back, report per device.

        Every planned command is audited, whatever happens to the send; if the connection is
        lost and the one re-push fails too (or the server stays unreachable), the commands are
        audited as not confirmed and :class:`ConnectionLostError` is raised.
        """
        results: dict[str, DeviceResult] = {}
        plan: list[tuple[Setpoint, DeviceNodes]] = []
        for sp in setpoints:
            dev = self.nodemap.devices.get(sp.device_id)
            cid = self.command_id(cycle_id, sp.device_id)
            reason = self._refusal(sp, dev)
            if reason or dev is None:
                results[sp.device_id] = DeviceResult(sp.device_id, cid, False, f"refused: {reason}")
                self.audit.record(
                    "refused",
                    cycle=cycle_id,
                    device=sp.device_id,
                    command=cid,
                    p_mw=sp.p_mw,
                    q_mvar=sp.q_mvar,
                    reason=reason,
                )
                continue
            plan.append((sp, dev))
        repushed = False
        t0 = time.perf_counter()
        try:
            await self._connected()
            try:
                statuses = await self._write_cycle(cycle_id, plan)
            except _CONNECTION_ERRORS as exc:
                self.audit.record("push-interrupted", cycle=cycle_id, reason=_reason(exc))
                await self._reconnect()
                repushed = True
                self.audit.record("re-push", cycle=cycle_id)
                statuses = await self._write_cycle(cycle_id, plan)
            write_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            good = [
                (sp, dev) for sp, dev in plan if all(s.is_good() for s in statuses[sp.device_id])
            ]
            read_back = await self._read_back(good) if good else {}
        except BaseException as exc:
            # whatever went wrong, each planned command is on record as not confirmed
            reason = _reason(exc) if not isinstance(exc, asyncio.CancelledError) else "cancelled"
            unconfirmed = [
                (
                    sp,
                    DeviceResult(
                        sp.device_id,
                        self.command_id(cycle_id, sp.device_id),
                        False,
                        f"not confirmed: {reason}",
                    ),
                )
                for sp, _ in plan
            ]
            self._audit_commands(cycle_id, unconfirmed, repushed)
            lost = f"{len(plan)} command(s) to {self.nodemap.endpoint} not confirmed"
            if isinstance(exc, _CONNECTION_ERRORS):
                again = " after the re-push" if repushed else ""
                raise ConnectionLostError(f"cycle {cycle_id}: {lost}{again}: {reason}") from exc
            if isinstance(exc, ua.UaError):
                raise BridgeError(f"cycle {cycle_id}: {lost}: {reason}") from exc
            raise
        read_s = time.perf_counter() - t0
        done: list[tuple[Setpoint, DeviceResult]] = []
        for sp, dev in plan:
            cid = self.command_id(cycle_id, sp.device_id)
            bad = [s for s in statuses[sp.device_id] if not s.is_good()]
            if bad:
                status = ", ".join(sorted({s.name for s in bad}))
                results[sp.device_id] = DeviceResult(sp.device_id, cid, False, f"write: {status}")
            else:
                p, q = read_back.get(sp.device_id, (None, None))
                ok = self._matches(sp, p, q, dev)
                status = "Good" if ok else self._mismatch(sp, p, q)
                results[sp.device_id] = DeviceResult(sp.device_id, cid, ok, status, p, q)
            done.append((sp, results[sp.device_id]))
        self._audit_commands(cycle_id, done, repushed)
        ordered = tuple(results[sp.device_id] for sp in setpoints if sp.device_id in results)
        return PushReport(cycle_id, ordered, repushed, write_s, read_s)

    def _audit_commands(
        self, cycle_id: str, done: list[tuple[Setpoint, DeviceResult]], repushed: bool
    ) -> None:
        """One audit record per command, with one write and one fsync per cycle."""
        self.audit.record_many(
            [
                (
                    "command",
                    {
                        "cycle": cycle_id,
                        "device": sp.device_id,
                        "command": r.command_id,
                        "p_mw": sp.p_mw,
                        "q_mvar": sp.q_mvar,
                        "position": sp.position,
                        "status": r.status,
                        "read_back_mw": r.read_back_mw,
                        "read_back_mvar": r.read_back_mvar,
                        "repushed": repushed,
                    },
                )
                for sp, r in done
            ]
        )

    def _matches(
        self, sp: Setpoint, p: float | None, q: float | None, dev: DeviceNodes | None = None
    ) -> bool:
        """The read-back equals the command: the position, or P and (where the equipment has a
        Q setpoint) Q within ``tolerance_mw``."""
        if p is None:
            return False
        if sp.position is not None:
            return abs(p - sp.position) <= 1e-9
        if abs(p - sp.p_mw) > self.tolerance_mw:
            return False
        if dev is not None and "q_setpoint" not in dev.nodes:
            return True
        return q is not None and abs(q - sp.q_mvar) <= self.tolerance_mw

    def _mismatch(self, sp: Setpoint, p: float | None, q: float | None) -> str:
        after = f"after {self.read_back_deadline_s:g} s"
        if sp.position is not None:
            return f"read-back position {p!r} ≠ {sp.position!r} {after}"
        return f"read-back P {p!r}, Q {q!r} ≠ ({sp.p_mw!r}, {sp.q_mvar!r}) {after}"

    async def _write_cycle(
        self, cycle_id: str, plan: list[tuple[Setpoint, DeviceNodes]]
    ) -> dict[str, list[ua.StatusCode]]:
        writes: list[_Write] = []
        valid_until = time.time() + self.validity_s
        for sp, dev in plan:
            n = dev.nodes
            if dev.discrete:
                for key, value in (
                    ("position_setpoint", ua.Variant(int(sp.position or 0), ua.VariantType.Int32)),
                    ("valid_until", ua.Variant(valid_until, ua.VariantType.Double)),
                    (
                        "command_id",
                        ua.Variant(self.command_id(cycle_id, sp.device_id), ua.VariantType.String),
                    ),
                ):
                    if key in n:
                        writes.append(_Write(sp.device_id, self._node(dev, n[key]), value, key))
                continue
            values: list[tuple[str, Any]] = [
                ("p_setpoint", ua.Variant(float(sp.p_mw), ua.VariantType.Double)),
                ("q_setpoint", ua.Variant(float(sp.q_mvar), ua.VariantType.Double)),
                ("enable", ua.Variant(True, ua.VariantType.Boolean)),
                (
                    "reversion_timeout",
                    ua.Variant(float(self.reversion_timeout_s), ua.VariantType.Double),
                ),
                ("valid_until", ua.Variant(valid_until, ua.VariantType.Double)),
                # the command id goes last: equipment acts when it changes
                (
                    "command_id",
                    ua.Variant(self.command_id(cycle_id, sp.device_id), ua.VariantType.String),
                ),
            ]
            for key, value in values:
                if key in n:
                    writes.append(_Write(sp.device_id, self._node(dev, n[key]), value, key))
        assert self._client is not None
        statuses: dict[str, list[ua.StatusCode]] = {sp.device_id: [] for sp, _ in plan}
        size = self._max_per_write or len(writes) or 1
        for start in range(0, len(writes), size):
            chunk = writes[start : start + size]
            try:
                codes = await self._client.write_values(
                    [w.node for w in chunk],
                    [w.value for w in chunk],
                    raise_on_partial_error=False,
                )
            except ua.UaStatusCodeError as exc:
                if exc.code in _LOST:
                    raise ConnectionLostError(_reason(exc)) from exc
                codes = [ua.StatusCode(exc.code)] * len(chunk)  # the whole request was refused
            for w, code in zip(chunk, codes, strict=True):
                statuses[w.device].append(code)
        return statuses

    async def _read_back(
        self, good: list[tuple[Setpoint, DeviceNodes]]
    ) -> dict[str, tuple[float | None, float | None]]:
        """(P, Q) as the equipment reports its setpoints (a discrete device: (position, None)),
        read until every one matches or the deadline passes."""
        assert self._client is not None
        nodes: list[Any] = []
        slots: list[tuple[str, int]] = []
        for sp, dev in good:
            keys = ("position_setpoint",) if dev.discrete else ("p_setpoint", "q_setpoint")
            for i, key in enumerate(keys):
                if key in dev.nodes:
                    nodes.append(self._node(dev, dev.nodes[key]))
                    slots.append((sp.device_id, i))
        deadline = time.monotonic() + self.read_back_deadline_s
        while True:
            read = await self._client.read_values(nodes)
            values: dict[str, list[float | None]] = {sp.device_id: [None, None] for sp, _ in good}
            for (device, i), v in zip(slots, read, strict=True):
                values[device][i] = float(v) if v is not None else None
            out = {k: (v[0], v[1]) for k, v in values.items()}
            if (
                all(self._matches(sp, *out[sp.device_id], dev) for sp, dev in good)
                or time.monotonic() > deadline
            ):
                return out
            await asyncio.sleep(0.05)

    async def read_energy(self, device_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Each device's meter registers, (imported Wh, exported Wh) since the meter
        started, read in one request (the node map's ``energy_imported`` and
        ``energy_exported``)."""
        client = await self._connected()
        nodes: list[Any] = []
        for device_id in device_ids:
            dev = self.nodemap.devices.get(device_id)
            if dev is None or not {"energy_imported", "energy_exported"} <= set(dev.nodes):
                raise BridgeError(
                    f"the node map gives device {device_id!r} no meter registers "
                    "(energy_imported and energy_exported)"
                )
            nodes += [self._node(dev, dev.nodes["energy_imported"])]
            nodes += [self._node(dev, dev.nodes["energy_exported"])]
        try:
            values = await client.read_values(nodes)
        except (ua.UaError, *_CONNECTION_ERRORS) as exc:
            await self._forget_if_lost(exc)
            raise BridgeError(
                f"cannot read the meter registers of {len(device_ids)} device(s) on "
                f"{self.nodemap.endpoint}: {_reason(exc)}"
            ) from exc
        out: dict[str, tuple[int, int]] = {}
        for k, device_id in enumerate(device_ids):
            imported, exported = values[2 * k], values[2 * k + 1]
            if not all(isinstance(v, int) and v >= 0 for v in (imported, exported)):
                raise BridgeError(
                    f"device {device_id!r}: the meter registers read {imported!r} and "
                    f"{exported!r}, not counts of Wh"
                )
            out[device_id] = (int(imported), int(exported))
        return out

    async def read(self, identifiers: Sequence[str], namespace: str | None = None) -> list[Any]:
        """Read the values of string node ids in ``namespace`` (a URI; the node map's by
        default), e.g. the voltages a simulator publishes."""
        client = await self._connected()
        uri = namespace or self.nodemap.namespace
        try:
            if uri not in self._ns:
                self._ns[uri] = await client.get_namespace_index(uri)
            nodes = [client.get_node(ua.NodeId(i, self._ns[uri])) for i in identifiers]
            return list(await client.read_values(nodes))
        except (ua.UaError, *_CONNECTION_ERRORS) as exc:
            await self._forget_if_lost(exc)
            raise BridgeError(
                f"cannot read {len(identifiers)} node(s) in {uri} on {self.nodemap.endpoint}: "
                f"{_reason(exc)}"
            ) from exc

    # -- heartbeat ------------------------------------------------------------------------

    async def beat(self) -> None:
        """Write the next heartbeat count."""
        if self.nodemap.heartbeat is None or self._client is None:
            return
        self.heartbeat_count = (self.heartbeat_count + 1) % 2**32
        try:
            await self._node(None, self.nodemap.heartbeat).write_value(
                ua.Variant(self.heartbeat_count, ua.VariantType.UInt32)
            )
        except _CONNECTION_ERRORS as exc:
            raise ConnectionLostError(
                f"heartbeat to {self.nodemap.endpoint}: {_reason(exc)}"
            ) from exc
        except ua.UaError as exc:
            raise BridgeError(f"heartbeat to {self.nodemap.endpoint}: {_reason(exc)}") from exc

    def start_heartbeat(self) -> None:
        async def loop() -> None:
            while True:
                try:
                    await self.beat()
                except BridgeError as exc:
                    self.audit.record("heartbeat-failed", reason=_reason(exc))
                await asyncio.sleep(self.heartbeat_period_s)

        self._heartbeat_task = asyncio.create_task(loop())

    async def stop_heartbeat(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]
