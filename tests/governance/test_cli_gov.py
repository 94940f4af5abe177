"""`feederdao gov` against anvil over JSON-RPC: deploy, delegate, propose, vote, queue, execute."""

from pathlib import Path

from typer.testing import CliRunner
from web3 import Web3

from feederdao.cli.main import app
from feederdao.governance.chain import DevChain

runner = CliRunner()


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_gov_commands_run_the_lifecycle(anvil: Web3, tmp_path: Path) -> None:
    url = anvil.provider.endpoint_uri  # type: ignore[attr-defined]
    a = anvil.eth.accounts
    dep = tmp_path / "deployment.json"
    out = ok(
        "gov",
        "deploy",
        "--rpc",
        url,
        "--guardian",
        a[1],
        "--holder",
        f"{a[3]}=400000",
        "--holder",
        f"{a[4]}=100000",
        "--out",
        str(dep),
    )
    assert "governor" in out and dep.is_file()
    common = ["--deployment", str(dep), "--rpc", url]
    ok("gov", "delegate", *common, "--from", a[3])
    ok("gov", "delegate", *common, "--from", a[4])
    chain = DevChain(anvil)
    chain.mine(1)
    out = ok(
        "gov",
        "propose",
        *common,
        "--from",
        a[3],
        "--set",
        "v_max_pu=1.04",
        "--set",
        "network_fee_eur_per_mwh=5",
        "--description",
        "tighten and fund",
    )
    proposal = out.split("proposal ")[1].split(" ")[0]
    chain.mine(2)
    ok(
        "gov",
        "vote",
        *common,
        "--from",
        a[3],
        "--proposal",
        proposal,
        "--support",
        "for",
        "--reason",
        "voltage quality",
    )
    ok("gov", "vote", *common, "--from", a[4], "--proposal", proposal, "--support", "against")
    chain.mine(21)
    assert "Succeeded" in ok("gov", "status", *common)
    ok("gov", "queue", *common, "--proposal", proposal)
    chain.advance_time(61)
    ok("gov", "execute", *common, "--proposal", proposal)
    envelope = tmp_path / "envelope.toml"
    envelope.write_text("confirmations = 0\n[parameters.network_fee_eur_per_mwh]\nmax = 4\n")
    out = ok("gov", "params", *common, "--envelope", str(envelope))
    assert "1.04" in out  # applied
    flat = " ".join(out.split())
    assert "network_fee_eur_per_mwh = 5 is outside the operator's envelope" in flat


def test_gov_errors_are_one_line(anvil: Web3, tmp_path: Path) -> None:
    url = anvil.provider.endpoint_uri  # type: ignore[attr-defined]
    dep = tmp_path / "deployment.json"
    ok("gov", "deploy", "--rpc", url, "--out", str(dep))
    result = runner.invoke(
        app,
        [
            "gov",
            "propose",
            "--deployment",
            str(dep),
            "--rpc",
            url,
            "--set",
            "voltage=2",
            "--description",
            "x",
        ],
    )
    assert result.exit_code == 2
    assert "unknown grid parameter(s) voltage" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["gov", "status", "--deployment", str(tmp_path / "none.json"), "--rpc", url]
    )
    assert result.exit_code == 2 and "is not a deployment file" in result.output
    result = runner.invoke(
        app, ["gov", "status", "--deployment", str(dep), "--rpc", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 2 and "no Ethereum node answers" in result.output
