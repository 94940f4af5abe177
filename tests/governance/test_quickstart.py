"""docs/quickstart-token-holder.md, run as written: its shell commands in order, in bash, against
the anvil it starts. The only change is the port (a free one instead of 8545, so that the test
does not collide with a node already running). Run at 40 columns: the proposal id must come
out whole, and `gov status` / `gov params` must print the same words at 40 and 300 columns.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "quickstart-token-holder.md"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "the quickstart has a sh block"
    block: str = blocks[0]
    return block.replace("\\\n", "").strip().splitlines()


def test_the_token_holder_quickstart_runs_as_written(tmp_path: Path) -> None:
    lines = commands()
    assert lines[-1] == "kill $ANVIL"
    assert not any(re.match(r"\s*cast\b", line) for line in lines)  # no tool make does not install
    for name in (".venv", "contracts", "config"):  # the repository's root, as the doc says
        (tmp_path / name).symlink_to(ROOT / name)
    gov = ".venv/bin/feederdao gov"
    common = "--deployment dao.json --rpc $RPC"
    widths = []
    for c in (40, 300):
        widths.append(f"COLUMNS={c} {gov} status {common} > status-{c}.out")
        envelope = "--envelope config/envelope.example.toml"
        widths.append(f"COLUMNS={c} {gov} params {common} {envelope} > params-{c}.out")
    script = "\n".join(
        ["trap 'kill ${ANVIL:-} 2>/dev/null || true' EXIT", *lines[:-1], *widths, lines[-1]]
    ).replace("8545", str(_free_port()))
    (tmp_path / "quickstart.sh").write_text(script + "\n")
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "quickstart.sh"],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "40"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out
    pid = (tmp_path / "proposal.id").read_text().strip()
    assert len(pid) > 40 and pid.isdigit()
    assert f"proposal {pid} created (Pending)" in out  # whole, on 40 columns
    assert re.search(r"voting opens at block \d+ and closes after block \d+", out)
    assert f"{A_ADDRESS} voted for on proposal {pid}" in out
    assert re.search(r"ready to execute from .+ UTC \(chain time; in \d+ s\)", out)
    assert f"proposal {pid} executed in block" in out
    assert "grid parameters (fresh): read at the final block" in out
    executed = re.search(r"executed in block (\d+)", out).group(1)  # type: ignore[union-attr]
    assert f"v_max_pu = 1.04 (changed 1.05 → 1.04 at block {executed} by proposal {pid})" in out
    assert "network_fee_eur_per_mwh = 5 (changed 0 → 5" in out
    assert "alarm" not in out and "Traceback" not in out
    for cmd in ("status", "params"):
        narrow = (tmp_path / f"{cmd}-40.out").read_text()
        wide = (tmp_path / f"{cmd}-300.out").read_text()
        assert narrow == wide, (narrow, wide)
        assert pid in narrow


A_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
