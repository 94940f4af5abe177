"""`feederdao snapshot create/submit/close` over JSON-RPC (anvil)."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from typer.testing import CliRunner
from web3 import Web3

from feederdao.cli.main import app
from tests.governance.conftest import make_dev
from tests.governance.snapshot.test_votes import vote_fields, wallet_envelope

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
    # votes as snapshot.js posts them: today's type set, and an older client's
    fields = {
        3: vote_fields("vote", "string", "string", ("reason", "app", "metadata")),
        4: vote_fields("vote", "address", "bytes32", ("reason", "app")),
    }
    for index, choice in ((3, 1), (4, 2)):
        envelope = wallet_envelope(
            Account.from_key(KEYS[index]), fields[index], choice, timestamp=now, proposal=PID
        )
        path = tmp_path / f"vote{index}.json"
        path.write_text(json.dumps(envelope))
        result = runner.invoke(app, ["snapshot", "submit", "--box", str(box), "--vote", str(path)])
        assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["snapshot", "submit", "--box", str(box), "--vote", str(tmp_path / "vote3.json")]
    )
    assert result.exit_code == 2 and "replayed" in result.output
    bad = tmp_path / "nan.json"
    bad.write_text(
        (tmp_path / "vote3.json").read_text().replace('"timestamp": ', '"timestamp": NaN, "x": ')
    )
    result = runner.invoke(app, ["snapshot", "submit", "--box", str(box), "--vote", str(bad)])
    assert result.exit_code == 2 and "strict JSON" in result.output
    assert "Traceback" not in result.output
    close = ["snapshot", "close", "--box", str(box), "--rpc", url, "--deployment", str(dep)]
    result = runner.invoke(app, [*close, "--from", dev.alice])
    assert result.exit_code == 2 and "operator override" in result.output  # still open
    result = runner.invoke(
        app,
        [
            *close,
            "--from",
            dev.alice,
            "--close-early",
            "every holder voted",
            "--operator",
            "DSO control room",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "closed early at" in result.output
    assert "by DSO control room: every holder voted" in result.output
    assert "for 400,000.00, against 300,000.00, abstain 0.00" in result.output
    assert "quorum (for + abstain) 400,000.00 of 1,000.00: passed" in result.output
    assert "Governor proposal" in result.output
    assert json.loads(box.read_text())["closure"]["reason"] == "every holder voted"
