"""Self-hosted Snapshot-format voting on a feederdao proposal, and what a pass leads to."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from feederdao.governance.envelope import SafetyEnvelope
from feederdao.governance.snapshot.collect import VoteBox, VoteRefused
from feederdao.governance.snapshot.votes import SignedVote, SnapshotProposal, sign_vote
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


def vote(dev: Dev, who: str, choice: int, box: VoteBox) -> SignedVote:
    unsigned = SignedVote(who, "feeder.eth", box.proposal.start + 50, PID, choice, "")
    return sign_vote(keys(dev)[who], unsigned, "basic")


def test_votes_are_verified_stored_and_tallied(dev: Dev, tmp_path: Path) -> None:
    box = box_for(dev)
    path = tmp_path / "box.json"
    for who, choice in ((dev.alice, 1), (dev.bob, 2), (dev.carol, 1)):
        box.submit(vote(dev, who, choice, box), dev.w3)
        box.save(path)
    tampered = dataclasses.replace(vote(dev, dev.dave, 1, box), choice=2)
    with pytest.raises(VoteRefused, match="not by the voter"):
        box.submit(tampered, dev.w3)
    with pytest.raises(VoteRefused, match="replayed"):
        box.submit(box.votes[0], dev.w3)
    box = VoteBox.load(path)  # what was accepted survived; the refusals left no trace
    assert [v.voter for v in box.votes] == [dev.alice, dev.bob, dev.carol]
    result = box.close(dev.w3)
    assert result.scores == (400_001, 300_000, 0) and result.winner == 1


def test_a_pass_becomes_a_governor_proposal_and_offchain_values_apply_in_envelope(
    dev: Dev,
) -> None:
    box = box_for(dev)
    box.submit(vote(dev, dev.alice, 1, box), dev.w3)
    box.submit(vote(dev, dev.bob, 2, box), dev.w3)
    env = SafetyEnvelope.from_dict({"parameters": {"network_fee_eur_per_mwh": {"max": 10}}})
    outcome = enact(
        box,
        dev.w3,
        dev.dao,
        dev.alice,
        offchain=frozenset({"network_fee_eur_per_mwh"}),
        envelope=env,
    )
    assert outcome.passed and outcome.applied == {"network_fee_eur_per_mwh": 5.0}
    assert outcome.governor_proposal_id is not None
    created = dev.dao.proposal(outcome.governor_proposal_id)
    assert created.changes == (("v_max_pu", 1.04),)
    assert f"Snapshot proposal {PID} in feeder.eth passed (For 400,000.00" in created.description
    assert dev.dao.state(outcome.governor_proposal_id) == "Pending"


def test_a_rejected_proposal_changes_nothing(dev: Dev) -> None:
    box = box_for(dev)
    box.submit(vote(dev, dev.alice, 2, box), dev.w3)
    outcome = enact(box, dev.w3, dev.dao, dev.alice)
    assert not outcome.passed and outcome.governor_proposal_id is None
