"""``feederdao gov``: deploy a feeder DAO and run its lifecycle over JSON-RPC.

Output is one fact per line, ids, addresses and hashes in full, never wrapped or cut, so what
a user reads (and copies) does not depend on the terminal's width."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from feederdao.cli.consoles import CommandConsole
from feederdao.cli.errors import user_errors

app = typer.Typer(
    help="On-chain governance: deploy, propose, vote, queue, execute, read.", no_args_is_help=True
)
console = CommandConsole(soft_wrap=True, markup=False, highlight=False)

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
ProposalId = Annotated[int, typer.Option("--proposal", help="Proposal id (in full).")]
Confirmations = Annotated[
    Path | None,
    typer.Option("--envelope", help="Operator's safety envelope (TOML): its confirmations count."),
]


def _web3(rpc: str | None, wait_s: float = 0.0):  # type: ignore[no-untyped-def]
    from feederdao.governance.chain import connect, use_private_key

    w3 = connect(rpc, wait_s=wait_s)
    key = os.environ.get("FEEDERDAO_PRIVATE_KEY")
    if key:
        use_private_key(w3, key)
    return w3


def _sender(w3, sender: str | None) -> str:  # type: ignore[no-untyped-def]
    from web3 import Web3

    from feederdao.governance.chain import calling
    from feederdao.governance.errors import GovernanceError

    if sender:
        if not Web3.is_address(sender):
            raise GovernanceError(f"--from {sender!r} is not an address")
        return str(Web3.to_checksum_address(sender))
    if w3.eth.default_account:
        return str(w3.eth.default_account)
    with calling("listing the node's accounts"):
        accounts = w3.eth.accounts
    if not accounts:
        raise GovernanceError("the node has no unlocked account: pass --from or set a key")
    return str(accounts[0])


def _dao(rpc: str | None, deployment: Path):  # type: ignore[no-untyped-def]
    from feederdao.governance.dao import Dao
    from feederdao.governance.deploy import DaoAddresses

    addresses = DaoAddresses.read(deployment)
    w3 = _web3(rpc)
    return w3, Dao(w3, addresses)


def _envelope(path: Path | None):  # type: ignore[no-untyped-def]
    from feederdao.governance.envelope import SafetyEnvelope

    return SafetyEnvelope.from_toml(path) if path else SafetyEnvelope()


@app.command()
@user_errors
def node(
    rpc: Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the node.")],
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for a node that is still starting.")
    ] = 0.0,
) -> None:
    """Which node answers, where its chain is, and whether it mines on request."""
    from feederdao.governance.chain import node_info
    from feederdao.governance.dao import chain_time

    info = node_info(_web3(rpc, wait))
    console.print(f"node {info.client}, chain id {info.chain_id}")
    console.print(f"block {info.block_number} at {chain_time(info.block_timestamp)} (chain time)")
    if info.development:
        console.print("a development chain: `gov wait --mine` mines blocks and moves its clock")


@app.command()
@user_errors
def deploy(
    rpc: Rpc = None,
    sender: Sender = None,
    guardian: Annotated[
        str | None,
        typer.Option(help="Guardian (the DSO): may pause and cancel, never set values."),
    ] = None,
    operator: Annotated[
        str | None, typer.Option(help="Market operator anchoring settlements.")
    ] = None,
    holder: Annotated[
        list[str] | None,
        typer.Option(help="ADDRESS=TOKENS to give tokens to (exact decimals); repeatable."),
    ] = None,
    voting_delay: Annotated[int, typer.Option(help="Voting delay in blocks.")] = 1,
    voting_period: Annotated[int, typer.Option(help="Voting period in blocks.")] = 20,
    late_quorum_extension: Annotated[
        int, typer.Option(help="Blocks of voting added when quorum is reached late.")
    ] = 5,
    proposal_threshold: Annotated[
        str | None,
        typer.Option(help="Votes (tokens) needed to propose (default: 0.1 % of the supply)."),
    ] = None,
    timelock_delay: Annotated[int, typer.Option(help="Timelock delay in seconds.")] = 60,
    out: Annotated[Path, typer.Option("--out", help="Write the addresses here.")] = Path(
        "deployment.json"
    ),
) -> None:
    """Deploy and wire GridToken, GridTimelock, GridGovernor, GridParameters, SettlementRegistry."""
    from feederdao.governance.deploy import DaoConfig, deploy_dao
    from feederdao.governance.errors import GovernanceError
    from feederdao.governance.keys import format_tokens, tokens_to_units

    holders: dict[str, int] = {}
    for item in holder or []:
        address, sep, amount = item.partition("=")
        if not sep:
            raise GovernanceError(f"--holder {item!r}: expected ADDRESS=TOKENS")
        holders[address.strip()] = tokens_to_units(amount, f"--holder {item!r}: amount")
    threshold = (
        tokens_to_units(proposal_threshold, "--proposal-threshold")
        if proposal_threshold is not None
        else None
    )
    w3 = _web3(rpc)
    me = _sender(w3, sender)
    config = DaoConfig(
        voting_delay_blocks=voting_delay,
        voting_period_blocks=voting_period,
        late_quorum_extension_blocks=late_quorum_extension,
        proposal_threshold=threshold,
        timelock_delay_s=timelock_delay,
    )
    addresses = deploy_dao(w3, me, guardian or me, operator or me, holders, config)
    addresses.write(out)
    console.print("feeder DAO deployed")
    for name in ("token", "timelock", "governor", "parameters", "settlement"):
        console.print(f"  {name}: {getattr(addresses, name)}")
    console.print(f"  guardian: {addresses.guardian}")
    console.print(f"  operator: {addresses.operator}")
    for address, units in holders.items():
        console.print(f"  holder {address}: {format_tokens(units)} tokens")
    console.print(
        f"proposing needs {format_tokens(config.proposal_threshold_votes)} votes; voting opens "
        f"{voting_delay} block(s) after a proposal and lasts {voting_period} blocks "
        f"(+{late_quorum_extension} if quorum comes late); the Timelock waits {timelock_delay} s"
    )
    console.print(f"addresses written to {out}")
    if rpc is None:
        console.print(
            "embedded chain: this deployment ends with the command; pass --rpc to deploy to a node"
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
    from feederdao.governance.keys import format_tokens

    w3, dao = _dao(rpc, deployment)
    me = _sender(w3, sender)
    dao.delegate(me, to)
    console.print(f"{me} delegated to {to or me}: {format_tokens(dao.votes(to or me))} votes")


def _print_schedule(dao, proposal_id: int) -> None:  # type: ignore[no-untyped-def]
    console.print(dao.schedule(proposal_id).describe())


@app.command()
@user_errors
def propose(
    deployment: Deployment,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="NAME=VALUE, e.g. v_max_pu=1.04 (exact decimals); repeatable."),
    ] = None,
    guardian: Annotated[
        str | None,
        typer.Option("--guardian", help="Propose this address as the new guardian instead."),
    ] = None,
    remove_guardian: Annotated[
        bool, typer.Option("--remove-guardian", help="Propose removing the guardian instead.")
    ] = False,
    description: Annotated[str, typer.Option(help="What and why.")] = "",
    id_file: Annotated[
        Path | None, typer.Option("--id-file", help="Also write the proposal id to this file.")
    ] = None,
    rpc: Rpc = None,
    sender: Sender = None,
) -> None:
    """Propose grid parameter changes (or a new guardian), executed through the Timelock if the
    vote passes."""
    from feederdao.governance.errors import GovernanceError
    from feederdao.governance.keys import parse_assignment

    changes = dict(parse_assignment(item) for item in set_ or [])
    kinds = sum((bool(changes), guardian is not None, remove_guardian))
    if kinds != 1:
        raise GovernanceError(
            "propose either --set NAME=VALUE, or --guardian ADDRESS, or --remove-guardian"
        )
    if not description.strip():
        raise GovernanceError("--description: say what the proposal does and why")
    w3, dao = _dao(rpc, deployment)
    me = _sender(w3, sender)
    if changes:
        p = dao.propose(me, changes, description)
    else:
        p = dao.propose_guardian(me, guardian, description)
    if id_file is not None:
        id_file.write_text(f"{p.proposal_id}\n")
    console.print(f"proposal {p.proposal_id} created ({dao.state(p.proposal_id)})")
    for action in p.actions:
        console.print(f"  {action}")
    _print_schedule(dao, p.proposal_id)


@app.command()
@user_errors
def vote(
    deployment: Deployment,
    proposal: ProposalId,
    support: Annotated[str, typer.Option(help="for, against or abstain.")],
    reason: Annotated[str, typer.Option(help="Why (recorded on chain).")] = "",
    rpc: Rpc = None,
    sender: Sender = None,
) -> None:
    """Vote for, against or abstain, with a reason."""
    w3, dao = _dao(rpc, deployment)
    me = _sender(w3, sender)
    dao.vote(me, proposal, support, reason)
    console.print(f"{me} voted {support} on proposal {proposal}")
    _print_schedule(dao, proposal)


@app.command()
@user_errors
def wait(
    deployment: Deployment,
    proposal: ProposalId,
    until: Annotated[
        str,
        typer.Option(
            "--until",
            help="active (voting open), closed (voting over), ready (Timelock delay passed) or "
            "final (its execution's block is final for `gov params`).",
        ),
    ],
    mine: Annotated[
        bool,
        typer.Option(
            "--mine",
            help="On a development chain (anvil): mine blocks and move the clock instead of "
            "waiting.",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 3600.0,
    envelope: Confirmations = None,
    rpc: Rpc = None,
) -> None:
    """Wait until a proposal reaches its next step (or mine up to it on anvil)."""
    from feederdao.governance.errors import GovernanceError
    from feederdao.workflows.governance import MILESTONES, wait_for

    if until not in MILESTONES:
        raise GovernanceError(f"--until {until!r}: choose one of {', '.join(MILESTONES)}")
    _, dao = _dao(rpc, deployment)
    reached = wait_for(dao, proposal, until, mine, timeout, _envelope(envelope))  # type: ignore[arg-type]
    console.print(f"proposal {proposal}: {reached}")


@app.command()
@user_errors
def queue(
    deployment: Deployment,
    proposal: ProposalId,
    rpc: Rpc = None,
    sender: Sender = None,
) -> None:
    """Queue a succeeded proposal in the Timelock."""
    w3, dao = _dao(rpc, deployment)
    op = dao.queue(dao.proposal(proposal), _sender(w3, sender))
    console.print(f"proposal {proposal} queued (timelock operation 0x{op.hex()})")
    _print_schedule(dao, proposal)


@app.command()
@user_errors
def execute(
    deployment: Deployment,
    proposal: ProposalId,
    rpc: Rpc = None,
    sender: Sender = None,
    envelope: Confirmations = None,
) -> None:
    """Execute a queued proposal once the Timelock delay has passed."""
    w3, dao = _dao(rpc, deployment)
    receipt = dao.execute(dao.proposal(proposal), _sender(w3, sender))
    block = int(receipt["blockNumber"])
    confirmations = _envelope(envelope).confirmations
    console.print(f"proposal {proposal} executed in block {block}")
    console.print(
        "the parameter reader applies it once that block is final: marked finalized by the node, "
        f"or, on a node without finality, {confirmations} blocks below the head "
        f"(`gov wait --until final`)"
    )


@app.command()
@user_errors
def status(deployment: Deployment, rpc: Rpc = None) -> None:
    """Every proposal with its state, tally and next step."""
    from feederdao.governance.keys import format_tokens

    _, dao = _dao(rpc, deployment)
    items = dao.proposals()
    if not items:
        console.print("no proposals yet")
    for s in items:
        console.print(f"proposal {s.proposal_id}: {s.state}")
        console.print(f"  {s.description}")
        console.print(
            f"  for {format_tokens(s.votes_for)}, against {format_tokens(s.votes_against)}, "
            f"abstain {format_tokens(s.votes_abstain)}"
        )
        console.print(f"  {dao.schedule(s.proposal_id).describe()}")


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
    from feederdao.governance.reader import JsonStateFile, ParameterReader

    addresses = DaoAddresses.read(deployment)
    reader = ParameterReader(
        _web3(rpc),
        addresses.parameters,
        _envelope(envelope),
        JsonStateFile(state) if state else None,
    )
    render.reading(console.get(), reader.read())
