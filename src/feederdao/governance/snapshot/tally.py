"""Snapshot's voting systems, tallied from verified votes.

Choices are 1-based, as in Snapshot. Every tally returns one score per choice (in voting
power) and the winner; ``quorum`` compares the total voting power cast with a threshold.

* single-choice / basic: a vote's power goes to its one choice (basic: 1 for, 2 against,
  3 abstain);
* approval: a vote's full power goes to every choice it approves;
* weighted: a vote's power is split in proportion to its weights;
* quadratic: per choice, (Σ_votes √(power × share))², rescaled so the scores add up to the
  power cast;
* ranked-choice: instant runoff — each vote counts for its highest-ranked choice still in the
  race; the weakest choice drops out until one holds a majority; scores are the final round's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

VotingType = Literal["single-choice", "approval", "weighted", "quadratic", "ranked-choice", "basic"]
VOTING_TYPES: tuple[str, ...] = (
    "single-choice",
    "approval",
    "weighted",
    "quadratic",
    "ranked-choice",
    "basic",
)


@dataclass(frozen=True)
class CountedVote:
    voter: str
    choice: Any  # int, list[int] or dict[str, float], per the voting type
    power: float


@dataclass(frozen=True)
class Tally:
    voting_type: str
    scores: tuple[float, ...]
    total_power: float
    quorum: float
    rounds: tuple[tuple[float, ...], ...] = ()

    @property
    def quorum_reached(self) -> bool:
        return self.total_power >= self.quorum

    @property
    def winner(self) -> int | None:
        """1-based index of the leading choice (None without votes or on a tie)."""
        if not self.scores or max(self.scores) <= 0:
            return None
        best = max(self.scores)
        leaders = [i for i, s in enumerate(self.scores) if math.isclose(s, best)]
        return leaders[0] + 1 if len(leaders) == 1 else None


def _weights(choice: dict[str, float], n: int) -> list[float]:
    w = [0.0] * n
    for key, value in choice.items():
        w[int(key) - 1] += float(value)
    return w


def tally(
    voting_type: str, n_choices: int, votes: Sequence[CountedVote], quorum: float = 0.0
) -> Tally:
    """Scores per choice for ``votes`` (already verified and powered)."""
    if voting_type not in VOTING_TYPES:
        raise ValueError(f"unknown voting type {voting_type!r}")
    n = 3 if voting_type == "basic" else n_choices
    total = float(sum(v.power for v in votes))
    scores = [0.0] * n
    rounds: list[tuple[float, ...]] = []
    if voting_type in ("single-choice", "basic"):
        for v in votes:
            scores[int(v.choice) - 1] += v.power
    elif voting_type == "approval":
        for v in votes:
            for c in set(v.choice):
                scores[int(c) - 1] += v.power
    elif voting_type == "weighted":
        for v in votes:
            w = _weights(v.choice, n)
            s = sum(w)
            if s > 0:
                for i in range(n):
                    scores[i] += v.power * w[i] / s
    elif voting_type == "quadratic":
        roots = [0.0] * n
        for v in votes:
            w = _weights(v.choice, n)
            s = sum(w)
            if s > 0:
                for i in range(n):
                    roots[i] += math.sqrt(v.power * w[i] / s)
        squares = [r * r for r in roots]
        q = sum(squares)
        scores = [total * sq / q if q > 0 else 0.0 for sq in squares]
    else:  # ranked-choice: instant runoff
        remaining = set(range(1, n + 1))
        while True:
            current = [0.0] * n
            for v in votes:
                for c in v.choice:
                    if int(c) in remaining:
                        current[int(c) - 1] += v.power
                        break
            rounds.append(tuple(current))
            counted = sum(current)
            leader = max(remaining, key=lambda c: current[c - 1])
            if counted == 0 or current[leader - 1] > counted / 2 or len(remaining) <= 2:
                scores = current
                break
            weakest = min(sorted(remaining), key=lambda c: current[c - 1])
            remaining.discard(weakest)
    return Tally(voting_type, tuple(scores), total, quorum, tuple(rounds))
