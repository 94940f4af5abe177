"""``feederdao snapshot``: read Snapshot spaces and tally proposals, verified against chain;
run Snapshot-format votes on feederdao proposals.

Output is one fact per line with ids in full, whatever the terminal's width."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from feederdao.cli.consoles import CommandConsole
from feederdao.cli.errors import user_errors

app = typer.Typer(help="Snapshot: proposals and verified tallies.", no_args_is_help=True)
console = CommandConsole(soft_wrap=True, markup=False, highlight=False)

Hub = Annotated[str, typer.Option("--hub", help="GraphQL endpoint of the Snapshot hub.")]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="SNAPSHOT_API_KEY", help="Hub API key (or SNAPSHOT_API_KEY)."),
]


@app.command()
@user_errors
def proposals(
    space: Annotated[str, typer.Option("--space", help="Space id, e.g. feeder.eth.")],
    hub: Hub = "https://hub.snapshot.org/graphql",
    api_key: ApiKey = None,
    state: Annotated[str | None, typer.Option(help="active, closed or pending.")] = None,
) -> None:
    """List a space's proposals."""
    from feederdao.governance.snapshot.client import SnapshotClient

    with SnapshotClient(hub, api_key) as client:
        items = client.proposals(space, state)
    console.print(f"{len(items)} proposal(s) of {space}")
    for p in items:
        console.print(
            f"proposal {p.proposal.id}: {p.state}, {p.proposal.voting_type}, {p.votes} votes"
        )
        console.print(f"  {p.title}")


@app.command()
@user_errors
def tally(
    proposal: Annotated[str, typer.Option("--proposal", help="Proposal id.")],
    hub: Hub = "https://hub.snapshot.org/graphql",
    api_key: ApiKey = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Recompute voting power from chain at the snapshot block (needs --rpc).",
        ),
    ] = False,
    rpc: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL for --verify.")] = None,
) -> None:
    """Tally a proposal with Snapshot's rules for its voting type."""
    from feederdao.governance.chain import connect
    from feederdao.governance.errors import GovernanceError
    from feederdao.governance.snapshot.client import SnapshotClient
    from feederdao.workflows.snapshot import tally_hub_proposal

    if verify and not rpc:
        raise GovernanceError("--verify recomputes voting power from a node: pass --rpc URL")
    w3 = connect(rpc) if verify else None
    with SnapshotClient(hub, api_key) as client:
        report = tally_hub_proposal(client, proposal, w3)
    p, t = report.proposal, report.tally
    console.print(
        f"{p.title} ({p.proposal.voting_type}, "
        f"{'power from chain' if report.verified else 'power as the hub reports it'})"
    )
    choices = (
        ("For", "Against", "Abstain") if p.proposal.voting_type == "basic" else p.proposal.choices
    )
    for i, name in enumerate(choices):
        hub_score = f"{report.hub_scores[i]:,.4f}" if i < len(report.hub_scores) else "-"
        console.print(f"  {name}: {t.scores[i]:,.4f} (hub {hub_score})")
    winner = choices[t.winner - 1] if t.winner else "none (tie or no votes)"
    console.print(
        f"total power {t.total_power:,.4f}; quorum {t.quorum:,.4f} "
        f"{'reached' if t.quorum_reached else 'not reached'}; winner: {winner}"
    )
    for m in report.mismatches:
        console.print(f"power mismatch {m.voter}: hub {m.hub_power:g}, chain {m.chain_power:g}")
    for voter, why in report.refused:
        console.print(f"not counted: vote of {voter}: {why}")


Box = Annotated[Path, typer.Option("--box", help="Vote box file of a feederdao proposal.")]


@app.command()
@user_errors
def create(
    box: Box,
    space: Annotated[str, typer.Option("--space")],
    proposal_id: Annotated[str, typer.Option("--id", help="Proposal id (0x + 64 hex, or text).")],
    set_: Annotated[
        list[str], typer.Option("--set", help="NAME=VALUE parameter change; repeatable.")
    ],
    token: Annotated[str, typer.Option("--token", help="GridToken address (erc20-votes).")],
    snapshot_block: Annotated[int, typer.Option("--snapshot-block")],
    start: Annotated[int, typer.Option("--start", help="Voting opens (unix time).")],
    end: Annotated[int, typer.Option("--end", help="Voting closes (unix time).")],
    quorum: Annotated[float, typer.Option("--quorum", help="Voting power needed.")] = 0.0,
) -> None:
    """Open a basic (for/against/abstain) Snapshot-format vote on a parameter change."""
    from feederdao.governance.errors import GovernanceError
    from feederdao.governance.keys import parse_assignment
    from feederdao.governance.snapshot.collect import VoteBox
    from feederdao.governance.snapshot.votes import SnapshotProposal

    changes = {name: float(value) for name, value in map(parse_assignment, set_)}
    if end <= start:
        raise GovernanceError(f"--end {end} must be after --start {start}")
    proposal = SnapshotProposal(
        proposal_id,
        space,
        "basic",
        ("For", "Against", "Abstain"),
        start,
        end,
        snapshot_block,
        quorum,
        ({"name": "erc20-votes", "params": {"address": token}},),
    )
    VoteBox(proposal, changes).save(box)
    console.print(f"vote box {box} opened for {proposal_id}")


