"""Which Snapshot votes count for a proposal, checked as Snapshot's sequencer checks them.

A vote (a :class:`~feederdao.governance.snapshot.message.SignedVote` envelope) counts only if

* the envelope is one Snapshot accepts (domain, one of its Vote type sets, well-typed message);
* its space and proposal are the proposal's;
* its signed timestamp lies in the voting window and at most five minutes ahead of its
  arrival, and it *arrived* within the window too — so nobody votes, or changes a vote, after
  the end (or after an operator closed the vote early);
* its choice is valid for the voting type (strict JSON for weighted and quadratic: no ``NaN``,
  no infinities, no negative weights, no choice number out of range);
* its signature recovers to ``from``, or the ``from`` contract confirms it (ERC-1271);
* it is not a message already received: replays are keyed on the message (its EIP-712
  digest, Snapshot's id), not on the signature's bytes.

A voter's vote replaces their earlier one. Between two votes with the same timestamp the one
with the greater message id stands, whichever arrived first (Snapshot's order), so nobody can
flip a voter's two same-second votes back and forth by replaying them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError as EthValidationError
from web3 import Web3

from feederdao.governance.chain import calling
from feederdao.governance.errors import GovernanceError
from feederdao.governance.snapshot.message import (
    FUTURE_DRIFT_S,
    SignedVote,
    loads_strict,
)
from feederdao.governance.snapshot.tally import choice_problem

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
ERC1271_ABI = [
    {
        "name": "isValidSignature",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "outputs": [{"name": "", "type": "bytes4"}],
    }
]


@dataclass(frozen=True)
class SnapshotProposal:
    """What a vote is checked against."""

    id: str
    space: str
    voting_type: str
    choices: tuple[str, ...]
    start: int
    end: int
    snapshot_block: int
    quorum: float = 0.0
    strategies: tuple[dict[str, Any], ...] = ()


def decoded_choice(vote: SignedVote) -> Any:
    """The choice as Snapshot reads it: a number, a list, or — for the string type set —
    the strictly parsed JSON it carries. Raises ``ValueError`` for malformed JSON."""
    s = vote.type_set
    if s is not None and s.kind == "vote-string":
        return loads_strict(str(vote.choice))
    return vote.choice


def _same_proposal(signed: str, proposal_id: str) -> bool:
    if proposal_id.startswith("0x"):
        return signed.lower() == proposal_id.lower()
    return signed == proposal_id


def check_vote(
    vote: SignedVote,
    proposal: SnapshotProposal,
    w3: Web3 | None = None,
    arrived_at: float | None = None,
    closes_at: float | None = None,
) -> str | None:
    """Why ``vote`` may not count for ``proposal`` (None: it may), judged on its own (the
    voter's other votes are the ledger's business). ``arrived_at`` is when it was received
    (now by default); ``closes_at`` an earlier close than the proposal's end."""
    arrived = time.time() if arrived_at is None else arrived_at
    end = proposal.end if closes_at is None else min(proposal.end, closes_at)
    problem = vote.problem()
    if problem:
        return problem
    if vote.space != proposal.space:
        return f"signed for space {vote.space!r}, not {proposal.space!r}"
    if not _same_proposal(vote.proposal, proposal.id):
        return f"signed for proposal {vote.proposal}, not {proposal.id}"
    if not proposal.start <= vote.timestamp <= proposal.end:
        return (
            f"timestamp {vote.timestamp} is outside the voting window "
            f"[{proposal.start}, {proposal.end}]"
        )
    if vote.timestamp > arrived + FUTURE_DRIFT_S:
        return f"timestamp {vote.timestamp} is in the future (arrived at {arrived:.0f})"
    if arrived < proposal.start:
        return f"arrived at {arrived:.0f}, before voting opens at {proposal.start}"
    if arrived > end:
        closed = "the operator closed it early" if end < proposal.end else "voting closed"
        return f"arrived at {arrived:.0f}, after {closed} at {end:.0f}"
    try:
        choice = decoded_choice(vote)
    except ValueError as exc:
        return f"choice {vote.choice!r} is not valid JSON: {exc}"
    problem = choice_problem(proposal.voting_type, len(proposal.choices), choice)
    if problem:
        return problem
    return _signature_problem(vote, w3)


