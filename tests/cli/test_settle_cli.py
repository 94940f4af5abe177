"""``feederdao meter``, ``settle verify`` and ``vault``: keys, signed readings, recomputed
roots, and collateral in and out of a vault on anvil."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from typer.testing import CliRunner
from web3 import Web3

from feederdao.cli.main import app
from feederdao.governance.certificates import Certificates
from feederdao.governance.vault import Vault, VaultAddresses
from feederdao.metering.readings import MeterReading
from feederdao.workflows.metering import reading_verifier
from tests.governance.conftest import anvil, make_dev
from tests.metering.evidence import tiny_evidence
from tests.metering.keys import DOMAIN

runner = CliRunner()
__all__ = ["anvil"]  # the fixture, for this module's tests
A, B, OP = ("0x" + c * 40 for c in "abc")


def test_meter_keygen_and_sign(tmp_path: Path) -> None:
    key = tmp_path / "meter.key"
    made = runner.invoke(app, ["meter", "keygen", "--out", str(key)])
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    meter = made.output.split("meter: ")[1].split()[0]
    signed = runner.invoke(
        app,
        ["meter", "sign", "--key-file", str(key), "--chain-id", str(DOMAIN.chain_id),
         "--contract", DOMAIN.verifying_contract, "--interval", "5", "--period", "1",
         "--device", "pv", "--imported-wh", "0", "--exported-wh", "1200", "--sequence", "9"],
    )  # fmt: skip
    assert signed.exit_code == 0, signed.output
    reading = MeterReading(**json.loads(signed.output))
    assert reading_verifier(DOMAIN)(reading) == meter.lower()
    again = runner.invoke(app, ["meter", "keygen", "--out", str(key)])
    assert again.exit_code == 2 and "never overwritten" in again.output


def test_settle_verify(tmp_path: Path) -> None:
    doc = tiny_evidence(A, B, OP)
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(doc))
    ok = runner.invoke(app, ["settle", "verify", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "result: the root matches" in ok.output
    assert "substituted by the schedule: 1 device-period(s)" in ok.output

    other = runner.invoke(app, ["settle", "verify", str(path), "--root", "0x" + "00" * 32])
    assert other.exit_code == 1 and "MISMATCH" in other.output

    doc["readings"][0]["exported_wh"] += 100  # a reading changed after the meter signed it
    path.write_text(json.dumps(doc))
    forged = runner.invoke(app, ["settle", "verify", str(path)])
    assert forged.exit_code == 2
    assert "bad-signature" in forged.output or "signature" in forged.output
    assert "Traceback" not in forged.output

    path.write_text("{}")
    empty = runner.invoke(app, ["settle", "verify", str(path)])
    assert empty.exit_code == 2 and "malformed" in empty.output


def test_vault_commands_on_anvil(anvil: Web3, tmp_path: Path) -> None:
    d = make_dev(anvil)
    rpc = anvil.provider.endpoint_uri  # type: ignore[attr-defined]
    deployment = tmp_path / "deployment.json"
    d.addresses.write(deployment)
    vault_file = tmp_path / "vault.json"

    def cli(*args: str) -> str:
        out = runner.invoke(app, ["vault", *args, "--rpc", rpc, "--vault", str(vault_file)])
        assert out.exit_code == 0, out.output
        return out.output

    deployed = runner.invoke(
        app, ["vault", "deploy", "--rpc", rpc, "--deployment", str(deployment),
              "--out", str(vault_file)],
    )  # fmt: skip
    assert deployed.exit_code == 0, deployed.output
    for who in (d.alice, d.bob, d.operator):
        cli("mint", "--to", who, "--amount", "10")
        cli("deposit", "--amount", "2.5", "--from", who)
    assert "deposited: 2.5" in cli("balance", "--account", d.alice)

    doc = tiny_evidence(d.alice, d.bob, d.operator)
    evidence = tmp_path / "evidence.json"
    evidence.write_text(json.dumps(doc))
    v = Vault(anvil, VaultAddresses.read(vault_file))
    v.post_root(d.operator, 5, bytes.fromhex(doc["root"][2:]))
    early = runner.invoke(
        app, ["vault", "withdraw", "--evidence", str(evidence), "--from", d.alice,
              "--rpc", rpc, "--vault", str(vault_file)],
    )  # fmt: skip
    assert early.exit_code == 2 and "final interval is 0" in early.output
    d.chain.advance_time(3601)
    v.finalize(d.carol, 5)
    position = next(v for k, v in _positions(doc).items() if k == d.alice.lower())
    expected = 2_500_000 + position
    # first the notice: all that is available is requested, and the CLI says when it is due
    out = cli("withdraw", "--evidence", str(evidence), "--from", d.alice)
    assert f"requested: {expected / 1e6:g}" in out
    b = v.balance(d.alice)
    assert b.requested == expected and b.withdrawn == 0
    notice = v.notice_base_s() + v.challenge_window_s()
    assert f"(chain time, in {notice} s)" in out or f"(chain time, in {notice - 1} s)" in out
    early = runner.invoke(
        app, ["vault", "withdraw", "--evidence", str(evidence), "--from", d.alice,
              "--rpc", rpc, "--vault", str(vault_file)],
    )  # fmt: skip
    assert early.exit_code == 2 and "is not due until" in early.output
    assert "nothing was sent" in early.output and "Traceback" not in early.output
    assert v.balance(d.alice).withdrawn == 0
    d.chain.advance_time(notice + 1)
    out = cli("withdraw", "--evidence", str(evidence), "--from", d.alice)
    assert f"withdrawn: {expected / 1e6:g}" in out
    assert v.balance(d.alice).withdrawn == expected
    # a second request: given notice of, and cancelled
    assert "requested: 0.000001" in cli("withdraw", "--amount", "0.000001", "--from", d.alice)
    assert "requested:" not in cli("cancel-withdrawal", "--from", d.alice)
    assert v.balance(d.alice).requested == 0
    cli("withdraw", "--amount", "0.000001", "--from", d.alice)
    d.chain.advance_time(notice + 1)
    too_much = runner.invoke(
        app, ["vault", "withdraw", "--evidence", str(evidence), "--from", d.alice,
              "--amount", "0.000001", "--rpc", rpc, "--vault", str(vault_file)],
    )  # fmt: skip
    assert too_much.exit_code == 2 and "ExceedsAvailable" in too_much.output


def _positions(doc: dict[str, object]) -> dict[str, int]:
    from feederdao.workflows.metering import verify_evidence

    return verify_evidence(doc)[1].positions


def test_certificate_commands_on_anvil(anvil: Web3, tmp_path: Path) -> None:
    """Where did my energy in period P come from: issued certificates, asked from the CLI;
    retired ones still count as the holder's."""
    d = make_dev(anvil)
    rpc = anvil.provider.endpoint_uri  # type: ignore[attr-defined]
    path = tmp_path / "certificates.json"

    def cli(*args: str) -> Any:
        return runner.invoke(
            app, ["certificates", *args, "--rpc", rpc, "--certificates", str(path)]
        )

    out = runner.invoke(
        app, ["certificates", "deploy", "--operator", d.operator, "--rpc", rpc, "--out", str(path)]
    )
    assert out.exit_code == 0, out.output
    address = json.loads(path.read_text())["certificates"]
    certs = Certificates(anvil, address)
    # alice's PV exported 2,400 Wh in period 0 of interval 1; bob drew 650 Wh of it
    certs.issue(d.operator, 1, 0, "pv-a", d.alice, [(d.alice, 1750), (d.bob, 650)])
    asked = cli("origin", "--holder", d.bob, "--interval", "1", "--period", "0")
    assert asked.exit_code == 0, asked.output
    assert f"source: pv-a producer: {d.alice} wh: 650" in asked.output
    assert "total: 650 Wh from 1 local source(s)" in asked.output
    retired = cli("retire", "--source", "pv-a", "--interval", "1", "--period", "0", "--wh", "200",
                  "--from", d.bob)  # fmt: skip
    assert retired.exit_code == 0, retired.output
    assert "held: 450 Wh" in retired.output
    again = cli("origin", "--holder", d.bob, "--interval", "1", "--period", "0")
    assert "wh: 650" in again.output  # retired certificates are still where it came from
    other = cli("origin", "--holder", d.bob, "--interval", "1", "--period", "1")
    assert "total: 0 Wh from 0 local source(s)" in other.output
    too_much = cli("retire", "--source", "pv-a", "--interval", "1", "--period", "0", "--wh",
                   "451", "--from", d.bob)  # fmt: skip
    assert too_much.exit_code != 0 and "Traceback" not in too_much.output
    assert "reverted" in too_much.output
    path.write_text("{}")
    broken = cli("origin", "--holder", d.bob, "--interval", "1", "--period", "0")
    assert broken.exit_code == 2 and "names no certificates contract" in broken.output


def test_the_documented_resettle_command_and_its_refusals() -> None:
    """docs/settlement.md's `feederdao settle resettle …` names the command's own options;
    unreadable corrections and an unreachable market are refused with what was wrong."""
    import re

    from tests.test_docs import ROOT

    doc = " ".join((ROOT / "docs" / "settlement.md").read_text().split())
    found = re.search(r"`(feederdao settle resettle [^`]+)`", doc)
    assert found is not None
    shown = runner.invoke(app, ["settle", "resettle", "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    for option in re.findall(r"--[a-z-]+", found.group(1)):
        assert option in shown.output, option
    common = ["settle", "resettle", "--interval", "1", "--api-key", "fdk_x"]
    bad = runner.invoke(app, [*common, "--readings", "/nonexistent/readings.json"])
    assert bad.exit_code == 2 and "cannot read the readings" in bad.output
    gone = runner.invoke(app, [*common, "--url", "http://127.0.0.1:9"])
    assert (
        gone.exit_code == 2 and "cannot reach the market API at http://127.0.0.1:9" in gone.output
    )
    assert "Traceback" not in bad.output + gone.output
