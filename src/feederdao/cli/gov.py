"""``feederdao gov``: deploy a feeder DAO and run its lifecycle over JSON-RPC."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from feederdao.cli.errors import user_errors

app = typer.Typer(
    help="On-chain governance: deploy, propose, vote, queue, execute, read.", no_args_is_help=True
)
console = Console()

Rpc = Annotated[
    str | None,
    typer.Option(
        "--rpc",
        help="JSON-RPC URL of the node (default: an embedded in-process chain, "
        "gone when the command ends).",
    ),
]
Deployment = Annotated[
    Path, typer.Option("--deployment", help="Deployment file written by `gov deploy`.")
]
Sender = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="Sending account: unlocked on the node, or the address of "
        "FEEDERDAO_PRIVATE_KEY (default: the node's first account).",
    ),
]


def _web3(rpc: str | None):  # type: ignore[no-untyped-def]
    from feederdao.governance.chain import connect, use_private_key

    w3 = connect(rpc)
    key = os.environ.get("FEEDERDAO_PRIVATE_KEY")
    if key:
        use_private_key(w3, key)
    return w3


def _sender(w3, sender: str | None) -> str:  # type: ignore[no-untyped-def]
    from web3 import Web3

    if sender:
        return str(Web3.to_checksum_address(sender))
    if w3.eth.default_account:
        return str(w3.eth.default_account)
    return str(w3.eth.accounts[0])


def _dao(rpc: str | None, deployment: Path):  # type: ignore[no-untyped-def]
    from feederdao.governance.dao import Dao
    from feederdao.governance.deploy import DaoAddresses

    w3 = _web3(rpc)
    return w3, Dao(w3, DaoAddresses.read(deployment))


@app.command()
@user_errors
def deploy(
    rpc: Rpc = None,
    sender: Sender = None,
    guardian: Annotated[
        str | None, typer.Option(help="Guardian (the DSO): may pause and cancel, never set values.")
    ] = None,
    operator: Annotated[
        str | None, typer.Option(help="Market operator anchoring settlements.")
    ] = None,
    holder: Annotated[
        list[str] | None, typer.Option(help="ADDRESS=TOKENS to give tokens to; repeatable.")
    ] = None,
    voting_period: Annotated[int, typer.Option(help="Voting period in blocks.")] = 20,
    timelock_delay: Annotated[int, typer.Option(help="Timelock delay in seconds.")] = 60,
    out: Annotated[Path, typer.Option("--out", help="Write the addresses here.")] = Path(
        "deployment.json"
    ),
) -> None:
    """Deploy and wire GridToken, GridTimelock, GridGovernor, GridParameters, SettlementRegistry."""
    from feederdao.governance.deploy import DaoConfig, deploy_dao
    from feederdao.governance.errors import GovernanceError

    w3 = _web3(rpc)
    me = _sender(w3, sender)
    holders: dict[str, int] = {}
    for item in holder or []:
        address, _, amount = item.partition("=")
        try:
            holders[address] = int(float(amount) * 10**18)
        except ValueError:
            raise GovernanceError(f"--holder {item!r}: expected ADDRESS=TOKENS") from None
    config = DaoConfig(voting_period_blocks=voting_period, timelock_delay_s=timelock_delay)
    addresses = deploy_dao(w3, me, guardian or me, operator or me, holders, config)
    addresses.write(out)
    table = Table(title="feeder DAO deployed", show_header=False, title_justify="left")
    for name in (
        "token",
        "timelock",
        "governor",
        "parameters",
        "settlement",
        "guardian",
        "operator",
    ):
        table.add_row(name, getattr(addresses, name))
    console.print(table)
    console.print(f"addresses written to {out}")
    if rpc is None:
        console.print(
            "[yellow]embedded chain: this deployment ends with the command; pass "
            "--rpc to deploy to a node[/]"
        )


@app.command()
@user_errors
def delegate(
    deployment: Deployment,
    rpc: Rpc = None,
    sender: Sender = None,
    to: Annotated[str | None, typer.Option(help="Delegate to (default: self).")] = None,
) -> None:
    """Activate your voting power (delegate to yourself or to someone else)."""
    w3, dao = _dao(rpc, deployment)
    me = _sender(w3, sender)
    dao.delegate(me, to)
    console.print(f"{me} delegated to {to or me}: {dao.votes(to or me) / 1e18:,.2f} votes")


@app.command()
@user_errors
def propose(
    deployment: Deployment,
    set_: Annotated[
        list[str], typer.Option("--set", help="NAME=VALUE, e.g. v_max_pu=1.04; repeatable.")
    ],
    description: Annotated[str, typer.Option(help="What and why.")],
    rpc: Rpc = None,
    sender: Sender = None,
) -> None:
    """Propose grid parameter changes, executed through the Timelock if the vote passes."""
    from feederdao.governance.errors import GovernanceError

    w3, dao = _dao(rpc, deployment)
    changes: dict[str, float] = {}
    for item in set_:
        name, _, value = item.partition("=")
        try:
            changes[name.strip()] = float(value)
        except ValueError:
            raise GovernanceError(f"--set {item!r}: expected NAME=NUMBER") from None
    p = dao.propose(_sender(w3, sender), changes, description)
    console.print(f"proposal {p.proposal_id} created ({dao.state(p.proposal_id)})")


@app.command()
@user_errors
def vote(
    deployment: Deployment,
    proposal: Annotated[int, typer.Option(help="Proposal id.")],
    support: Annotated[str, typer.Option(help="for, against or abstain.")],
    reason: Annotated[str, typer.Option(help="Why (recorded on chain).")] = "",
    rpc: Rpc = None,
    sender: Sender = None,
) -> None:
    """Vote for, against or abstain, with a reason."""
    w3, dao = _dao(rpc, deployment)
    dao.vote(_sender(w3, sender), proposal, support, reason)
    console.print(f"voted {support} on {proposal}")


@app.command()
@user_errors
def queue(
    deployment: Deployment,
    proposal: Annotated[int, typer.Option(help="Proposal id.")],
    rpc: Rpc = None,
    sender: Sender = None,
) -> None:
    """Queue a succeeded proposal in the Timelock."""
    w3, dao = _dao(rpc, deployment)
    op = dao.queue(dao.proposal(proposal), _sender(w3, sender))
    console.print(f"proposal {proposal} queued (timelock operation 0x{op.hex()})")


@app.command()
@user_errors
def execute(
    deployment: Deployment,
    proposal: Annotated[int, typer.Option(help="Proposal id.")],
    rpc: Rpc = None,
    sender: Sender = None,
) -> None:
    """Execute a queued proposal once the Timelock delay has passed."""
    w3, dao = _dao(rpc, deployment)
    dao.execute(dao.proposal(proposal), _sender(w3, sender))
    console.print(f"proposal {proposal} executed")


@app.command()
@user_errors
def status(deployment: Deployment, rpc: Rpc = None) -> None:
    """Every proposal with its state and tally."""
    _, dao = _dao(rpc, deployment)
    table = Table(title="proposals", title_justify="left")
    for col in ("id", "state", "for", "against", "abstain", "description"):
        table.add_column(col)
    for s in dao.proposals():
        table.add_row(
            str(s.proposal_id)[:12] + "…",
            s.state,
            f"{s.votes_for / 1e18:,.0f}",
            f"{s.votes_against / 1e18:,.0f}",
            f"{s.votes_abstain / 1e18:,.0f}",
            s.description,
        )
    console.print(table)


@app.command()
@user_errors
def params(
    deployment: Deployment,
    rpc: Rpc = None,
    envelope: Annotated[
        Path | None, typer.Option(help="Operator's safety envelope (TOML).")
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="Reader state file (cursor, last-known-good).")
    ] = None,
) -> None:
    """The grid parameters as the safe reader applies them, with provenance and alarms."""
    from feederdao.cli import render
    from feederdao.governance.deploy import DaoAddresses
    from feederdao.governance.envelope import SafetyEnvelope
    from feederdao.governance.reader import JsonStateFile, ParameterReader

    w3 = _web3(rpc)
    reader = ParameterReader(
        w3,
        DaoAddresses.read(deployment).parameters,
        SafetyEnvelope.from_toml(envelope) if envelope else SafetyEnvelope(),
        JsonStateFile(state) if state else None,
    )
    render.reading(console, reader.read())
