"""docs/snapshot.md, run as written: its shell blocks in bash against a local stand-in of the
hub and anvil. The test supplies what the doc leaves to the reader ($PROPOSAL, $RPC, $TOKEN,
the window, the signed vote.json) and points $HUB at the stand-in instead of hub.snapshot.org.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from eth_account import Account
from web3 import Web3

from tests.governance.conftest import make_dev
from tests.governance.snapshot.hub import Hub
from tests.governance.snapshot.test_cli_collect import KEYS
from tests.governance.snapshot.test_client import PID
from tests.governance.snapshot.test_verified_tally import hub_data
from tests.governance.snapshot.test_votes import vote_fields, wallet_envelope

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "snapshot.md"


def run(block: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_snapshot_doc_runs_as_written(anvil: Web3, tmp_path: Path) -> None:
    hub_block, box_block = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    dev = make_dev(anvil)
    url = anvil.provider.endpoint_uri  # type: ignore[attr-defined]
    env = {"RPC": url, "PROPOSAL": PID, "A": dev.alice}
    with Hub(hub_data(dev, anvil.eth.block_number, "erc20-votes")) as hub:
        out = run(hub_block.replace("https://hub.snapshot.org/graphql", hub.url), tmp_path, env)
    assert f"proposal {PID}: closed, basic" in out
    assert "power from chain" in out and "winner: For" in out
    assert f"power mismatch {dev.dave}: hub 200000, chain 0" in out

    dev.addresses.write(tmp_path / "dao.json")
    now = anvil.eth.get_block("latest")["timestamp"]
    envelope = wallet_envelope(
        Account.from_key(KEYS[3]),
        vote_fields("vote", "string", "string", ("reason", "app", "metadata")),
        1,
        timestamp=now,
        proposal=PID,
    )
    (tmp_path / "vote.json").write_text(json.dumps(envelope))
    window = {
        "TOKEN": dev.addresses.token,
        "BLOCK": str(anvil.eth.block_number),
        "START": str(now - 10),
        "END": str(now + 3600),
    }
    out = run(box_block, tmp_path, {**env, **window})
    assert f"vote of {dev.alice} accepted (1 in the box)" in out
    assert "closed early at" in out and "by DSO control room: every holder has voted" in out
    assert "quorum (for + abstain) 400,000.00 of 1,000.00: passed" in out
    assert "Governor proposal" in out
