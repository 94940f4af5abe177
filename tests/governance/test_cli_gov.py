"""`feederdao gov` against anvil over JSON-RPC: deploy, delegate, propose, vote, queue, execute."""

import re
from pathlib import Path

from typer.testing import CliRunner
from web3 import Web3

from feederdao.cli.main import app
from feederdao.governance.dao import Dao
from feederdao.governance.deploy import DaoAddresses

runner = CliRunner()


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    """The one line a failing command prints (exit code 2, no traceback)."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_gov_commands_run_the_lifecycle(anvil: Web3, tmp_path: Path) -> None:
    url = anvil.provider.endpoint_uri  # type: ignore[attr-defined]
    a = list(anvil.eth.accounts)
    dep = tmp_path / "deployment.json"
    out = ok(
        "gov",
        "deploy",
        "--rpc",
        url,
        "--guardian",
        a[1],
        "--holder",
        f"{a[3]}=100000",
        "--holder",
        f"{a[4]}=0.000000000000000001",
        "--out",
        str(dep),
    )
    assert f"governor: {DaoAddresses.read(dep).governor}" in out
    assert f"holder {a[3]}: 100,000 tokens" in out
    dao = Dao(anvil, DaoAddresses.read(dep))
    # token amounts are exact: 100000 tokens are 10^23 units, not a float's 99,999.99…
    assert dao.token.functions.balanceOf(a[3]).call() == 100_000 * 10**18
    assert dao.token.functions.balanceOf(a[4]).call() == 1
    common = ["--deployment", str(dep), "--rpc", url]
    assert "100,000 votes" in ok("gov", "delegate", *common, "--from", a[3])
    ok("gov", "delegate", *common, "--from", a[4])
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
        "--id-file",
        str(tmp_path / "proposal.id"),
    )
    proposal = (tmp_path / "proposal.id").read_text().strip()
    assert f"proposal {proposal} created (Pending)" in out
    assert "  set v_max_pu = 1.04" in out and "  set network_fee_eur_per_mwh = 5" in out
    opens = re.search(r"voting opens at block (\d+)", out)
    assert opens, out
    # voting right away is refused with when it opens
    line = fails("gov", "vote", *common, "--from", a[3], "--proposal", proposal, "--support", "for")
    assert f"is Pending: voting opens at block {opens.group(1)}" in line
    wait = ["gov", "wait", *common, "--proposal", proposal, "--mine"]
    assert "voting is open" in ok(*wait, "--until", "active")
    assert anvil.eth.block_number == int(opens.group(1)) - 1  # the next block takes votes
    ok("gov", "vote", *common, "--from", a[3], "--proposal", proposal, "--support", "for")
    ok("gov", "vote", *common, "--from", a[4], "--proposal", proposal, "--support", "against")
    assert "voting is over: the proposal succeeded" in ok(*wait, "--until", "closed")
    out = ok("gov", "status", *common)
    assert f"proposal {proposal}: Succeeded" in out
    assert "for 100,000, against 0.000000000000000001, abstain 0" in out
    out = ok("gov", "queue", *common, "--proposal", proposal)
    assert re.search(r"ready to execute from .+ UTC \(chain time; in \d+ s\)", out), out
    assert "ready to execute" in ok(*wait, "--until", "ready")
    out = ok("gov", "execute", *common, "--proposal", proposal)
    executed = int(re.search(r"executed in block (\d+)", out).group(1))  # type: ignore[union-attr]
    envelope = tmp_path / "envelope.toml"
    envelope.write_text("confirmations = 2\n[parameters.network_fee_eur_per_mwh]\nmax = 4\n")
    params = ["gov", "params", *common, "--envelope", str(envelope)]
    out = ok(*params)  # right after execution: not final yet, and it says so
    assert "v_max_pu = 1.05" in out
    assert f"pending: v_max_pu → 1.04 at block {executed}, applied once that block is final" in out
    ok(*wait, "--until", "final", "--envelope", str(envelope))
    out = ok(*params)
    assert (
        f"v_max_pu = 1.04 (changed 1.05 → 1.04 at block {executed} by proposal {proposal})" in out
    )
    assert (
        "alarm: not applied: network_fee_eur_per_mwh = 5 is outside the operator's envelope" in out
    )


def test_gov_errors_are_one_line(anvil: Web3, tmp_path: Path) -> None:
    url = anvil.provider.endpoint_uri  # type: ignore[attr-defined]
    long = tmp_path / ("a-directory-name-longer-than-a-terminal-is-wide-" * 3)
    long.mkdir()
    dep = long / "deployment.json"
    ok("gov", "deploy", "--rpc", url, "--out", str(dep))
    common = ["--deployment", str(dep), "--rpc", url]
    propose = ["gov", "propose", *common, "--description", "x", "--set"]
    assert "unknown grid parameter 'voltage'" in fails(*propose, "voltage=2")
    assert "v_max_pu = 'nan' is not a finite number" in fails(*propose, "v_max_pu=nan")
    assert "v_max_pu = 'inf' is not a finite number" in fails(*propose, "v_max_pu=inf")
    assert "more than 6 decimals" in fails(*propose, "v_max_pu=1.0400001")
    assert "expected NAME=NUMBER" in fails(*propose, "v_max_pu")
    missing = long / "none.json"
    assert f"{str(missing)!r} is not a deployment file" in fails(
        "gov", "status", "--deployment", str(missing), "--rpc", url
    )
    line = fails("gov", "status", "--deployment", str(dep), "--rpc", "http://127.0.0.1:9")
    assert "no Ethereum node answers" in line
    assert "is not a finite number" in fails(
        "gov", "deploy", "--rpc", url, "--holder", f"{list(anvil.eth.accounts)[1]}=nan"
    )
    assert "choose one of active, closed, ready, final" in fails(
        "gov", "wait", *common, "--proposal", "1", "--until", "soon"
    )
    line = fails("gov", "vote", *common, "--proposal", "12345", "--support", "for")
    assert "GovernorNonexistentProposal(proposalId=12345)" in line
    broken = long / "broken.json"
    broken.write_text(dep.read_text().replace('"token": "0x', '"token": "0xzz'))
    assert "token '0xzz" in fails("gov", "status", "--deployment", str(broken), "--rpc", url)
    result = runner.invoke(
        app, ["gov", "delegate", *common], env={"FEEDERDAO_PRIVATE_KEY": "not-a-key"}
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "the private key is not a 32-byte hex key" in result.output.strip()
