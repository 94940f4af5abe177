"""Snapshot use cases: tally a hub proposal, its voting power recomputed from the chain; close
a self-hosted vote box and act on a pass."""

from __future__ import annotations

import math
from dataclasses import dataclass

from web3 import Web3

from feederdao.governance.dao import Dao
from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.errors import GovernanceError
from feederdao.governance.snapshot.client import HubProposal, HubVote, SnapshotClient
from feederdao.governance.snapshot.collect import VoteBox, passed
from feederdao.governance.snapshot.power import PowerMismatch, mismatches, voting_power
from feederdao.governance.snapshot.tally import CountedVote, Tally, choice_problem, tally


@dataclass(frozen=True)
class TallyReport:
    proposal: HubProposal
    tally: Tally
    verified: bool
    mismatches: tuple[PowerMismatch, ...]
    hub_scores: tuple[float, ...]
    refused: tuple[tuple[str, str], ...] = ()  # (voter, why the vote was not counted)


def _hub_vote_problem(v: HubVote, hub: HubProposal) -> str | None:
    p = hub.proposal
    if not p.start <= v.created <= p.end:
        return f"created at {v.created}, outside the voting window [{p.start}, {p.end}]"
    if not math.isfinite(v.vp) or v.vp < 0:
        return f"the hub reports the voting power {v.vp!r}"
    n = 3 if p.voting_type == "basic" else len(p.choices)
    return choice_problem(p.voting_type, n, v.choice)


def counted_hub_votes(
    hub: HubProposal, votes: list[HubVote]
) -> tuple[list[HubVote], list[tuple[str, str]]]:
    """The hub's votes that count: inside the proposal's window, a valid choice, a sane power,
    and one per voter (the latest; between equal times the greater id, as Snapshot keeps)."""
    refused: list[tuple[str, str]] = []
    latest: dict[str, HubVote] = {}
    for v in votes:
        problem = _hub_vote_problem(v, hub)
        if problem:
            refused.append((v.voter, problem))
            continue
        key = v.voter.lower()
        current = latest.get(key)
        if current is None or (v.created, v.id) > (current.created, current.id):
            if current is not None:
                refused.append((current.voter, "replaced by the voter's later vote"))
            latest[key] = v
        else:
            refused.append((v.voter, "replaced by the voter's later vote"))
    return list(latest.values()), refused


def tally_hub_proposal(
    client: SnapshotClient, proposal_id: str, w3: Web3 | None = None
) -> TallyReport:
    """Tally a hub proposal's votes; with ``w3``, with each voter's power recomputed from the
    chain at the proposal's snapshot block (disagreements with the hub listed per voter)
    instead of the hub's ``vp``. Votes the hub should not have counted (cast outside the
    window, a malformed choice, a voter's superseded vote) are listed and not counted."""
    hub = client.proposal(proposal_id)
    votes, refused = counted_hub_votes(hub, client.votes(proposal_id))
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
    return TallyReport(hub, result, w3 is not None, found, hub.scores, tuple(refused))


@dataclass(frozen=True)
class Enactment:
    """What happened to a closed self-hosted Snapshot proposal."""

    passed: bool
    tally: Tally
    governor_proposal_id: int | None = None
    applied: dict[str, float] | None = None
    refused: tuple[str, ...] = ()
    description: str = ""


def enact(
    box: VoteBox,
    w3: Web3,
    dao: Dao | None = None,
    proposer: str | None = None,
    offchain: frozenset[str] = frozenset(),
    envelope: SafetyEnvelope | None = None,
    last_good: dict[str, float] | None = None,
    now: float | None = None,
    early_by: str = "",
    early_reason: str = "",
) -> Enactment:
    """Close ``box`` (before its end only with an operator override: who and why) and act on
    a pass: parameters the operator marked off-chain-governed are applied directly, each
    through the safety envelope; the others become an on-chain Governor proposal whose
    description names the Snapshot proposal, its verified tally and an early close."""
    result = box.close(w3, now, early_by, early_reason)
    p = box.proposal
    summary = ", ".join(
        f"{c} {s:,.2f}"
        for c, s in zip(
            ("For", "Against", "Abstain") if p.voting_type == "basic" else p.choices,
            result.scores,
            strict=False,
        )
    )
    closure = box.closure
    early = f"; {closure.describe()}" if closure is not None and closure.early else ""
    description = (
        f"Snapshot proposal {p.id} in {p.space} passed ({summary}; power at block "
        f"{p.snapshot_block}, verified{early}): set "
        + ", ".join(f"{k} = {v:g}" for k, v in box.changes.items())
    )
    if not passed(result):
        return Enactment(False, result, description=description)
    on_chain = {k: v for k, v in box.changes.items() if k not in offchain}
    direct = {k: v for k, v in box.changes.items() if k in offchain}
    applied: dict[str, float] = {}
    refused: list[str] = []
    env = envelope or SafetyEnvelope()
    for name, value in direct.items():
        reason = env.check(name, value, (last_good or {}).get(name))
        if reason:
            refused.append(reason)
        else:
            applied[name] = value
    proposal_id = None
    if on_chain:
        if dao is None or proposer is None:
            raise GovernanceError("on-chain parameters need the DAO and a proposer")
        proposal_id = dao.propose(proposer, on_chain, description).proposal_id
    return Enactment(True, result, proposal_id, applied or None, tuple(refused), description)
