"""Snapshot vote signatures: genuine ones verify, everything else is refused with a reason."""

from __future__ import annotations

import dataclasses
import json

import pytest
from eth_account import Account

from feederdao.governance.chain import connect
from feederdao.governance.deploy import contract
from feederdao.governance.snapshot.votes import (
    SignedVote,
    SnapshotProposal,
    sign_vote,
    typed_data,
    verify_votes,
)

PROPOSAL_ID = "0x" + "ab" * 32
ALICE = Account.from_key("0x" + "11" * 32)
BOB = Account.from_key("0x" + "22" * 32)


def proposal(voting_type: str, n: int = 3) -> SnapshotProposal:
    return SnapshotProposal(
        PROPOSAL_ID,
        "feeder.eth",
        voting_type,
        tuple(f"option {i}" for i in range(1, n + 1)),
        1000,
        2000,
        42,
    )


def signed(account, voting_type: str, choice: object, **kw) -> SignedVote:  # type: ignore[no-untyped-def]
    vote = SignedVote(
        account.address,
        kw.pop("space", "feeder.eth"),
        kw.pop("timestamp", 1500),
        kw.pop("proposal", PROPOSAL_ID),
        choice,
        "",
        **kw,
    )
    return sign_vote(account.key, vote, voting_type)


@pytest.mark.parametrize(
    ("voting_type", "choice"),
    [
        ("single-choice", 2),
        ("basic", 3),
        ("approval", [1, 3]),
        ("ranked-choice", [3, 1, 2]),
        ("weighted", {"1": 2, "3": 1}),
        ("quadratic", json.dumps({"2": 1})),
    ],
)
def test_each_choice_type_verifies(voting_type: str, choice: object) -> None:
    vote = signed(ALICE, voting_type, choice, reason="grid upkeep")
    check = verify_votes([vote], proposal(voting_type), now=1600)
    assert check.accepted == [vote], check.rejected


def test_proposal_ids_that_are_not_hashes_are_strings() -> None:
    p = dataclasses.replace(proposal("single-choice"), id="QmNotAHash")
    vote = signed(ALICE, "single-choice", 1, proposal="QmNotAHash")
    assert typed_data(vote, "single-choice")["types"]["Vote"][3]["type"] == "string"
    assert verify_votes([vote], p, now=1600).accepted == [vote]


def reasons(votes: list[SignedVote], p: SnapshotProposal) -> list[str]:
    return [r for _, r in verify_votes(votes, p, now=1600).rejected]


def test_tampered_wrong_domain_wrong_space_expired_replayed() -> None:
    p = proposal("single-choice")
    good = signed(ALICE, "single-choice", 1)
    tampered = dataclasses.replace(good, choice=2)
    assert "not by the voter" in reasons([tampered], p)[0]
    # bob signs a vote in alice's name
    forged = sign_vote(BOB.key, dataclasses.replace(good, signature=""), "single-choice")
    assert f"signed by {BOB.address}, not by the voter {ALICE.address}" in reasons([forged], p)[0]
    wrong_space = signed(ALICE, "single-choice", 1, space="other.eth")
    assert "signed for space 'other.eth'" in reasons([wrong_space], p)[0]
    late = signed(ALICE, "single-choice", 1, timestamp=2500)
    assert "outside the voting window [1000, 2000]" in reasons([late], p)[0]
    other = signed(ALICE, "single-choice", 1, proposal="0x" + "cd" * 32)
    assert "signed for proposal" in reasons([other], p)[0]
    assert reasons([good, good], p) == ["replayed: this signature was already counted"]


def test_a_signature_over_another_domain_does_not_verify() -> None:
    from eth_account.messages import encode_typed_data

    vote = SignedVote(ALICE.address, "feeder.eth", 1500, PROPOSAL_ID, 1, "")
    data = typed_data(vote, "single-choice")
    data["domain"]["version"] = "0.1.3"
    sig = Account.sign_message(encode_typed_data(full_message=data), ALICE.key).signature
    vote = dataclasses.replace(vote, signature="0x" + bytes(sig).hex())
    assert "not by the voter" in reasons([vote], proposal("single-choice"))[0]


@pytest.mark.parametrize(
    ("voting_type", "choice", "message"),
    [
        ("single-choice", 4, "must be one choice number in 1..3"),
        ("approval", [1, 1], "repeats a choice"),
        ("ranked-choice", [1, 2], "must rank all 3 choices"),
        ("weighted", {"5": 1}, "not a choice number"),
        ("weighted", {"1": -1}, "non-negative"),
    ],
)
def test_malformed_choices_are_refused(voting_type: str, choice: object, message: str) -> None:
    vote = signed(ALICE, voting_type, choice)
    assert message in reasons([vote], proposal(voting_type))[0]


def test_a_later_vote_replaces_an_earlier_one() -> None:
    first = signed(ALICE, "single-choice", 1, timestamp=1200)
    second = signed(ALICE, "single-choice", 2, timestamp=1300)
    check = verify_votes([second, first], proposal("single-choice"), now=1600)
    assert check.accepted == [second]
    assert check.rejected == [(first, "replaced by the voter's later vote")]


def test_contract_wallet_votes_verify_through_erc1271() -> None:
    w3 = connect()
    owner = Account.from_key("0x" + "33" * 32)
    factory = contract(w3, "ContractWallet")
    tx = factory.constructor(owner.address).transact({"from": w3.eth.accounts[0]})
    wallet = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    vote = SignedVote(wallet, "feeder.eth", 1500, PROPOSAL_ID, 2, "")
    by_owner = dataclasses.replace(
        vote, signature=sign_vote(owner.key, vote, "single-choice").signature
    )
    p = proposal("single-choice")
    assert verify_votes([by_owner], p, w3, now=1600).accepted == [by_owner]
    by_stranger = dataclasses.replace(
        vote, signature=sign_vote(BOB.key, vote, "single-choice").signature
    )
    (_, reason), *_ = verify_votes([by_stranger], p, w3, now=1600).rejected
    assert "does not confirm the signature (ERC-1271)" in reason
