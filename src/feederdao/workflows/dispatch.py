"""Dispatch a cleared interval to feeder equipment (the simulator) over secured OPC UA."""

from __future__ import annotations

import asyncio
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from asyncua import ua

from feederdao.domain.clearing import ClearingResult
from feederdao.domain.profiles import FloatArray
from feederdao.grid_model.powerflow import AcEvaluator
from feederdao.scada_bridge.audit import AuditLog
from feederdao.scada_bridge.bridge import Bridge, PushReport
from feederdao.scada_bridge.nodemap import nodemap_for
from feederdao.scada_bridge.security import (
    ClientSecurity,
    ServerSecurity,
    generate_certificate,
    hash_password,
)
from feederdao.scada_bridge.simulator import NAMESPACE, FeederSimulator
from feederdao.workflows.clearing import Market


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


async def dispatch_to_simulator(
    market: Market, result: ClearingResult, period: int, workdir: Path
) -> DispatchCheck:
    """Start the feeder simulator on loopback at the profile's operating point, push the
    period's setpoints over Basic256Sha256/SignAndEncrypt with a dispatcher account, read
    them back, and read the voltages the simulator then measures."""
    pki = workdir / "pki"
    await generate_certificate(
        pki / "server_key.pem",
        pki / "server.der",
        "urn:feederdao:feeder-simulator:server",
        True,
        "127.0.0.1",
    )
    await generate_certificate(pki / "client_key.pem", pki / "client.der", "urn:feederdao:bridge")
    password = secrets.token_urlsafe(16)
    view, net = market.network.view, market.network.loaded.net
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
    prof = market.profiles
    sim.set_operating_point(
        {d: float(prof.p_mw[period, k]) for k, d in enumerate(prof.device_ids)},
        {d: float(prof.q_mvar[period, k]) for k, d in enumerate(prof.device_ids)},
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
        async with Bridge(nm, client_sec, AuditLog(workdir / "audit.jsonl")) as bridge:
            report = await bridge.push(f"interval-{period}", result.setpoints_for(period))
            await asyncio.sleep(0.5)  # a few simulator cycles: ramps done, power flow published
            client = bridge._client
            assert client is not None
            idx = await client.get_namespace_index(NAMESPACE)
            nodes = [
                client.get_node(ua.NodeId(f"Buses.{b}.Vm_pu", idx)) for b in result.bus_indices
            ]
            measured = np.array(await client.read_values(nodes), dtype=float)
    opf = result.ac_vm_pu if result.ac_vm_pu is not None else result.lp_vm_pu
    return DispatchCheck(
        period, report, result.bus_names, np.asarray(opf[period]), measured, client_sec.policy
    )