def _signature_problem(vote: SignedVote, w3: Web3 | None) -> str | None:
    try:
        raw = vote.signature_bytes()
        digest = vote.digest()
    except (ValueError, TypeError, OverflowError) as exc:
        return f"the signature or message does not decode: {exc}"
    signer: str | None = None
    undecodable = f"signature has {len(raw)} bytes; an ECDSA signature has 65"
    if len(raw) == 65:
        try:
            signer = vote.signer()
        except (BadSignature, EthValidationError, ValueError, TypeError) as exc:
            undecodable = f"signature does not decode: {exc}"
        if signer is not None and signer.lower() == vote.voter.lower():
            return None
    voter = Web3.to_checksum_address(vote.voter)
    if w3 is not None:
        with calling(f"asking {voter} whether it signed (ERC-1271)"):
            code = w3.eth.get_code(voter)
        if code:
            wallet = w3.eth.contract(address=voter, abi=ERC1271_ABI)
            try:
                with calling(f"asking the contract wallet {voter} (ERC-1271)"):
                    magic = wallet.functions.isValidSignature(digest, raw).call()
            except GovernanceError as exc:
                return f"the contract wallet {voter} refused the signature: {exc}"
            if bytes(magic) == ERC1271_MAGIC:
                return None
            return f"the contract wallet {voter} does not confirm the signature (ERC-1271)"
    if signer is None:
        return undecodable
    return f"signed by {signer}, not by the voter {vote.voter}"


class VoteLedger:
    """The votes that stand, one per voter, and the ids of every message taken in.

    :meth:`offer` applies Snapshot's rules between a voter's votes: a later timestamp
    replaces, an earlier one is refused, and between equal timestamps the greater message id
    stands; a message already taken in is a replay."""

    def __init__(self, votes: Iterable[SignedVote] = (), seen: Iterable[str] = ()) -> None:
        self.latest: dict[str, SignedVote] = {}
        self.seen: set[str] = set(seen)
        self._ids: dict[str, str] = {}
        for v in votes:
            self.latest[v.voter.lower()] = v
            self._ids[v.voter.lower()] = v.id
            self.seen.add(v.id)

    def offer(self, vote: SignedVote) -> tuple[str | None, SignedVote | None]:
        """(why ``vote`` is refused or None, the vote it replaced or None)."""
        vid = vote.id
        if vid in self.seen:
            return f"replayed: message {vid} was already received", None
        key = vote.voter.lower()
        current = self.latest.get(key)
        if current is not None:
            if current.timestamp > vote.timestamp:
                return (
                    f"older than the voter's vote in (timestamp {vote.timestamp} < "
                    f"{current.timestamp})",
                    None,
                )
            if current.timestamp == vote.timestamp and vid <= self._ids[key]:
                return (
                    "the voter's other vote with the same timestamp has the greater message id "
                    f"({self._ids[key]}) and stands, as on Snapshot",
                    None,
                )
        self.latest[key] = vote
        self._ids[key] = vid
        self.seen.add(vid)
        return None, current

    @property
    def votes(self) -> list[SignedVote]:
        return list(self.latest.values())


@dataclass
class VoteCheck:
    accepted: list[SignedVote] = field(default_factory=list)
    rejected: list[tuple[SignedVote, str]] = field(default_factory=list)


REPLACED = "replaced by the voter's later vote"


def verify_votes(
    votes: Iterable[SignedVote],
    proposal: SnapshotProposal,
    w3: Web3 | None = None,
    now: float | None = None,
) -> VoteCheck:
    """Accept the votes, all received at ``now``, that count for ``proposal``; every refusal
    carries its reason. The result does not depend on the order of ``votes``: they are taken
    in by (timestamp, message id), so a voter's greatest one stands."""
    check = VoteCheck()
    valid: list[tuple[int, str, SignedVote]] = []
    for vote in votes:
        reason = check_vote(vote, proposal, w3, now)
        if reason:
            check.rejected.append((vote, reason))
        else:
            valid.append((vote.timestamp, vote.id, vote))
    ledger = VoteLedger()
    for _, _, vote in sorted(valid, key=lambda t: (t[0], t[1])):
        refusal, replaced = ledger.offer(vote)
        if refusal:
            check.rejected.append((vote, refusal))
        if replaced is not None:
            check.rejected.append((replaced, REPLACED))
    check.accepted = ledger.votes
    return check
