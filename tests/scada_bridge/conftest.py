"""Certificates, users, and feederdao's OPC UA servers on 127.0.0.1 for the bridge tests.

Servers are started by fixtures that always stop them, whatever the test does (as asyncua's own
tests do); async tests and fixtures run on anyio's pytest plugin with the asyncio backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from feederdao.grid_model import AcEvaluator
from feederdao.scada_bridge.audit import AuditLog
from feederdao.scada_bridge.bridge import Bridge
from feederdao.scada_bridge.nodemap import NodeMap, nodemap_for
from feederdao.scada_bridge.security import (
    ClientSecurity,
    ServerSecurity,
    generate_certificate,
    hash_password,
)
from feederdao.scada_bridge.server import MarketServer
from feederdao.scada_bridge.simulator import NAMESPACE, FeederSimulator
from feederdao.workflows.network import OpenNetwork
from tests.scada_bridge.peer import NodePeer, peer_available

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Pki:
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path
    node_pki: Path
    node_cert: Path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")

    async def make() -> None:
        await generate_certificate(
            d / "server_key.pem",
            d / "server.der",
            "urn:feederdao:feeder-simulator:server",
            server=True,
            host="127.0.0.1",
        )
        await generate_certificate(d / "client_key.pem", d / "client.der", "urn:feederdao:bridge")
        await generate_certificate(d / "rogue_key.pem", d / "rogue.der", "urn:feederdao:bridge")

    asyncio.run(make())
    node_pki = d / "node-opcua"
    node_cert = NodePeer(node_pki, d / "server.der").certificate() if peer_available() else d
    return Pki(
        d / "server.der",
        d / "server_key.pem",
        d / "client.der",
        d / "client_key.pem",
        d / "rogue.der",
        d / "rogue_key.pem",
        node_pki,
        node_cert,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


USERS = {
    "dispatch": (hash_password(PASSWORD), "dispatcher"),
    "scada": (hash_password(PASSWORD), "viewer"),
    "ops": (hash_password(PASSWORD), "operator"),
}


def server_security(pki: Pki, **kw: Any) -> ServerSecurity:
    """The test servers' security: the bridge's and node-opcua's certificates trusted."""
    trusted = (pki.client_cert, pki.node_cert) if pki.node_cert.is_file() else (pki.client_cert,)
    return ServerSecurity(pki.server_cert, pki.server_key, trusted, USERS, **kw)


def client_security(pki: Pki, user: str = "dispatch", password: str = PASSWORD) -> ClientSecurity:
    return ClientSecurity(
        "Basic256Sha256", pki.client_cert, pki.client_key, pki.server_cert, user, password
    )


def node_peer(pki: Pki, user: str | None = "dispatch", **kw: Any) -> NodePeer:
    return NodePeer(pki.node_pki, pki.server_cert, user, PASSWORD, **kw)


def simulator(opened: OpenNetwork, pki: Pki, **kw: Any) -> FeederSimulator:
    endpoint = kw.pop("endpoint", None) or f"opc.tcp://127.0.0.1:{free_port()}/feederdao/simulator"
    ac = AcEvaluator(opened.loaded.net, opened.view)
    security = kw.pop("security", None) or server_security(pki)
    return FeederSimulator(opened.view, ac, endpoint, security, period_s=0.05, **kw)


def nodemap(sim: FeederSimulator) -> NodeMap:
    return nodemap_for(
        [(k, str(v.device.kind), v.p_min_mw, v.p_max_mw, v.s_mva) for k, v in sim.devices.items()],
        sim.endpoint,
        NAMESPACE,
    )


StartSim = Callable[..., Awaitable[FeederSimulator]]
StartBridge = Callable[..., Awaitable[Bridge]]


@pytest.fixture
async def start_sim(lv_rural: OpenNetwork, pki: Pki) -> AsyncIterator[StartSim]:
    """``await start_sim(**kw)``: a running simulator, stopped after the test whatever happens
    (also when the test stopped or restarted it itself)."""
    sims: list[FeederSimulator] = []

    async def start(opened: OpenNetwork | None = None, **kw: Any) -> FeederSimulator:
        sim = simulator(opened or lv_rural, pki, **kw)
        sims.append(sim)
        await sim.start()
        return sim

    try:
        yield start
    finally:
        for sim in sims:
            with contextlib.suppress(Exception):
                await sim.stop()


@pytest.fixture
async def start_bridge(pki: Pki, tmp_path: Path) -> AsyncIterator[StartBridge]:
    """``await start_bridge(sim, security=…, connect=True, **kw)``: a bridge, closed after the
    test whatever happens."""
    bridges: list[Bridge] = []

    async def start(
        sim: FeederSimulator,
        security: ClientSecurity | None = None,
        connect: bool = True,
        audit: Any = None,
        **kw: Any,
    ) -> Bridge:
        bridge = Bridge(
            nodemap(sim),
            security or client_security(pki),
            audit or AuditLog(tmp_path / f"audit-{len(bridges)}.jsonl"),
            **kw,
        )
        bridges.append(bridge)
        if connect:
            await bridge.connect()
        return bridge

    try:
        yield start
    finally:
        for bridge in bridges:
            with contextlib.suppress(Exception):
                await bridge.close()


@pytest.fixture
async def market_server(pki: Pki) -> AsyncIterator[MarketServer]:
    """The market server on a free port with viewer, dispatcher and operator users."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/feederdao/market"
    server = MarketServer(endpoint, server_security(pki))
    async with server:
        yield server
