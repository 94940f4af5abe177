"""`feederdao opcua …` against a simulator served from another thread on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feederdao.cli.main import app
from feederdao.grid_model import AcEvaluator
from feederdao.scada_bridge.nodemap import NodeMap
from feederdao.scada_bridge.security import ServerSecurity, hash_password
from feederdao.scada_bridge.simulator import FeederSimulator
from tests.scada_bridge.conftest import PASSWORD, free_port

runner = CliRunner()


@pytest.fixture
def served(lv_rural, tmp_path: Path) -> Iterator[tuple[str, Path]]:  # type: ignore[no-untyped-def]
    pki = tmp_path / "pki"
    for args in (
        ["--server", "--uri", "urn:feederdao:feeder-simulator:server"],
        ["--uri", "urn:feederdao:bridge"],
    ):
        result = runner.invoke(app, ["opcua", "gen-cert", "--out", str(pki), *args])
        assert result.exit_code == 0, result.output
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/feederdao/simulator"
    security = ServerSecurity(
        pki / "server.der",
        pki / "server_key.pem",
        (pki / "client.der",),
        {"dispatch": (hash_password(PASSWORD), "dispatcher")},
    )
    sim = FeederSimulator(
        lv_rural.view,
        AcEvaluator(lv_rural.loaded.net, lv_rural.view),
        endpoint,
        security,
        period_s=0.1,
    )
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with sim:
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(30)
    yield endpoint, pki
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def test_nodemap_from_server_and_browse(served, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    endpoint, pki = served
    monkeypatch.setenv("FEEDERDAO_OPCUA_PASSWORD", PASSWORD)
    sec = [
        "--cert",
        str(pki / "client.der"),
        "--key",
        str(pki / "client_key.pem"),
        "--server-cert",
        str(pki / "server.der"),
        "--user",
        "dispatch",
    ]
    out = tmp_path / "nodemap.toml"
    result = runner.invoke(
        app, ["opcua", "nodemap", "--from-server", endpoint, "--out", str(out), *sec]
    )
    assert result.exit_code == 0, result.output
    nm = NodeMap.read(out)
    assert len(nm.devices) == 41 and nm.namespace == "urn:feederdao:feeder-simulator"
    assert nm.devices["sgen:0"].nodes["p_setpoint"] == "Devices.sgen:0.P_setpoint_MW"
    result = runner.invoke(app, ["opcua", "browse", "--endpoint", endpoint, *sec])
    assert result.exit_code == 0 and "urn:feederdao:feeder-simulator" in result.output
    assert "Devices" in result.output
    result = runner.invoke(app, ["opcua", "browse", "--endpoint", endpoint, "--policy", "None"])
    assert result.exit_code == 2 and "SecurityPolicy None is refused" in result.output
