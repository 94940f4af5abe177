"""Snapshot use cases: tally a hub proposal, its voting power recomputed from the chain."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from feederdao.governance.snapshot.client import HubProposal, SnapshotClient
from feederdao.governance.snapshot.power import PowerMismatch, mismatches, voting_power
from feederdao.governance.snapshot.tally import CountedVote, Tally, tally


@dataclass(frozen=True)
class TallyReport:
    proposal: HubProposal
    tally: Tally
    verified: bool
    mismatches: tuple[PowerMismatch, ...]
    hub_scores: tuple[float, ...]


def tally_hub_proposal(
    client: SnapshotClient, proposal_id: str, w3: Web3 | None = None
) -> TallyReport:
    """Tally a hub proposal's votes; with ``w3``, with each voter's power recomputed from the
    chain at the proposal's snapshot block (disagreements with the hub listed per voter)
    instead of the hub's ``vp``."""
    hub = client.proposal(proposal_id)
    votes = client.votes(proposal_id)
    hub_power = {v.voter: v.vp for v in votes}
    found: tuple[PowerMismatch, ...] = ()
    power = {v.voter.lower(): v.vp for v in votes}
    if w3 is not None:
        power = voting_power(w3, hub.proposal.strategies, hub_power, hub.proposal.snapshot_block)
        found = tuple(mismatches(hub_power, power))
    counted = [CountedVote(v.voter, v.choice, power.get(v.voter.lower(), 0.0)) for v in votes]
    result = tally(
        hub.proposal.voting_type, len(hub.proposal.choices), counted, hub.proposal.quorum
    )
    return TallyReport(hub, result, w3 is not None, found, hub.scores)
