"""``feederdao snapshot``: read Snapshot spaces and tally proposals, verified against chain."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from feederdao.cli.errors import user_errors

app = typer.Typer(help="Snapshot: proposals and verified tallies.", no_args_is_help=True)
console = Console()

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
    table = Table(title=f"proposals of {space}", title_justify="left")
    for col in ("id", "state", "type", "votes", "title"):
        table.add_column(col)
    for p in items:
        table.add_row(
            p.proposal.id[:14] + "…", p.state, p.proposal.voting_type, str(p.votes), p.title
        )
    console.print(table)


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
    table = Table(
        title=f"{p.title} ({p.proposal.voting_type}, "
        f"{'power from chain' if report.verified else 'power as the hub reports it'})",
        title_justify="left",
    )
    for col in ("choice", "score", "hub score"):
        table.add_column(col)
    choices = (
        ("For", "Against", "Abstain") if p.proposal.voting_type == "basic" else p.proposal.choices
    )
    for i, name in enumerate(choices):
        hub_score = f"{report.hub_scores[i]:,.4f}" if i < len(report.hub_scores) else "-"
        table.add_row(name, f"{t.scores[i]:,.4f}", hub_score)
    console.print(table)
    winner = choices[t.winner - 1] if t.winner else "none (tie or no votes)"
    console.print(
        f"total power {t.total_power:,.4f}; quorum {t.quorum:,.4f} "
        f"{'reached' if t.quorum_reached else 'not reached'}; winner: {winner}"
    )
    for m in report.mismatches:
        console.print(
            f"[red]power mismatch[/] {m.voter}: hub {m.hub_power:g}, chain {m.chain_power:g}"
        )
