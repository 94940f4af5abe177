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

Every vote's choice and power are checked before anything is counted (:func:`choice_problem`):
one malformed vote is refused with its reason and never voids the tally.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from feederdao.governance.errors import GovernanceError

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


_CHOICE_KEY = re.compile(r"[1-9][0-9]*")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def choice_problem(voting_type: str, n: int, choice: Any) -> str | None:
    """Why ``choice`` (decoded: an int, a list of ints, or a mapping of choice numbers to
    weights) is not a valid vote for the voting type with ``n`` choices (None: it is).

    As Snapshot: single-choice and basic take one choice number; approval a list without
    repeats (empty approves nothing); ranked-choice every choice once. Weighted and quadratic
    take an object whose keys are choice numbers ("1".."n", written plainly) and whose weights
    are finite non-negative numbers, not all zero.
    """

    def index_ok(c: Any) -> bool:
        return _is_int(c) and 1 <= c <= n

    if voting_type not in VOTING_TYPES:
        return f"unknown voting type {voting_type!r}"
    if voting_type in ("single-choice", "basic"):
        limit = 3 if voting_type == "basic" else n
        if not (_is_int(choice) and 1 <= choice <= limit):
            return f"choice {choice!r} must be one choice number in 1..{limit}"
        return None
    if voting_type in ("approval", "ranked-choice"):
        if not isinstance(choice, list) or not all(index_ok(c) for c in choice):
            return f"choice {choice!r} must be a list of choice numbers in 1..{n}"
        if len(set(choice)) != len(choice):
            return f"choice {choice!r} repeats a choice"
        if voting_type == "ranked-choice" and sorted(choice) != list(range(1, n + 1)):
            return f"a ranked-choice vote must rank all {n} choices, got {choice!r}"
        return None
    if not isinstance(choice, dict) or not choice:
        return f"choice {choice!r} must map choice numbers to weights"
    for key, value in choice.items():
        if not isinstance(key, str) or not _CHOICE_KEY.fullmatch(key) or not int(key) <= n:
            return f"choice {choice!r}: {key!r} is not a choice number in 1..{n}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"choice {choice!r}: weight {value!r} is not a number"
        try:
            weight = float(value)
        except OverflowError:
            weight = math.inf
        if not math.isfinite(weight) or weight < 0:
            return f"choice {choice!r}: weight {value!r} must be a finite non-negative number"
    total = sum(float(v) for v in choice.values())
    if not math.isfinite(total):
        return f"choice {choice!r}: the weights add up to more than a number can hold"
    if total <= 0:
        return f"choice {choice!r} gives no weight to any choice"
    return None


def _weights(choice: dict[str, float], n: int) -> list[float]:
    w = [0.0] * n
    for key, value in choice.items():
        w[int(key) - 1] += float(value)
    return w


def tally(
    voting_type: str, n_choices: int, votes: Sequence[CountedVote], quorum: float = 0.0
) -> Tally:
    """Scores per choice for ``votes`` (already verified and powered); a vote whose choice or
    power is not valid is an error, never counted."""
    if voting_type not in VOTING_TYPES:
        raise GovernanceError(f"unknown voting type {voting_type!r}")
    n = 3 if voting_type == "basic" else n_choices
    for v in votes:
        problem = choice_problem(voting_type, n, v.choice)
        if problem:
            raise GovernanceError(f"vote of {v.voter} cannot be counted: {problem}")
        if isinstance(v.power, bool) or not math.isfinite(v.power) or v.power < 0:
            raise GovernanceError(f"vote of {v.voter} has the voting power {v.power!r}")
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
