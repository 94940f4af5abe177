"""docs/quickstart-dso.md works as written: its shell blocks run in order in a fresh folder
(long-running ones in the background, stopped at the end whatever happens), and a node-opcua
client plays the UaExpert-style client the guide describes: refused, trusted by moving its
certificate, then admitted; and, under `feederdao serve`, the operator who suspends dispatch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feederdao.scada_bridge.server import NAMESPACE as MARKET
from feederdao.scada_bridge.simulator import NAMESPACE as SIM
from tests.scada_bridge.conftest import free_port
from tests.scada_bridge.peer import NodePeer, nid

DOC = Path(__file__).resolve().parents[2] / "docs" / "quickstart-dso.md"
FENCE = re.compile(r"```(\w+)( background)?\n(.*?)```", re.S)


class Shell:
    """Runs the guide's blocks with bash in one folder; exported variables carry over."""

    def __init__(self, cwd: Path, replace: dict[str, str]) -> None:
        self.cwd = cwd
        self.replace = replace
        self.background: list[tuple[subprocess.Popen[str], list[str]]] = []

    def script(self, block: str) -> str:
        for old, new in self.replace.items():
            block = block.replace(old, new)
        return f"set -euo pipefail\n[ -f .env.sh ] && . ./.env.sh\n{block}\nexport -p > .env.sh\n"

    def run(self, block: str) -> str:
        proc = subprocess.run(
            ["bash", "-c", self.script(block)],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, (
            f"{block}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
        return proc.stdout

    def start(self, block: str, ready: str, timeout_s: float = 240) -> None:
        script = self.script(block).replace("export -p > .env.sh\n", "")
        venv = self.replace[".venv/bin/"]
        proc = subprocess.Popen(
            ["bash", "-c", script.replace("\n" + venv, "\nexec " + venv)],
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, "COLUMNS": "300", "PYTHONUNBUFFERED": "1"},
        )
        lines: list[str] = []
        self.background.append((proc, lines))

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not any(ready in line for line in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)

    def stop(self) -> None:
        for proc, _ in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for proc, _ in self.background:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    sim, market, api = free_port(), free_port(), free_port()
    shell = Shell(
        tmp_path,
        {
            ".venv/bin/": str(Path(sys.executable).parent) + "/",
            "127.0.0.1:4842": f"127.0.0.1:{sim}",
            "127.0.0.1:4841": f"127.0.0.1:{market}",
            "127.0.0.1:8000": f"127.0.0.1:{api}",
            "port = 8000": f"port = {api}",
        },
    )
    try:
        yield shell
    finally:
        shell.stop()


@pytest.mark.anyio
async def test_the_dso_quickstart_works_as_written(shell: Shell, tmp_path: Path) -> None:
    blocks = [(lang, bool(bg), body) for lang, bg, body in FENCE.findall(DOC.read_text())]
    sim_url = f"opc.tcp://{shell.replace['127.0.0.1:4842']}/feederdao/simulator"
    market_url = f"opc.tcp://{shell.replace['127.0.0.1:4841']}/feederdao/market"
    uaexpert = NodePeer(
        tmp_path / "uaexpert-pki",
        tmp_path / "pki" / "server.der",
        "scada",
        "use a long passphrase here",
    )
    ran = []
    for lang, background, body in blocks:
        if lang != "sh":
            continue
        if background:
            shell.start(body, "API on" if "feederdao serve" in body else "simulating")
            ran.append("background")
            continue
        if "pki/rejected/certs" in body:
            # the control room's client connects once and is refused
            first = await uaexpert.session(sim_url, {"op": "read", "nodeId": "i=2261"})
            assert not first["connected"]
        out = shell.run(body) if "curl" not in body else None
        if "pki/rejected/certs" in body:
            assert out is not None and ".der" in out  # `ls` showed the refused certificate
            (devices,) = await uaexpert.results(
                sim_url, {"op": "browse", "nodeId": nid(SIM, "Devices")}
            )
            assert len(devices["references"]) == 41
        if "opcua browse" in body:
            assert (
                out is not None
                and "PvInverterType" in out
                and "urn:feederdao:feeder-simulator" in out
            )
        if "devices confirmed" in body:
            assert out is not None and out.strip().splitlines()[-1] == "41 devices confirmed", out
        if "curl" in body:
            ops = NodePeer(
                tmp_path / "uaexpert-pki",
                tmp_path / "pki" / "market.der",
                "ops",
                "use a long passphrase here",
            )
            call = {
                "op": "call",
                "objectId": nid(MARKET, "Market"),
                "methodId": nid(MARKET, "Market.SuspendDispatch"),
                "args": [{"dataType": "String", "value": "storm warning"}],
            }
            (suspended,) = await ops.results(market_url, call)
            assert suspended["status"] == "Good"
            out = shell.run(body)
            assert '"state":"suspended"' in out and '"by":"operator:ops"' in out
        ran.append(body.split()[0])
    assert ran.count("background") == 2 and len(ran) >= 8
