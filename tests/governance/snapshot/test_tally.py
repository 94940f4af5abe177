"""Each Snapshot voting type on a hand-made vote set, worked out by hand."""

import math

import pytest

from feederdao.governance.errors import GovernanceError
from feederdao.governance.snapshot.tally import CountedVote, tally


def v(voter: str, choice: object, power: float) -> CountedVote:
    return CountedVote(voter, choice, power)


def test_single_choice() -> None:
    t = tally("single-choice", 2, [v("a", 1, 10), v("b", 2, 5), v("c", 1, 2)])
    assert t.scores == (12, 5) and t.winner == 1 and t.total_power == 17


def test_approval_gives_full_power_to_each_approved_choice() -> None:
    t = tally("approval", 3, [v("a", [1, 2], 10), v("b", [2], 5)])
    assert t.scores == (10, 15, 0) and t.winner == 2


def test_weighted_splits_power_by_weight() -> None:
    # a: 8 × (1/4, 3/4) = (2, 6); b: 4 to choice 2
    t = tally("weighted", 2, [v("a", {"1": 1, "2": 3}, 8), v("b", {"2": 1}, 4)])
    assert t.scores == pytest.approx((2, 10))


def test_quadratic() -> None:
    # roots: choice 1 √4 + √(2·½) = 3, choice 2 √1 + √(2·½) = 2; squares 9 and 4,
    # rescaled to the 7 power cast: 7·9/13 and 7·4/13
    t = tally(
        "quadratic", 2, [v("a", {"1": 1}, 4), v("b", {"2": 1}, 1), v("c", {"1": 1, "2": 1}, 2)]
    )
    assert t.scores == pytest.approx((63 / 13, 28 / 13))
    assert sum(t.scores) == pytest.approx(7)


def test_ranked_choice_instant_runoff() -> None:
    # round 1: 4, 3, 2 of 9 — no majority; choice 3 drops out and c's vote moves to choice 2:
    # round 2: 4, 5 — choice 2 wins
    t = tally(
        "ranked-choice", 3, [v("a", [1, 2, 3], 4), v("b", [2, 3, 1], 3), v("c", [3, 2, 1], 2)]
    )
    assert t.rounds == ((4, 3, 2), (4, 5, 0))
    assert t.scores == (4, 5, 0) and t.winner == 2


def test_basic_with_quorum() -> None:
    votes = [v("a", 1, 6), v("b", 2, 3), v("c", 3, 2)]
    t = tally("basic", 3, votes, quorum=10)
    assert t.scores == (6, 3, 2) and t.winner == 1 and t.quorum_reached
    assert not tally("basic", 3, votes[:2], quorum=10).quorum_reached


@pytest.mark.parametrize(
    ("voting_type", "choice", "power"),
    [
        ("weighted", {"1": math.nan}, 1.0),
        ("quadratic", {"1": math.inf}, 1.0),
        ("weighted", {"1": -1.0, "2": 2.0}, 1.0),
        ("single-choice", 0, 1.0),  # would count for the last choice through index −1
        ("approval", [3], 1.0),
        ("single-choice", 1, math.nan),
        ("single-choice", 1, -5.0),
    ],
)
def test_an_invalid_vote_is_refused_and_never_voids_the_tally(
    voting_type: str, choice: object, power: float
) -> None:
    good = [v("a", {"1": 1} if voting_type in ("weighted", "quadratic") else 1, 10)]
    if voting_type == "approval":
        good = [v("a", [1], 10)]
    assert tally(voting_type, 2, good).winner == 1
    with pytest.raises(GovernanceError, match="vote of bad"):
        tally(voting_type, 2, [*good, v("bad", choice, power)])
