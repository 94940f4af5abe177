"""Self-hosted Snapshot-format voting on a feederdao proposal, and what a pass leads to."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.errors import GovernanceError
from feederdao.governance.snapshot.collect import VoteBox, VoteRefused, passed
from feederdao.governance.snapshot.message import SignedVote, sign_vote
from feederdao.governance.snapshot.tally import Tally
from feederdao.governance.snapshot.votes import SnapshotProposal
from feederdao.workflows.snapshot import enact
from tests.governance.conftest import Dev

PID = "0x" + "5a" * 32


def keys(dev: Dev) -> dict[str, str]:
    backend = dev.w3.provider.ethereum_tester.backend  # type: ignore[attr-defined]
    return {a: str(k) for a, k in zip(dev.w3.eth.accounts, backend.account_keys, strict=False)}


def box_for(dev: Dev) -> VoteBox:
    now = dev.w3.eth.get_block("latest")["timestamp"]
    proposal = SnapshotProposal(
        PID,
        "feeder.eth",
        "basic",
        ("For", "Against", "Abstain"),
        now - 100,
        now + 1000,
        dev.w3.eth.block_number,
        quorum=100_000,
        strategies=({"name": "erc20-votes", "params": {"address": dev.addresses.token}},),
    )
    return VoteBox(proposal, {"v_max_pu": 1.04, "network_fee_eur_per_mwh": 5.0})


def vote(dev: Dev, who: str, choice: int, box: VoteBox, at: int = 50) -> SignedVote:
    return sign_vote(
        keys(dev)[who],
        space="feeder.eth",
        proposal=PID,
        choice=choice,
        voting_type="basic",
        timestamp=box.proposal.start + at,
    )


def arrival(box: VoteBox) -> float:
    return box.proposal.start + 60


def test_votes_are_verified_stored_and_tallied(dev: Dev, tmp_path: Path) -> None:
    box = box_for(dev)
    path = tmp_path / "box.json"
    for who, choice in ((dev.alice, 1), (dev.bob, 2), (dev.carol, 1)):
        box.submit(vote(dev, who, choice, box), dev.w3, arrival(box))
        box.save(path)
    genuine = vote(dev, dev.dave, 1, box)
    tampered = dataclasses.replace(genuine, message={**genuine.message, "choice": 2})
    with pytest.raises(VoteRefused, match="not by the voter"):
        box.submit(tampered, dev.w3, arrival(box))
    with pytest.raises(VoteRefused, match="replayed"):
        box.submit(box.votes[0], dev.w3, arrival(box))
    box = VoteBox.load(path)  # what was accepted survived; the refusals left no trace
    assert [v.voter for v in box.votes] == [dev.alice, dev.bob, dev.carol]
    result = box.close(dev.w3, box.proposal.end)
    assert result.scores == (400_001, 300_000, 0) and result.winner == 1


def test_a_vote_arriving_after_the_end_is_refused(dev: Dev) -> None:
    box = box_for(dev)
    end = box.proposal.end
    late = vote(dev, dev.bob, 2, box, at=1090)  # signed 10 s before the end
    with pytest.raises(VoteRefused, match=f"after voting closed at {end}"):
        box.submit(late, dev.w3, end + 30)
    assert box.votes == []


def test_closing_early_is_an_override_that_is_recorded(dev: Dev, tmp_path: Path) -> None:
    box = box_for(dev)
    box.submit(vote(dev, dev.alice, 1, box), dev.w3, arrival(box))
    early = box.proposal.end - 500
    with pytest.raises(GovernanceError, match="closing before the end is an operator override"):
        box.close(dev.w3, early)
    assert box.closure is None
    box.close(dev.w3, early, early_by="DSO control room", early_reason="storm: freeze changes")
    path = tmp_path / "box.json"
    box.save(path)
    closure = VoteBox.load(path).closure
    assert closure is not None and closure.early
    assert (closure.by, closure.reason, closure.at) == (
        "DSO control room",
        "storm: freeze changes",
        early,
    )
    # a vote signed before the close but arriving after it is refused
    with pytest.raises(VoteRefused, match="the box was closed early"):
        box.submit(vote(dev, dev.bob, 2, box), dev.w3, early + 1)


def test_same_timestamp_votes_cannot_be_flipped_by_replaying_them(dev: Dev) -> None:
    box = box_for(dev)
    first = vote(dev, dev.alice, 1, box, at=50)
    second = vote(dev, dev.alice, 2, box, at=50)  # the same second, another choice
    winner, loser = sorted((first, second), key=lambda v: v.id, reverse=True)
    box.submit(loser, dev.w3, arrival(box))
    box.submit(winner, dev.w3, arrival(box))
    assert box.votes == [winner]
    for attempt in (loser, winner, loser):  # anyone replays what they saw
        with pytest.raises(VoteRefused):
            box.submit(attempt, dev.w3, arrival(box))
    assert box.votes == [winner]
    # the other arrival order ends the same way
    other = box_for(dev)
    other.submit(winner, dev.w3, arrival(other))
    with pytest.raises(VoteRefused, match="greater message id"):
        other.submit(loser, dev.w3, arrival(other))
    assert other.votes == [winner]


@pytest.mark.parametrize(
    ("scores", "quorum", "expected"),
    [
        ((10.0, 5.0, 20.0), 30.0, True),  # For beats Against; abstentions count for quorum
        ((10.0, 5.0, 20.0), 31.0, False),  # For + Abstain short of quorum
        ((40.0, 10.0, 0.0), 45.0, False),  # Against does not count towards quorum
        ((10.0, 10.0, 50.0), 10.0, False),  # a tie is no majority
        ((0.0, 0.0, 50.0), 10.0, False),
    ],
)
def test_passing_follows_the_governor_counting(
    scores: tuple[float, float, float], quorum: float, expected: bool
) -> None:
    assert passed(Tally("basic", scores, sum(scores), quorum)) is expected


def test_a_pass_becomes_a_governor_proposal_and_offchain_values_apply_in_envelope(
    dev: Dev,
) -> None:
    box = box_for(dev)
    box.submit(vote(dev, dev.alice, 1, box), dev.w3, arrival(box))
    box.submit(vote(dev, dev.bob, 2, box), dev.w3, arrival(box))
    env = SafetyEnvelope.from_dict({"parameters": {"network_fee_eur_per_mwh": {"max": 10}}})
    outcome = enact(
        box,
        dev.w3,
        dev.dao,
        dev.alice,
        offchain=frozenset({"network_fee_eur_per_mwh"}),
        envelope=env,
        now=box.proposal.end,
    )
    assert outcome.passed and outcome.applied == {"network_fee_eur_per_mwh": 5.0}
    assert outcome.governor_proposal_id is not None
    created = dev.dao.proposal(outcome.governor_proposal_id)
    assert created.changes == (("v_max_pu", 1.04),)
    assert f"Snapshot proposal {PID} in feeder.eth passed (For 400,000.00" in created.description
    assert dev.dao.state(outcome.governor_proposal_id) == "Pending"


def test_an_early_close_is_named_in_the_governor_proposal(dev: Dev) -> None:
    box = box_for(dev)
    box.submit(vote(dev, dev.alice, 1, box), dev.w3, arrival(box))
    outcome = enact(
        box,
        dev.w3,
        dev.dao,
        dev.alice,
        now=arrival(box) + 1,
        early_by="operator on duty",
        early_reason="the whole DAO voted",
    )
    assert outcome.governor_proposal_id is not None
    description = dev.dao.proposal(outcome.governor_proposal_id).description
    assert "closed early at" in description
    assert "by operator on duty: the whole DAO voted" in description


def test_a_rejected_proposal_changes_nothing(dev: Dev) -> None:
    box = box_for(dev)
    box.submit(vote(dev, dev.alice, 2, box), dev.w3, arrival(box))
    outcome = enact(box, dev.w3, dev.dao, dev.alice, now=box.proposal.end)
    assert not outcome.passed and outcome.governor_proposal_id is None
