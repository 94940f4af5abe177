"""Self-hosted Snapshot-format voting: a feederdao proposal, signed votes verified on arrival
and stored, a tally at close.

A vote box is one JSON file: the proposal (space, id, voting type, choices, window, snapshot
block, voting strategies, quorum), the parameter change it carries, and every accepted vote
with its signature. A vote is stored only after it verified (signature — ERC-1271 for contract
wallets — space, proposal, window, choice format, not a replay); the file is replaced
atomically, so a refused or interrupted submission leaves it as it was.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from feederdao.governance.errors import GovernanceError
from feederdao.governance.snapshot.power import voting_power
from feederdao.governance.snapshot.tally import CountedVote, Tally, tally
from feederdao.governance.snapshot.votes import SignedVote, SnapshotProposal, verify_votes


class VoteRefused(GovernanceError, ValueError):
    """A submitted vote did not verify; the message says why."""


@dataclass
class VoteBox:
    proposal: SnapshotProposal
    changes: dict[str, float]
    votes: list[SignedVote] = field(default_factory=list)

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path) -> None:
        data = {
            "proposal": asdict(self.proposal),
            "changes": self.changes,
            "votes": [asdict(v) for v in self.votes],
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
            return cls(proposal, dict(raw["changes"]), [SignedVote(**v) for v in raw["votes"]])
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise GovernanceError(f"{str(path)!r} is not a vote box: {exc}") from exc

    # -- voting ---------------------------------------------------------------------------

    def submit(self, vote: SignedVote, w3: Web3 | None = None, now: float | None = None) -> None:
        """Verify ``vote`` against the proposal and the votes already in; keep it if genuine
        (a voter's later vote replaces the earlier one), else raise :class:`VoteRefused`."""
        check = verify_votes([*self.votes, vote], self.proposal, w3, now)
        refusal = [
            reason
            for v, reason in check.rejected
            if v == vote and reason != "replaced by the voter's later vote"
        ]
        if refusal:
            raise VoteRefused(f"vote of {vote.voter} refused: {refusal[0]}")
        if vote not in check.accepted:
            raise VoteRefused(f"vote of {vote.voter} refused: older than the voter's vote in")
        self.votes = check.accepted

    def close(self, w3: Web3) -> Tally:
        """Tally with every voter's power at the proposal's snapshot block."""
        p = self.proposal
        power = voting_power(w3, p.strategies, [v.voter for v in self.votes], p.snapshot_block)
        counted = [
            CountedVote(v.voter, _choice(v.choice), power[v.voter.lower()]) for v in self.votes
        ]
        return tally(p.voting_type, len(p.choices), counted, p.quorum)


def _choice(choice: Any) -> Any:
    return json.loads(choice) if isinstance(choice, str) else choice


def passed(result: Tally) -> bool:
    """A parameter change passes when quorum is reached and the first choice ("For") wins."""
    return result.quorum_reached and result.winner == 1
