"""``feederdao meter``, ``feederdao settle``, ``feederdao vault`` and ``feederdao
certificates``: meter keys and signed readings, recomputing a settlement root from its
evidence, collateral in and out of the vault, where a holder's energy came from.

Output is one fact per line, addresses and hashes in full, so what a user reads does not
depend on the terminal's width. Token amounts are typed and shown in tokens (exact decimals);
on chain they are the token's smallest units."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from feederdao.cli.consoles import CommandConsole
from feederdao.cli.errors import user_errors
from feederdao.cli.gov import Deployment, Rpc, Sender, _sender, _web3
from feederdao.errors import FeederDaoError

console = CommandConsole(soft_wrap=True, markup=False, highlight=False)

meter_app = typer.Typer(help="Smart meters: keys and signed readings.", no_args_is_help=True)
settle_app = typer.Typer(
    help="Metered settlement: verify a root from its evidence, re-settle a rejected one.",
    no_args_is_help=True,
)
vault_app = typer.Typer(
    help="The settlement vault: deploy, deposit, balance, withdraw.", no_args_is_help=True
)


@settle_app.callback()
def _settle() -> None:
    """Metered settlement: verify a root from its evidence, re-settle a rejected one."""


ChainId = Annotated[int, typer.Option("--chain-id", help="Chain id of the market's domain.")]
Contract = Annotated[
    str, typer.Option("--contract", help="The market's verifying contract (its domain).")
]
VaultFile = Annotated[
    Path, typer.Option("--vault", help="Vault deployment file written by `vault deploy`.")
]


class CliInputError(FeederDaoError, ValueError):
    """A command-line value is wrong."""


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CliInputError(f"cannot read {what} {str(path)!r}: {exc}") from exc


def _units(amount: str, decimals: int, what: str) -> int:
    try:
        d = Decimal(amount.strip()) * (Decimal(10) ** decimals)
    except InvalidOperation:
        raise CliInputError(f"{what} {amount!r} is not a number") from None
    if not d.is_finite() or d != d.to_integral_value() or d <= 0:
        raise CliInputError(f"{what} {amount!r} must be positive with at most {decimals} decimals")
    return int(d)


def _tokens(units: int, decimals: int) -> str:
    text = f"{Decimal(units).scaleb(-decimals):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _key(path: Path) -> str:
    try:
        key = Path(path).read_text().strip()
    except OSError as exc:
        raise CliInputError(f"cannot read the key file {str(path)!r}: {exc}") from exc
    body = key.removeprefix("0x")
    if len(body) != 64 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise CliInputError(f"{str(path)!r} does not hold a 32-byte hex private key")
    return "0x" + body


@meter_app.command("keygen")
@user_errors
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Write the meter's private key here.")],
) -> None:
    """Make a meter key (what a meter's secure element holds); print its address."""
    from eth_account import Account

    from feederdao.files import write_private

    if out.exists():
        raise CliInputError(f"{str(out)!r} exists; a meter key is never overwritten")
    acct = Account.create()
    write_private(out, "0x" + bytes(acct.key).hex() + "\n")
    console.print(f"meter: {acct.address}")
    console.print(f"key file: {out} (readable by its owner only)")


@meter_app.command("sign")
@user_errors
def sign(
    key_file: Annotated[Path, typer.Option("--key-file", help="The meter's private key file.")],
    chain_id: ChainId,
    contract: Contract,
    interval: Annotated[int, typer.Option(help="Clearing interval id.")],
    period: Annotated[int, typer.Option(help="Period within the interval.")],
    device: Annotated[str, typer.Option(help="Metered device id.")],
    imported_wh: Annotated[int, typer.Option("--imported-wh", help="Energy imported (Wh).")],
    exported_wh: Annotated[int, typer.Option("--exported-wh", help="Energy exported (Wh).")],
    sequence: Annotated[int, typer.Option(help="The meter's sequence number.")],
) -> None:
    """Sign one reading as the meter; print it as JSON (what the readings API takes)."""
    from dataclasses import asdict

    from eth_account import Account

    from feederdao.governance.signing import MarketDomain
    from feederdao.metering.readings import MeterReading
    from feederdao.workflows.metering import sign_reading

    key = _key(key_file)
    meter = Account.from_key(key).address
    r = MeterReading(meter, interval, period, device, imported_wh, exported_wh, sequence)
    signed = sign_reading(key, MarketDomain(chain_id, contract), r)
    console.print(json.dumps(asdict(signed)))


@settle_app.command("verify")
@user_errors
def verify(
    evidence: Annotated[Path, typer.Argument(help="An interval's settlement evidence (JSON).")],
    root: Annotated[
        str | None,
        typer.Option(help="The root to check (e.g. read from the vault); default: the file's."),
    ] = None,
) -> None:
    """Recompute an interval's root from its evidence: every reading's signature and rules,
    the deviation settlement, the tree. Exit 1 when it differs from the claimed root."""
    from feederdao.workflows.metering import verify_evidence

    doc = _read_json(evidence, "the evidence")
    if root is not None and isinstance(doc, dict):
        doc = {**doc, "root": root}
    v, settled = verify_evidence(doc)
    s = settled.settlement
    console.print(f"interval: {v.interval}")
    console.print(f"readings: {v.readings} (all signatures valid)")
    console.print(f"substituted by the schedule: {v.substituted} device-period(s)")
    console.print(f"books balance: {'yes' if s.balanced else 'NO'}")
    console.print(f"claimed root:  {v.claimed_root}")
    console.print(f"computed root: {v.computed_root}")
    if not v.matches:
        console.print("result: MISMATCH")
        raise typer.Exit(1)
    console.print("result: the root matches")


@settle_app.command("resettle")
@user_errors
def resettle(
    interval: Annotated[int, typer.Option("--interval", min=0, help="The interval to re-settle.")],
    api_key: Annotated[
        str,
        typer.Option(
            "--api-key",
            envvar="FEEDERDAO_API_KEY",
            help="An operator API key (or FEEDERDAO_API_KEY).",
        ),
    ],
    url: Annotated[str, typer.Option(help="The market API.")] = "http://127.0.0.1:8000",
    readings: Annotated[
        Path | None,
        typer.Option(
            help="Corrected signed readings: a JSON list, or one JSON object a line (what "
            "`feederdao meter sign` prints)."
        ),
    ] = None,
) -> None:
    """Re-settle an interval whose root the guardian or the DAO rejected (only the latest
    settled interval), with corrected readings; the operator loop then posts the new root
    and finalises it after its challenge window."""
    import httpx

    corrections = [] if readings is None else _readings_file(readings)
    endpoint = f"{url.rstrip('/')}/intervals/{interval}/resettle"
    try:
        r = httpx.post(
            endpoint,
            json={"readings": corrections},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=120.0,
        )
    except httpx.HTTPError as exc:
        raise CliInputError(f"cannot reach the market API at {url}: {exc}") from exc
    try:
        body = r.json()
    except ValueError:
        body = {"error": r.text[:500]}
    if r.status_code != 200:
        refusals = body.get("refusals") if isinstance(body, dict) else None
        for x in refusals or []:
            console.print(f"refused: reading {x['index']} ({x['reason']}): {x['message']}")
        error = body.get("error") if isinstance(body, dict) else body
        raise CliInputError(f"the market refused the re-settlement ({r.status_code}): {error}")
    console.print(f"interval: {body['interval_id']}")
    console.print(f"root: {body['root']}")
    console.print(f"readings: {body['readings']}")
    console.print(f"substituted by the schedule: {body['substituted']} device-period(s)")
    console.print("next: the operator loop posts this root and finalises it after its window")


def _readings_file(path: Path) -> list[Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CliInputError(f"cannot read the readings {str(path)!r}: {exc}") from exc
    try:
        found = json.loads(text)
    except ValueError:
        try:
            found = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise CliInputError(
                f"{str(path)!r} is neither a JSON list nor one JSON reading a line: {exc}"
            ) from exc
    if isinstance(found, dict):
        found = [found]
    if not isinstance(found, list) or not all(isinstance(x, dict) for x in found):
        raise CliInputError(f"{str(path)!r} holds no list of readings")
    return found


def _vault(rpc: str | None, vault_file: Path):  # type: ignore[no-untyped-def]
    from feederdao.governance.vault import Vault, VaultAddresses

    w3 = _web3(rpc)
    return w3, Vault(w3, VaultAddresses.read(vault_file))


def _decimals(v: Any) -> int:
    from feederdao.governance.chain import calling

    with calling("reading the token's decimals", [v.token]):
        return int(v.token.functions.decimals().call())


@vault_app.command("deploy")
@user_errors
def deploy(
    rpc: Rpc = None,
    sender: Sender = None,
    deployment: Deployment = Path("deployment.json"),
    token: Annotated[
        str | None,
        typer.Option(help="Settlement token (any ERC-20); default: a new test euro token."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Write the vault's addresses here.")] = Path(
        "vault.json"
    ),
) -> None:
    """Deploy a settlement vault for a DAO (its operator posts, its guardian and Timelock
    may reject, its GridParameters sets the challenge window)."""
    from feederdao.governance.deploy import DaoAddresses
    from feederdao.governance.vault import deploy_vault

    w3 = _web3(rpc)
    found = deploy_vault(w3, _sender(w3, sender), DaoAddresses.read(deployment), token)
    found.write(out)
    console.print(f"token: {found.token}")
    console.print(f"vault: {found.vault}")
    console.print(f"written: {out}")


@vault_app.command("mint")
@user_errors
def mint(
    to: Annotated[str, typer.Option(help="Account to mint test tokens to.")],
    amount: Annotated[str, typer.Option(help="Tokens (exact decimals).")],
    rpc: Rpc = None,
    sender: Sender = None,
    vault_file: VaultFile = Path("vault.json"),
) -> None:
    """Mint test euro tokens (the test token's owner only; never a real token)."""
    w3, v = _vault(rpc, vault_file)
    units = _units(amount, _decimals(v), "--amount")
    v.mint(_sender(w3, sender), to, units)
    console.print(f"minted: {amount} to {to}")


@vault_app.command("deposit")
@user_errors
def deposit(
    amount: Annotated[str, typer.Option(help="Tokens to deposit as collateral.")],
    rpc: Rpc = None,
    sender: Sender = None,
    vault_file: VaultFile = Path("vault.json"),
) -> None:
    """Deposit collateral (approves the vault, then deposits)."""
    w3, v = _vault(rpc, vault_file)
    who = _sender(w3, sender)
    v.deposit(who, _units(amount, _decimals(v), "--amount"))
    _print_balance(v, who)


@vault_app.command("balance")
@user_errors
def balance(
    account: Annotated[str | None, typer.Option(help="Account (default: the sender).")] = None,
    rpc: Rpc = None,
    vault_file: VaultFile = Path("vault.json"),
) -> None:
    """An account's deposit and withdrawals in the vault, and its wallet's token balance."""
    w3, v = _vault(rpc, vault_file)
    _print_balance(v, _sender(w3, account))


def _print_balance(v: Any, who: str) -> None:
    d = _decimals(v)
    b = v.balance(who)
    final, root = v.final()
    console.print(f"account: {who}")
    console.print(f"deposited: {_tokens(b.deposited, d)}")
    console.print(f"withdrawn: {_tokens(b.withdrawn, d)}")
    if b.requested:
        console.print(f"requested: {_tokens(b.requested, d)} (due {_when(b.due_at)})")
    console.print(f"wallet: {_tokens(b.wallet, d)}")
    console.print(f"final interval: {final}" + (f" (root 0x{root.hex()})" if final else ""))


def _when(unix_s: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chain_now(v: Any) -> int:
    from feederdao.governance.chain import calling

    with calling("reading the chain's time", [v.vault]):
        return int(v.w3.eth.get_block("latest")["timestamp"])


@vault_app.command("withdraw")
@user_errors
def withdraw(
    evidence: Annotated[
        Path | None,
        typer.Option(help="Settlement evidence of the vault's final interval (JSON)."),
    ] = None,
    amount: Annotated[
        str | None, typer.Option(help="Tokens to withdraw (default: all that is available).")
    ] = None,
    rpc: Rpc = None,
    sender: Sender = None,
    vault_file: VaultFile = Path("vault.json"),
) -> None:
    """Withdraw in two steps. With nothing requested, give notice: request --amount (or all
    that the evidence shows available) and say when it is due. Once it is due, run it again
    with the evidence: the position and its proof are recomputed from it (checked before
    anything is sent) and the request (or --amount of it) is paid out against the latest
    final root."""
    w3, v = _vault(rpc, vault_file)
    who = _sender(w3, sender)
    d = _decimals(v)
    b = v.balance(who)
    if b.requested == 0:
        if amount is not None:
            units = _units(amount, d, "--amount")
        elif evidence is not None:
            position, proof = _proven(v, who, evidence)
            units = v.available(who, position, proof)
            if units <= 0:
                raise CliInputError(f"{who} has nothing available to withdraw")
        else:
            raise CliInputError("give --amount (or --evidence, to request all that is available)")
        v.request_withdrawal(who, units)
        due = v.balance(who).due_at
        console.print(f"requested: {_tokens(units, d)}")
        console.print(f"due: {_when(due)} (chain time, in {max(due - _chain_now(v), 0)} s)")
        console.print("then: feederdao vault withdraw --evidence FILE (of the final interval)")
        _print_balance(v, who)
        return
    wait = b.due_at - _chain_now(v)
    if wait > 0:
        raise CliInputError(
            f"{_tokens(b.requested, d)} requested by {who} is not due until {_when(b.due_at)} "
            f"(in {wait} s of the chain's time); nothing was sent"
        )
    if evidence is None:
        raise CliInputError(
            f"{_tokens(b.requested, d)} is due: give --evidence of the vault's final interval"
        )
    position, proof = _proven(v, who, evidence)
    if amount is None:
        units = min(b.requested, v.available(who, position, proof))
    else:
        units = _units(amount, d, "--amount")
    v.withdraw(who, units, position, proof)
    console.print(f"withdrawn: {_tokens(units, d)}")
    _print_balance(v, who)


def _proven(v: Any, who: str, evidence: Path) -> tuple[int, list[bytes]]:
    """``who``'s position and proof, recomputed from evidence of the vault's final root."""
    from feederdao.workflows.metering import verify_evidence

    check, settled = verify_evidence(_read_json(evidence, "the evidence"))
    final, root = v.final()
    if final != check.interval or "0x" + root.hex() != check.computed_root:
        raise CliInputError(
            f"the evidence is for interval {check.interval} (root {check.computed_root}); the "
            f"vault's final interval is {final} (root 0x{root.hex()})"
        )
    position = settled.positions.get(who.lower())
    if position is None:
        raise CliInputError(f"{who} has no position in interval {check.interval}")
    return int(position), settled.tree.proof(who)


@vault_app.command("cancel-withdrawal")
@user_errors
def cancel_withdrawal(
    rpc: Rpc = None,
    sender: Sender = None,
    vault_file: VaultFile = Path("vault.json"),
) -> None:
    """Cancel a pending withdrawal request (its amount covers bids again)."""
    w3, v = _vault(rpc, vault_file)
    who = _sender(w3, sender)
    if v.balance(who).requested == 0:
        raise CliInputError(f"{who} has no withdrawal request pending")
    v.cancel_withdrawal(who)
    _print_balance(v, who)


# -- energy attribute certificates ------------------------------------------------------------

certificates_app = typer.Typer(
    help="Energy attribute certificates: deploy, where a holder's energy came from, retire.",
    no_args_is_help=True,
)
CertificatesFile = Annotated[
    Path,
    typer.Option("--certificates", help="Certificates deployment file (`certificates deploy`)."),
]
Interval = Annotated[int, typer.Option("--interval", min=0, help="Market interval.")]
Period = Annotated[int, typer.Option("--period", min=0, help="Period of the interval.")]


def _certificates(rpc: str | None, path: Path):  # type: ignore[no-untyped-def]
    from web3 import Web3

    from feederdao.governance.certificates import Certificates

    doc = _read_json(path, "the certificates deployment file")
    address = doc.get("certificates") if isinstance(doc, dict) else None
    if not isinstance(address, str) or not Web3.is_address(address):
        raise CliInputError(f"{str(path)!r} names no certificates contract address")
    w3 = _web3(rpc)
    return w3, Certificates(w3, address)


@certificates_app.command("deploy")
@user_errors
def certificates_deploy(
    operator: Annotated[str, typer.Option(help="The account that issues certificates.")],
    rpc: Rpc = None,
    sender: Sender = None,
    out: Annotated[Path, typer.Option("--out", help="Write the contract's address here.")] = Path(
        "certificates.json"
    ),
) -> None:
    """Deploy the EnergyCertificates contract (ERC-1155, 1 token = 1 Wh)."""
    from feederdao.governance.certificates import deploy_certificates

    w3 = _web3(rpc)
    address = deploy_certificates(w3, _sender(w3, sender), operator)
    out.write_text(json.dumps({"certificates": address}, indent=2))
    console.print(f"certificates: {address}")
    console.print(f"written: {out}")


@certificates_app.command("origin")
@user_errors
def certificates_origin(
    holder: Annotated[str, typer.Option(help="The account whose energy is asked about.")],
    interval: Interval,
    period: Period,
    rpc: Rpc = None,
    certificates_file: CertificatesFile = Path("certificates.json"),
) -> None:
    """Where the holder's energy in one period came from: every local source certified in
    that period and the Wh of it the holder holds or has retired."""
    _, certs = _certificates(rpc, certificates_file)
    found = certs.where_from(holder, interval, period)
    for o in found:
        console.print(f"source: {o.source} producer: {o.producer} wh: {o.wh}")
    console.print(f"total: {sum(o.wh for o in found)} Wh from {len(found)} local source(s)")


@certificates_app.command("retire")
@user_errors
def certificates_retire(
    source: Annotated[str, typer.Option(help="The source device of the certificates.")],
    interval: Interval,
    period: Period,
    wh: Annotated[int, typer.Option("--wh", min=1, help="Wh to retire (claim).")],
    rpc: Rpc = None,
    sender: Sender = None,
    certificates_file: CertificatesFile = Path("certificates.json"),
) -> None:
    """Retire (claim) certificates the sender holds: they are burnt and counted as retired."""
    w3, certs = _certificates(rpc, certificates_file)
    who = _sender(w3, sender)
    certs.retire(who, interval, period, source, wh)
    console.print(f"retired: {wh} Wh of {source} (interval {interval}, period {period})")
    console.print(f"held: {certs.balance(who, interval, period, source)} Wh")
