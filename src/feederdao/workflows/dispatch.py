"""Dispatch a cleared interval to feeder equipment (the simulator) over secured OPC UA, and the
operator's hold on dispatch (:class:`DispatchControl`)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from feederdao.domain.clearing import ClearingResult
from feederdao.domain.profiles import FloatArray, Profiles
from feederdao.grid_model.powerflow import AcEvaluator
from feederdao.scada_bridge.audit import AuditLog, AuditSink
from feederdao.scada_bridge.bridge import Bridge, PushReport
from feederdao.scada_bridge.nodemap import NodeMap, nodemap_for
from feederdao.scada_bridge.security import (
    ClientSecurity,
    ServerSecurity,
    generate_certificate,
    hash_password,
)
from feederdao.scada_bridge.simulator import NAMESPACE, FeederSimulator
from feederdao.workflows.clearing import Market
from feederdao.workflows.network import OpenNetwork


@dataclass(frozen=True)
class DispatchCheck:
    """A pushed interval: what the equipment confirmed and the voltages it then measured."""

    period: int
    report: PushReport
    bus_names: tuple[str, ...]
    opf_vm_pu: FloatArray
    measured_vm_pu: FloatArray
    policy: str

    @property
    def max_deviation_pu(self) -> float:
        return float(np.abs(self.measured_vm_pu - self.opf_vm_pu).max())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class SimulatedFeeder:
    """The feeder simulator on loopback, its node map, and a dispatcher's client security."""

    simulator: FeederSimulator
    nodemap: NodeMap
    client: ClientSecurity


async def pki_for(workdir: Path) -> Path:
    pki = workdir / "pki"
    if not (pki / "server.der").is_file():
        await generate_certificate(
            pki / "server_key.pem",
            pki / "server.der",
            "urn:feederdao:feeder-simulator:server",
            True,
            "127.0.0.1",
        )
    if not (pki / "client.der").is_file():
        await generate_certificate(
            pki / "client_key.pem", pki / "client.der", "urn:feederdao:bridge"
        )
    return pki


@asynccontextmanager
async def simulated_feeder(
    network: OpenNetwork, profiles: Profiles, period: int, workdir: Path
) -> AsyncIterator[SimulatedFeeder]:
    """Start the feeder simulator on a free loopback port at the profile's operating point in
    ``period``, with Basic256Sha256/SignAndEncrypt and a one-off dispatcher password."""
    pki = await pki_for(workdir)
    password = secrets.token_urlsafe(16)
    view, net = network.view, network.loaded.net
    security = ServerSecurity(
        pki / "server.der",
        pki / "server_key.pem",
        (pki / "client.der",),
        {"feederdao": (hash_password(password), "dispatcher")},
    )
    sim = FeederSimulator(
        view,
        AcEvaluator(net, view),
        f"opc.tcp://127.0.0.1:{_free_port()}/feederdao/simulator",
        security,
        period_s=0.1,
    )
    sim.set_operating_point(
        {d: float(profiles.p_mw[period, k]) for k, d in enumerate(profiles.device_ids)},
        {d: float(profiles.q_mvar[period, k]) for k, d in enumerate(profiles.device_ids)},
    )
    client_sec = ClientSecurity(
        "Basic256Sha256",
        pki / "client.der",
        pki / "client_key.pem",
        pki / "server.der",
        "feederdao",
        password,
    )
    async with sim:
        nm = nodemap_for(
            [
                (k, str(v.device.kind), v.p_min_mw, v.p_max_mw, v.s_mva)
                for k, v in sim.devices.items()
            ],
            sim.endpoint,
            NAMESPACE,
        )
        yield SimulatedFeeder(sim, nm, client_sec)


async def dispatch_to_simulator(
    market: Market, result: ClearingResult, period: int, workdir: Path
) -> DispatchCheck:
    """Start the feeder simulator on loopback at the profile's operating point, push the
    period's setpoints over Basic256Sha256/SignAndEncrypt with a dispatcher account, read
    them back, and read the voltages the simulator then measures."""
    async with (
        simulated_feeder(market.network, market.profiles, period, workdir) as feeder,
        Bridge(feeder.nodemap, feeder.client, AuditLog(workdir / "audit.jsonl")) as bridge,
    ):
        report = await bridge.push(f"interval-{period}", result.setpoints_for(period))
        await asyncio.sleep(0.5)  # a few simulator cycles: ramps done, power flow published
        voltages = await bridge.read([f"Buses.{b}.Vm_pu" for b in result.bus_indices], NAMESPACE)
        measured = np.array(voltages, dtype=float)
    opf = result.ac_vm_pu if result.ac_vm_pu is not None else result.lp_vm_pu
    return DispatchCheck(
        period, report, result.bus_names, np.asarray(opf[period]), measured, feeder.client.policy
    )


@dataclass
class DispatchControl:
    """Whether an operator holds dispatch: while suspended, the operator loop pushes no setpoint
    and publishes no clearing. Each change is audited; the API's ``/health`` shows the state."""

    audit: AuditSink
    suspended: bool = False
    reason: str = ""
    by: str = ""
    since: datetime | None = None

    async def suspend(self, reason: str, by: str) -> None:
        """Hold dispatch (recorded first: if the audit cannot be written, nothing changes)."""
        now = datetime.now(UTC)
        await asyncio.to_thread(
            self.audit.record, "dispatch-suspended", reason=reason, by=by, at=now.isoformat()
        )
        self.suspended, self.reason, self.by, self.since = True, reason, by, now

    async def resume(self, by: str) -> None:
        now = datetime.now(UTC)
        await asyncio.to_thread(
            self.audit.record,
            "dispatch-resumed",
            by=by,
            suspended_since=self.since.isoformat() if self.since else None,
            at=now.isoformat(),
        )
        self.suspended, self.reason, self.by, self.since = False, "", by, now

    def state(self) -> dict[str, object]:
        return {
            "state": "suspended" if self.suspended else "running",
            "reason": self.reason or None,
            "by": self.by or None,
            "since": self.since.isoformat() if self.since else None,
        }
