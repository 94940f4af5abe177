"""Self-hosted Snapshot-format voting: a feederdao proposal, signed votes verified on arrival
and stored, a tally at close.

A vote box is one JSON file: the proposal (space, id, voting type, choices, window, snapshot
block, voting strategies, quorum), the parameter change it carries, every vote that stands as
the envelope its voter signed, the ids of every message taken in (so a replay is refused even
after the vote it carried was replaced), and, once closed, when, by whom and why. A vote is
stored only after it verified (:mod:`feederdao.governance.snapshot.votes`); the file is replaced
atomically, so a refused or interrupted submission leaves it as it was.

The box closes at the proposal's end. Closing it earlier is an operator override that needs a
reason; both are recorded in the box and named in what the close leads to.

A basic (for / against / abstain) proposal passes with the Governor's counting, OpenZeppelin's
``support=bravo&quorum=for,abstain``: For must exceed Against, and For + Abstain must reach the
quorum (Against does not count towards it).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from web3 import Web3

from feederdao.governance.errors import GovernanceError
from feederdao.governance.errors import VoteRefused as VoteRefused
from feederdao.governance.snapshot.message import SignedVote
from feederdao.governance.snapshot.power import voting_power
from feederdao.governance.snapshot.tally import CountedVote, Tally, tally
from feederdao.governance.snapshot.votes import (
    SnapshotProposal,
    VoteLedger,
    check_vote,
    decoded_choice,
)


@dataclass(frozen=True)
class Closure:
    """When a box closed; ``early`` with the operator and the reason when before the end."""

    at: float
    early: bool = False
    by: str = ""
    reason: str = ""

    def describe(self) -> str:
        if not self.early:
            return f"closed at {self.at:.0f}"
        return f"closed early at {self.at:.0f} by {self.by}: {self.reason}"


@dataclass
class VoteBox:
    proposal: SnapshotProposal
    changes: dict[str, float]
    votes: list[SignedVote] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    closure: Closure | None = None

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        data = {
            "proposal": asdict(self.proposal),
            "changes": self.changes,
            "votes": [v.envelope() for v in self.votes],
            "seen": sorted(self.seen),
            "closure": asdict(self.closure) if self.closure else None,
        }
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> VoteBox:
        try:
            raw = json.loads(Path(path).read_text())
            p = raw["proposal"]
            proposal = SnapshotProposal(
                **{**p, "choices": tuple(p["choices"]), "strategies": tuple(p["strategies"])}
            )
            votes = [SignedVote.from_envelope(v) for v in raw["votes"]]
            closure = Closure(**raw["closure"]) if raw.get("closure") else None
            return cls(proposal, dict(raw["changes"]), votes, list(raw.get("seen", [])), closure)
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise GovernanceError(f"{str(path)!r} is not a vote box: {exc}") from exc

    # -- voting ---------------------------------------------------------------------------

    def submit(self, vote: SignedVote, w3: Web3 | None = None, now: float | None = None) -> None:
        """Verify ``vote``, arrived at ``now``, against the proposal and the votes already in;
        keep it if it counts (a voter's later vote replaces the earlier one), else raise
        :class:`VoteRefused` with the reason."""
        arrived = time.time() if now is None else now
        voter = vote.voter
        if self.closure is not None:
            raise VoteRefused(f"vote of {voter} refused: the box was {self.closure.describe()}")
        problem = check_vote(vote, self.proposal, w3, arrived)
        if problem:
            raise VoteRefused(f"vote of {voter} refused: {problem}")
        ledger = VoteLedger(self.votes, self.seen)
        problem, _ = ledger.offer(vote)
        if problem:
            raise VoteRefused(f"vote of {voter} refused: {problem}")
        self.votes = ledger.votes
        self.seen = sorted(ledger.seen)

    def close(
        self,
        w3: Web3,
        now: float | None = None,
        early_by: str = "",
        early_reason: str = "",
    ) -> Tally:
        """Close the box (once) and tally with every voter's power at the snapshot block.

        Before the proposal's end this needs an operator override: ``early_by`` (who) and
        ``early_reason`` (why), both recorded; otherwise it is refused."""
        p = self.proposal
        if self.closure is None:
            at = time.time() if now is None else now
            if at < p.end:
                if not early_by.strip() or not early_reason.strip():
                    raise GovernanceError(
                        f"voting on {p.id} is open until {p.end} ({p.end - at:.0f} s from now); "
                        "closing before the end is an operator override: name the operator and "
                        "give the reason"
                    )
                self.closure = Closure(at, True, early_by.strip(), early_reason.strip())
            else:
                self.closure = Closure(at)
        power = voting_power(w3, p.strategies, [v.voter for v in self.votes], p.snapshot_block)
        counted = [
            CountedVote(v.voter, decoded_choice(v), power[v.voter.lower()]) for v in self.votes
        ]
        return tally(p.voting_type, len(p.choices), counted, p.quorum)


def quorum_votes(result: Tally) -> float:
    """The power that counts towards a basic proposal's quorum: For + Abstain."""
    _basic(result)
    return result.scores[0] + result.scores[2]


def passed(result: Tally) -> bool:
    """A basic proposal passes as on the Governor: For > Against and For + Abstain ≥ quorum."""
    _basic(result)
    votes_for, against, _ = result.scores
    return votes_for > against and quorum_votes(result) >= result.quorum


def _basic(result: Tally) -> None:
    if result.voting_type != "basic":
        raise GovernanceError(
            f"a parameter change is a basic (for/against/abstain) vote, not {result.voting_type}"
        )
