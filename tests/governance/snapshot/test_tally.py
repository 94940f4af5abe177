"""Each Snapshot voting type on a hand-made vote set, worked out by hand."""

import pytest

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
