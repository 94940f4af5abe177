"""Security set-up: policies by settings, advertised tokens, the trust folder, key modes,
ports, and `opcua hash-password`."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from typer.testing import CliRunner

from feederdao.cli.main import app
from feederdao.cli.opcua import SIM_ENDPOINT
from feederdao.scada_bridge.errors import BridgeError, PortInUseError
from feederdao.scada_bridge.security import POLICIES, ClientSecurity, check_password
from feederdao.scada_bridge.settings import MarketServerSettings
from feederdao.scada_bridge.simulator import NAMESPACE as SIM
from feederdao.workflows.market import ServiceSettings
from tests.scada_bridge.conftest import (
    PASSWORD,
    Pki,
    StartBridge,
    StartSim,
    node_peer,
    server_security,
)
from tests.scada_bridge.peer import NodePeer, nid

pytestmark = pytest.mark.anyio
runner = CliRunner()
VM = {"op": "read", "nodeId": nid(SIM, "Buses.0.Vm_pu")}


async def test_every_policy_is_offered_with_sign_and_encrypt_and_only_the_user_name_token(
    start_sim: StartSim, start_bridge: StartBridge, pki: Pki
) -> None:
    sim = await start_sim()
    (endpoints,) = await node_peer(pki).results(sim.endpoint, {"op": "endpoints"})
    assert sorted(e["policy"] for e in endpoints) == sorted(POLICIES)
    assert {e["mode"] for e in endpoints} == {"SignAndEncrypt"}
    assert all(e["tokens"] == ["UserName"] for e in endpoints)  # no Anonymous, no X509
    for policy in POLICIES:
        (vm,) = await node_peer(pki, policy=policy).results(sim.endpoint, VM)
        assert vm["status"] == "Good", policy
        bridge = await start_bridge(
            sim,
            ClientSecurity(
                policy, pki.client_cert, pki.client_key, pki.server_cert, "dispatch", PASSWORD
            ),
        )
        (value,) = await bridge.read(["Buses.0.Vm_pu"])
        assert value == pytest.approx(vm["value"])
    anonymous = await node_peer(pki, user=None).session(sim.endpoint, VM)
    assert not anonymous["connected"] and "ANONYMOUS" in anonymous["error"]  # not offered
    asyncua_anonymous = await start_bridge(
        sim,
        ClientSecurity("Basic256Sha256", pki.client_cert, pki.client_key, pki.server_cert),
        connect=False,
    )
    with pytest.raises(BridgeError, match="cannot connect"):  # and refused if tried anyway
        await asyncua_anonymous.connect()


async def test_settings_choose_the_policies(start_sim: StartSim, pki: Pki) -> None:
    sim = await start_sim(security=server_security(pki, policies=("Aes256_Sha256_RsaPss",)))
    peer = node_peer(pki, policy="Aes256_Sha256_RsaPss")
    (endpoints,) = await peer.results(sim.endpoint, {"op": "endpoints"})
    assert [e["policy"] for e in endpoints] == ["Aes256_Sha256_RsaPss"]
    refused = await node_peer(pki, policy="Basic256Sha256").session(sim.endpoint, VM)
    assert not refused["connected"] and "Cannot find an Endpoint" in refused["error"]
    opcua = MarketServerSettings.load(None, policies="Aes128_Sha256_RsaOaep,Aes256_Sha256_RsaPss")
    assert opcua.policies == ("Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss")
    with pytest.raises(Exception, match="not supported"):
        MarketServerSettings.load(None, policies="Basic128Rsa15")


async def test_an_unknown_client_lands_in_rejected_and_moving_it_to_trusted_admits_it(
    start_sim: StartSim, pki: Pki, tmp_path: Path
) -> None:
    folder = tmp_path / "server-pki"
    security = server_security(pki, trust_folder=folder)
    security = type(security)(
        security.certificate,
        security.private_key,
        (pki.client_cert,),  # node-opcua's certificate is not pinned
        security.users,
        trust_folder=folder,
    )
    sim = await start_sim(security=security)
    stranger = NodePeer(tmp_path / "uaexpert-like", pki.server_cert, "scada", PASSWORD)
    first = await stranger.session(sim.endpoint, VM)
    assert not first["connected"]
    (rejected,) = (folder / "rejected" / "certs").iterdir()
    assert rejected.suffix == ".der"
    assert list((folder / "trusted" / "certs").iterdir()) == []
    shutil.move(rejected, folder / "trusted" / "certs" / rejected.name)  # the administrator
    (vm,) = await stranger.results(sim.endpoint, VM)  # same server process, no restart
    assert vm["status"] == "Good"


def test_private_keys_are_written_0600(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    out.mkdir()
    (out / "client_key.pem").write_text("old")
    os.chmod(out / "client_key.pem", 0o644)
    result = runner.invoke(app, ["opcua", "gen-cert", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((out / "client_key.pem").stat().st_mode) == 0o600
    result = runner.invoke(app, ["opcua", "gen-cert", "--out", str(out), "--server"])
    assert stat.S_IMODE((out / "server_key.pem").stat().st_mode) == 0o600


def test_serve_and_sim_have_distinct_default_ports() -> None:
    market = urlparse(ServiceSettings().market_endpoint).port
    assert market is not None and urlparse(SIM_ENDPOINT).port not in (None, market)


async def test_a_port_in_use_is_a_one_line_error(
    start_sim: StartSim, pki: Pki, tmp_path: Path
) -> None:
    sim = await start_sim()
    with pytest.raises(PortInUseError, match="is already in use") as caught:
        await start_sim(security=server_security(pki), endpoint=sim.endpoint)
    assert "\n" not in str(caught.value)
    users = tmp_path / "users.toml"
    users.write_text('[users.a]\npassword_hash = "scrypt$00$00"\nrole = "viewer"\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "feederdao.cli.main",
            "sim",
            "--endpoint",
            sim.endpoint,
            "--cert",
            str(pki.server_cert),
            "--key",
            str(pki.server_key),
            "--users",
            str(users),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300"},  # (the CLI's width-independence is cli/errors')
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "already in use" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("columns", ["40", "300"])
def test_hash_password_prints_only_the_hash_on_stdout(columns: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "feederdao.cli.main", "opcua", "hash-password"],
        input="s3cret pass\ns3cret pass\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": columns},
    )
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"scrypt\$[0-9a-f]{32}\$[0-9a-f]{128}\n", proc.stdout)
    assert check_password("s3cret pass", proc.stdout.strip())
    assert "password" in proc.stderr.lower()  # the prompts went to stderr


def test_serve_settings_read_users_and_policies(tmp_path: Path) -> None:
    settings = tmp_path / "feederdao.toml"
    settings.write_text(
        '[service]\nport = 8001\n\n[opcua]\nusers_file = "u.toml"\npki = "p"\n'
        'policies = ["Basic256Sha256"]\n'
    )
    opcua = MarketServerSettings.load(settings)
    assert (opcua.users_file, opcua.pki, opcua.policies) == ("u.toml", "p", ("Basic256Sha256",))
    assert ServiceSettings.load(settings).port == 8001  # the [service] table is unaffected
