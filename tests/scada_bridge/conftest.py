"""Certificates, users and a secured feeder simulator on 127.0.0.1 for the bridge tests."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from feederdao.grid_model import AcEvaluator
from feederdao.scada_bridge.nodemap import NodeMap, nodemap_for
from feederdao.scada_bridge.security import (
    ClientSecurity,
    ServerSecurity,
    generate_certificate,
    hash_password,
)
from feederdao.scada_bridge.simulator import NAMESPACE, FeederSimulator

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Pki:
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


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
    return Pki(
        d / "server.der",
        d / "server_key.pem",
        d / "client.der",
        d / "client_key.pem",
        d / "rogue.der",
        d / "rogue_key.pem",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_security(pki: Pki) -> ServerSecurity:
    return ServerSecurity(
        pki.server_cert,
        pki.server_key,
        (pki.client_cert,),
        {
            "dispatch": (hash_password(PASSWORD), "dispatcher"),
            "scada": (hash_password(PASSWORD), "viewer"),
        },
    )


def client_security(pki: Pki, user: str = "dispatch", password: str = PASSWORD) -> ClientSecurity:
    return ClientSecurity(
        "Basic256Sha256", pki.client_cert, pki.client_key, pki.server_cert, user, password
    )


def simulator(opened, pki: Pki, **kw) -> FeederSimulator:  # type: ignore[no-untyped-def]
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/feederdao/simulator"
    ac = AcEvaluator(opened.loaded.net, opened.view)
    return FeederSimulator(opened.view, ac, endpoint, server_security(pki), period_s=0.05, **kw)


def nodemap(sim: FeederSimulator) -> NodeMap:
    return nodemap_for(
        [(k, str(v.device.kind), v.p_min_mw, v.p_max_mw, v.s_mva) for k, v in sim.devices.items()],
        sim.endpoint,
        NAMESPACE,
    )
