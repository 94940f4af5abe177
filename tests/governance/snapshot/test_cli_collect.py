"""`feederdao snapshot create/submit/close` over JSON-RPC (anvil)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from typer.testing import CliRunner
from web3 import Web3

from feederdao.cli.main import app
from feederdao.governance.snapshot.votes import SignedVote, sign_vote
from tests.governance.conftest import make_dev

# anvil's default development keys for accounts 3 and 4 (alice and bob in make_dev)
KEYS = {
    3: "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    4: "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
}
PID = "0x" + "77" * 32


def test_self_hosted_vote_to_governor_proposal(anvil: Web3, tmp_path: Path) -> None:
    runner = CliRunner()
    dev = make_dev(anvil)
    url = anvil.provider.endpoint_uri  # type: ignore[attr-defined]
    dep = tmp_path / "deployment.json"
    dev.addresses.write(dep)
    now = anvil.eth.get_block("latest")["timestamp"]
    box = tmp_path / "box.json"
    result = runner.invoke(
        app,
        [
            "snapshot",
            "create",
            "--box",
            str(box),
            "--space",
            "feeder.eth",
            "--id",
            PID,
            "--set",
            "v_max_pu=1.04",
            "--token",
            dev.addresses.token,
            "--snapshot-block",
            str(anvil.eth.block_number),
            "--start",
            str(now - 10),
            "--end",
            str(now + 3600),
            "--quorum",
            "1000",
        ],
    )
    assert result.exit_code == 0, result.output
    for index, choice in ((3, 1), (4, 2)):
        voter = anvil.eth.accounts[index]
        signed = sign_vote(
            KEYS[index], SignedVote(voter, "feeder.eth", now, PID, choice, ""), "basic"
        )
        path = tmp_path / f"vote{index}.json"
        path.write_text(json.dumps(asdict(signed)))
        result = runner.invoke(app, ["snapshot", "submit", "--box", str(box), "--vote", str(path)])
        assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["snapshot", "submit", "--box", str(box), "--vote", str(tmp_path / "vote3.json")]
    )
    assert result.exit_code == 2 and "replayed" in result.output
    result = runner.invoke(
        app,
        [
            "snapshot",
            "close",
            "--box",
            str(box),
            "--rpc",
            url,
            "--deployment",
            str(dep),
            "--from",
            dev.alice,
        ],
    )
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "for 400,000.00, against 300,000.00" in flat and "passed" in flat
    assert "Governor proposal" in flat