@app.command()
@user_errors
def submit(
    box: Box,
    vote: Annotated[
        Path,
        typer.Option(
            "--vote",
            help="Signed vote: the JSON envelope a Snapshot client posts "
            "({address, sig, data: {domain, types, message}}).",
        ),
    ],
    rpc: Annotated[
        str | None, typer.Option("--rpc", help="Node, for contract wallets (ERC-1271).")
    ] = None,
) -> None:
    """Verify a Snapshot signed vote (as the Snapshot client posts it) and store it in the box."""
    from feederdao.governance.chain import connect
    from feederdao.governance.errors import VoteRefused
    from feederdao.governance.snapshot.collect import VoteBox
    from feederdao.governance.snapshot.message import SignedVote, loads_strict

    vb = VoteBox.load(box)
    try:
        raw = loads_strict(vote.read_bytes())
    except (OSError, ValueError) as exc:
        raise VoteRefused(f"{str(vote)!r} is not a signed vote (strict JSON): {exc}") from exc
    signed = SignedVote.from_envelope(raw)
    vb.submit(signed, connect(rpc) if rpc else None)
    vb.save(box)
    console.print(f"vote of {signed.voter} accepted ({len(vb.votes)} in the box)")


@app.command()
@user_errors
def close(
    box: Box,
    rpc: Annotated[str, typer.Option("--rpc", help="Node to read voting power from.")],
    deployment: Annotated[
        Path | None, typer.Option(help="DAO deployment, to propose a pass on chain.")
    ] = None,
    sender: Annotated[str | None, typer.Option("--from", help="Proposer.")] = None,
    offchain: Annotated[
        list[str] | None,
        typer.Option(
            "--offchain",
            help="Parameter governed "
            "off chain (applied directly, within "
            "the envelope); repeatable.",
        ),
    ] = None,
    envelope: Annotated[Path | None, typer.Option(help="Operator's safety envelope.")] = None,
    close_early: Annotated[
        str,
        typer.Option(
            "--close-early",
            help="Close before the proposal's end: the reason (an operator override, recorded).",
        ),
    ] = "",
    operator: Annotated[
        str, typer.Option("--operator", help="Who overrides the end (with --close-early).")
    ] = "",
) -> None:
    """Tally the box with power from chain; a pass becomes a Governor proposal. The box closes
    at the proposal's end; closing earlier needs --close-early REASON --operator NAME."""
    from feederdao.governance.chain import connect
    from feederdao.governance.dao import Dao
    from feederdao.governance.deploy import DaoAddresses
    from feederdao.governance.envelope import SafetyEnvelope
    from feederdao.governance.snapshot.collect import VoteBox, quorum_votes
    from feederdao.workflows.snapshot import enact

    vb = VoteBox.load(box)
    addresses = DaoAddresses.read(deployment) if deployment else None
    env = SafetyEnvelope.from_toml(envelope) if envelope else None
    w3 = connect(rpc)
    dao = Dao(w3, addresses) if addresses else None
    proposer = sender or (w3.eth.accounts[0] if dao else None)
    outcome = enact(
        vb,
        w3,
        dao,
        proposer,
        frozenset(offchain or ()),
        env,
        early_by=operator,
        early_reason=close_early,
    )
    vb.save(box)  # records the closure
    t = outcome.tally
    if vb.closure is not None:
        console.print(f"vote box {vb.closure.describe()}")
    console.print(
        f"for {t.scores[0]:,.2f}, against {t.scores[1]:,.2f}, abstain {t.scores[2]:,.2f}; "
        f"quorum (for + abstain) {quorum_votes(t):,.2f} of {t.quorum:,.2f}: "
        + ("passed" if outcome.passed else "not passed")
    )
    if outcome.governor_proposal_id is not None:
        console.print(f"Governor proposal {outcome.governor_proposal_id} created")
    if outcome.applied:
        console.print(f"applied off chain: {outcome.applied}")
    for r in outcome.refused:
        console.print(f"not applied: {r}")
