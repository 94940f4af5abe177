"""Snapshot votes as Snapshot's clients sign them: every Vote type set Snapshot's sequencer
accepts verifies, others are refused with the reason; windows, choices and replays are checked
the way Snapshot checks them.

Votes here are signed with eth-account from typed data built in this file, the way a wallet
signs what snapshot.js hands it, and posted as snapshot.js's envelope; feederdao only reads them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from eth_account import Account

from feederdao.governance.chain import connect
from feederdao.governance.deploy import contract
from feederdao.governance.errors import VoteRefused
from feederdao.governance.snapshot.message import VOTE_TYPE_SETS, SignedVote
from feederdao.governance.snapshot.votes import SnapshotProposal, check_vote, verify_votes

PROPOSAL_ID = "0x" + "ab" * 32
ALICE = Account.from_key("0x" + "11" * 32)
BOB = Account.from_key("0x" + "22" * 32)

# The Vote entries of snapshot.js's src/sign/hashedTypes.json: the type hashes Snapshot's
# sequencer accepts for votes (sha256 of the compact JSON of `types` without EIP712Domain).
SNAPSHOT_VOTE_HASHES = {
    "50084aae0fe117c83ddf855557dde35ae2872e9045443a15f72aa6c68ea3943b": "vote",
    "1dfe3863f6333a85581fb150d4ee77c95a6d026c518ca1b11c08ae1d98acd598": "vote-array",
    "1814c3dd303c5919ce488b924f92b9a42a0834972f514e55b1879fda48e67736": "vote-string",
    "258ddbad661d7530f23c4b945e847df99764b9e5e3bc6e127e41d07e4d0cc8b2": "vote",
    "4e064f8ce7a1aa3e95666117eaab5afbd515be5e94ea25ea037c9c803819ae69": "vote-array",
    "dc18975713da65e4874577c67f56aa674c9ecf61d3f75eadbde061e8924e423a": "vote-string",
    "43ad7ff95a9851492a09f8b3afdfa3ad2c28a10a371586d56fcc100f3ae8766c": "vote",
    "e96749dcafbe24c60e422fc27dc3eb47578d1981ec1dc5356995414656490892": "vote-array",
    "4ce05af3e66945ce30c03f1dd9d148a845d6491b0c9f8368acc211b321da7063": "vote-string",
    "c77a39b4525f80edda58f3653424fb334c34eb733cbd14fbeaeac7df883b12a1": "vote",
    "df8bea6fea4f124ef988d71c79c6aef5828f42a1456113324896414424ed6c58": "vote-array",
    "1f85be40d703b7136fc0cfdad361572514299b79cbb286e875165d38d1e4f084": "vote-string",
    "9f5632e3d8846ae2cde2366b77e4690dec595ec3b932b7713c905187d4fd181c": "vote",
    "f2ad79a1a9ff7bedacf8380f1e1e764d3f6094ad16eae974d1ef20df22e764bf": "vote-array",
    "e731b9f36a18d4ba17b453e27db4210d02a1433ae08c21f6b5ba57df6d4efcfe": "vote-string",
    "0982321a37996bab9519d2cbbed8625187ac39e6153bf5341dd66edfd25d28d4": "vote",
    "e557d7869559924326c5ab88fc19eca604694be2ff5df2e6b6443e1974b54525": "vote-array",
    "ed24a65f4e1c377d7d0176e51c4000506f04df0d07df7a229f9ed9e69aa0a2e0": "vote-string",
    "bfeb52fefb3cf93d06e6c146dd4a16e88f5ab1e9777bd95b0b6160cd2aba565a": "vote",
    "b7a980854cf2772e2c4b418df0ffee5add68c8f46926af9c92c9c01c79049324": "vote-array",
    "fdee6a1cfaa9aa1219c9d6117e5850b5ad2fecd91580ef60947ebaeda9da0fe6": "vote-string",
    "7b564612c125cd62c00c066ef4721fae1179a27238cd398b16f9813239fb248a": "vote",
    "078d9c91ec3321dd1f0de0c152676e8d37b585b7b7b2f37d49b28cb8db08f61c": "vote-array",
    "112ba2ecb692f822eeacb1f2961fddec432925abf1b14b6732937c1029a26516": "vote-string",
    "c2e77cabf40490a8419d35b47bee2dc9f7759f004d51404ba617e7c4b14eb4ec": "vote",
    "09635280c0ac5c801b997b20db5ef0bc71c1b27e01220d52e0d55e9f2612671d": "vote-array",
    "59b60a06b729bf429bb984f2ce93dd9be08e013fdc59bfb39493114ad31a79d3": "vote-string",
    "bc8c6814ddd5b9b6ef6415c656c9e7b9e05e029cc19b954b7160dc2928a12caf": "vote",
    "9cf05f3cc08b78654652fb2494d9b2beab8803b723cf1c36e1abaab7427f3823": "vote-array",
    "40bc49afc0f4084a08af0d768ff67816dde5c61550ff65008c835982a62c351e": "vote-string",
    "fb8fa9816cd42974e7f1af671aa548c8c458553364ed809e45042f141de8c0d5": "vote",
    "5f95ed849bafb034c37e340dc06ad6fa6985d674714cb602a6bf11119ffba2a1": "vote-array",
    "afc5911fd9722b3dc5e8b16a552997510644a52d2b229c3868fb1910b112416e": "vote-string",
    "e4b768874f191321f9a6460e15f87e98800c78c1e3104f9d4e443f2ed9b1c45e": "vote",
    "86c81555a3dda45aa7b151c574dc27f7402c23d9b1432156f1daa6c2e15f9891": "vote-array",
    "c0f418890817b3e6deb58fa3182bf8ed7619242666a9087eab28f27a6876e1da": "vote-string",
}
CHOICE_TYPE = {"vote": "uint32", "vote-array": "uint32[]", "vote-string": "string"}
VOTING_TYPE = {"vote": "single-choice", "vote-array": "approval", "vote-string": "weighted"}
CHOICE = {"vote": 2, "vote-array": [1, 3], "vote-string": '{"1":2,"3":1}'}
DOMAIN_FIELD_TYPES = {
    "name": "string",
    "version": "string",
    "chainId": "uint256",
    "verifyingContract": "address",
    "salt": "bytes32",
}


def snapshot_type_hash(types: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(types, separators=(",", ":")).encode()).hexdigest()


def vote_fields(kind: str, from_type: str, proposal_type: str, tail: tuple[str, ...]) -> list:  # type: ignore[type-arg]
    head = [
        ("from", from_type),
        ("space", "string"),
        ("timestamp", "uint64"),
        ("proposal", proposal_type),
        ("choice", CHOICE_TYPE[kind]),
    ]
    return [{"name": n, "type": t} for n, t in head + [(n, "string") for n in tail]]


def snapshot_sets() -> list[tuple[str, list]]:  # type: ignore[type-arg]
    """The Vote type sets snapshot.js's clients signed over the years: `from` as address with
    optional app / metadata / reason+app / reason+app+metadata, or (today) as string with all
    three; `proposal` as string or bytes32; one choice type per kind."""
    out = []
    for kind in CHOICE_TYPE:
        for proposal_type in ("string", "bytes32"):
            for tail in (
                (),
                ("app",),
                ("metadata",),
                ("reason", "app"),
                ("reason", "app", "metadata"),
            ):
                out.append((kind, vote_fields(kind, "address", proposal_type, tail)))
            out.append(
                (kind, vote_fields(kind, "string", proposal_type, ("reason", "app", "metadata")))
            )
    return out


def wallet_envelope(
    account: Any,
    fields: list,  # type: ignore[type-arg]
    choice: Any,
    *,
    domain: dict[str, Any] | None = None,
    timestamp: int = 1500,
    space: str = "feeder.eth",
    proposal: str = PROPOSAL_ID,
    extra: dict[str, Any] | None = None,
    with_domain_type: bool = False,
    voter: str | None = None,
) -> dict[str, Any]:
    """What snapshot.js posts: the wallet signs the typed data (eth_signTypedData_v4, the
    domain's type from the domain's fields), the envelope carries types without EIP712Domain."""
    domain = domain or {"name": "snapshot", "version": "0.1.4"}
    values = {
        "from": voter or account.address,
        "space": space,
        "timestamp": timestamp,
        "proposal": proposal,
        "choice": choice,
        "reason": "grid upkeep",
        "app": "snapshot",
        "metadata": "{}",
    }
    names = {f["name"] for f in fields}
    message = {k: v for k, v in values.items() if k in names} | (extra or {})
    domain_type = [
        {"name": k, "type": DOMAIN_FIELD_TYPES[k]} for k in DOMAIN_FIELD_TYPES if k in domain
    ]
    full = {
        "types": {"EIP712Domain": domain_type, "Vote": fields},
        "domain": domain,
        "primaryType": "Vote",
        "message": {k: v for k, v in message.items() if k in names},
    }
    signed = Account.sign_typed_data(account.key, full_message=full)
    types: dict[str, Any] = {"Vote": fields}
    if with_domain_type:
        types = {"EIP712Domain": domain_type, **types}
    return {
        "address": voter or account.address,
        "sig": "0x" + bytes(signed.signature).hex(),
        "data": {"domain": domain, "types": types, "message": message},
    }


def proposal(voting_type: str, n: int = 3, pid: str = PROPOSAL_ID) -> SnapshotProposal:
    return SnapshotProposal(
        pid,
        "feeder.eth",
        voting_type,
        tuple(f"option {i}" for i in range(1, n + 1)),
        1000,
        2000,
        42,
    )


def verdict(envelope: dict[str, Any], p: SnapshotProposal, now: float = 1600) -> str | None:
    return check_vote(SignedVote.from_envelope(envelope), p, arrived_at=now)


def current(choice: Any = 2, kind: str = "vote", **kw: Any) -> dict[str, Any]:
    """A vote as today's snapshot.js signs it (from and proposal as strings)."""
    return wallet_envelope(
        ALICE, vote_fields(kind, "string", "string", ("reason", "app", "metadata")), choice, **kw
    )


# -- the type sets ---------------------------------------------------------------------------


def test_the_accepted_type_sets_are_exactly_snapshots() -> None:
    rebuilt = {snapshot_type_hash({"Vote": f}): kind for kind, f in snapshot_sets()}
    assert rebuilt == SNAPSHOT_VOTE_HASHES  # the rule above spans Snapshot's list exactly
    assert {s.type_hash: s.kind for s in VOTE_TYPE_SETS} == SNAPSHOT_VOTE_HASHES


@pytest.mark.parametrize("chain_id", [None, 1])
@pytest.mark.parametrize(
    ("kind", "fields"),
    snapshot_sets(),
    ids=[
        f"{k}-{f[0]['type']}-{f[3]['type']}-{'+'.join(x['name'] for x in f[5:]) or 'bare'}"
        for k, f in snapshot_sets()
    ],
)
def test_every_type_set_snapshot_accepts_verifies(
    kind: str,
    fields: list,  # type: ignore[type-arg]
    chain_id: int | None,
) -> None:
    domain = {"name": "snapshot", "version": "0.1.4"}
    if chain_id is not None:
        domain["chainId"] = chain_id  # type: ignore[assignment]
    envelope = wallet_envelope(ALICE, fields, CHOICE[kind], domain=domain)
    vote = SignedVote.from_envelope(envelope)
    assert check_vote(vote, proposal(VOTING_TYPE[kind]), arrived_at=1600) is None
    assert vote.voter == ALICE.address and vote.timestamp == 1500


def test_an_envelope_that_lists_the_domain_type_verifies_too() -> None:
    envelope = current(
        domain={"name": "snapshot", "version": "0.1.4", "chainId": 5}, with_domain_type=True
    )
    assert verdict(envelope, proposal("single-choice")) is None


def test_a_current_snapshot_vote_on_a_0x_proposal_id_is_recovered_from_its_own_types() -> None:
    # snapshot.js signs `from` and `proposal` as strings, even for 0x ids
    envelope = current()
    assert envelope["data"]["types"]["Vote"][0] == {"name": "from", "type": "string"}
    vote = SignedVote.from_envelope(envelope)
    assert vote.signer() == ALICE.address
    assert verdict(envelope, proposal("single-choice")) is None


REFUSED_TYPES = {
    "reason and app swapped": [
        *vote_fields("vote", "address", "string", ())[:5],
        {"name": "app", "type": "string"},
        {"name": "reason", "type": "string"},
    ],
    "timestamp as uint256": [
        f if f["name"] != "timestamp" else {"name": "timestamp", "type": "uint256"}
        for f in vote_fields("vote", "address", "string", ("reason", "app", "metadata"))
    ],
    "an extra privacy field": [
        *vote_fields("vote", "string", "string", ("reason", "app", "metadata")),
        {"name": "privacy", "type": "string"},
    ],
    "from as string without the trailing fields": vote_fields("vote", "string", "string", ()),
    "no space": [f for f in vote_fields("vote", "address", "string", ()) if f["name"] != "space"],
}


@pytest.mark.parametrize("name", list(REFUSED_TYPES))
def test_type_sets_snapshot_refuses_are_refused(name: str) -> None:
    envelope = wallet_envelope(ALICE, REFUSED_TYPES[name], 2)  # genuinely signed by alice
    assert "wrong types" in (verdict(envelope, proposal("single-choice")) or "")


def test_extra_struct_types_and_other_domains_are_refused() -> None:
    envelope = current()
    envelope["data"]["types"]["Extra"] = [{"name": "x", "type": "string"}]
    assert "wrong types" in (verdict(envelope, proposal("single-choice")) or "")
    for domain, reason in (
        ({"name": "snapshot", "version": "0.1.3"}, "wrong domain"),
        ({"name": "Snapshot", "version": "0.1.4"}, "wrong domain"),
        ({"name": "snapshot", "version": "0.1.4", "chain": 1}, "fields EIP-712 does not define"),
    ):
        fields = vote_fields("vote", "string", "string", ("reason", "app", "metadata"))
        if "chain" in domain:
            # a wallet would not sign an unknown domain field; a forger could claim one
            envelope = wallet_envelope(ALICE, fields, 2)
            envelope["data"]["domain"] = domain
        else:
            envelope = wallet_envelope(ALICE, fields, 2, domain=domain)
        assert reason in (verdict(envelope, proposal("single-choice")) or ""), domain


def test_malformed_envelopes_are_refused_with_the_reason() -> None:
    with pytest.raises(VoteRefused, match="exactly address, sig and data"):
        SignedVote.from_envelope({"address": ALICE.address, "sig": "0x", "data": {}, "x": 1})
    with pytest.raises(VoteRefused, match="data.message must be an object"):
        SignedVote.from_envelope(
            {
                "address": ALICE.address,
                "sig": "0x",
                "data": {"domain": {}, "types": {}, "message": []},
            }
        )
    envelope = current()
    envelope["data"]["message"]["timestamp"] = "1500"
    assert "message.timestamp must be a uint64" in (
        verdict(envelope, proposal("single-choice")) or ""
    )
    envelope = current()
    envelope["address"] = BOB.address
    assert "aliases" in (verdict(envelope, proposal("single-choice")) or "")


def test_fields_outside_the_signed_types_are_not_read() -> None:
    fields = vote_fields("vote", "address", "string", ())  # signs no reason
    envelope = wallet_envelope(ALICE, fields, 2, extra={"reason": "added after signing"})
    vote = SignedVote.from_envelope(envelope)
    assert check_vote(vote, proposal("single-choice"), arrived_at=1600) is None
    assert vote.reason == ""


# -- signatures ------------------------------------------------------------------------------


def test_tampered_and_forged_votes_are_refused() -> None:
    p = proposal("single-choice")
    tampered = current()
    tampered["data"]["message"]["choice"] = 1
    assert "not by the voter" in (verdict(tampered, p) or "")
    # bob signs a vote in alice's name
    forged = wallet_envelope(
        BOB,
        vote_fields("vote", "string", "string", ("reason", "app", "metadata")),
        2,
        voter=ALICE.address,
    )
    assert f"signed by {BOB.address}, not by the voter {ALICE.address}" in (
        verdict(forged, p) or ""
    )
    short = current()
    short["sig"] = "0x1234"
    assert "signature has 2 bytes" in (verdict(short, p) or "")


def test_contract_wallet_votes_verify_through_erc1271() -> None:
    w3 = connect()
    owner = Account.from_key("0x" + "33" * 32)
    factory = contract(w3, "ContractWallet")
    tx = factory.constructor(owner.address).transact({"from": w3.eth.accounts[0]})
    wallet = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    fields = vote_fields("vote", "string", "string", ("reason", "app", "metadata"))
    p = proposal("single-choice")
    for signer, ok in ((owner, True), (BOB, False)):
        # the wallet is the voter; a key signs the typed data in its name
        envelope = wallet_envelope(signer, fields, 2, voter=wallet)
        reason = check_vote(SignedVote.from_envelope(envelope), p, w3, arrived_at=1600)
        if ok:
            assert reason is None
        else:
            assert "does not confirm the signature (ERC-1271)" in (reason or "")


# -- windows ---------------------------------------------------------------------------------


def test_the_window_is_checked_on_the_signed_time_and_on_arrival() -> None:
    p = proposal("single-choice")
    assert "outside the voting window [1000, 2000]" in (
        verdict(current(timestamp=2500), p, 2400) or ""
    )
    # signed inside the window, arriving after the end (having seen the result): refused
    assert "arrived at 2100, after voting closed at 2000" in (
        verdict(current(timestamp=1990), p, 2100) or ""
    )
    assert "before voting opens" in (verdict(current(timestamp=1000), p, 900) or "")
    # a timestamp more than five minutes ahead of the arrival
    assert "is in the future" in (verdict(current(timestamp=1900), p, 1500) or "")
    assert verdict(current(timestamp=1700), p, 1500) is None
    assert verdict(current(timestamp=2000), p, 2000) is None


def test_a_vote_signed_for_another_space_or_proposal_is_refused() -> None:
    p = proposal("single-choice")
    assert "signed for space 'other.eth'" in (verdict(current(space="other.eth"), p) or "")
    assert "signed for proposal" in (verdict(current(proposal="0x" + "cd" * 32), p) or "")
    assert verdict(current(proposal=PROPOSAL_ID.upper().replace("0X", "0x")), p) is None


# -- choices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "reason"),
    [
        ('{"1": NaN}', "not valid JSON: NaN is not JSON"),
        ('{"1": Infinity}', "not valid JSON: Infinity is not JSON"),
        ('{"1": -Infinity}', "not valid JSON: -Infinity is not JSON"),
        ('{"1": 1e400}', "too large for a number"),
        ('{"1": 1' + "0" * 400 + "}", "too large for a number"),
        ('{"1": 1, "1": 2}', "appears twice"),
        ('{"1": 1', "not valid JSON"),
        ('{"1": -1}', "must be a finite non-negative number"),
        ('{"1": true}', "is not a number"),
        ('{"1": "2"}', "is not a number"),
        ('{"4": 1}', "'4' is not a choice number in 1..3"),
        ('{"0": 1}', "'0' is not a choice number in 1..3"),
        ('{"01": 1}', "'01' is not a choice number in 1..3"),
        ('{"1": 0}', "gives no weight to any choice"),
        ('{"1": 1.5e308, "2": 1.5e308}', "add up to more than a number can hold"),
        ("{}", "must map choice numbers to weights"),
        ("[1]", "must map choice numbers to weights"),
    ],
)
def test_weighted_and_quadratic_choices_are_strict(choice: str, reason: str) -> None:
    for voting_type in ("weighted", "quadratic"):
        envelope = current(choice, kind="vote-string")
        assert reason in (verdict(envelope, proposal(voting_type)) or ""), voting_type


@pytest.mark.parametrize(
    ("voting_type", "kind", "choice", "reason"),
    [
        ("single-choice", "vote", 4, "must be one choice number in 1..3"),
        ("single-choice", "vote", 0, "must be one choice number in 1..3"),
        ("basic", "vote", 4, "must be one choice number in 1..3"),
        ("approval", "vote-array", [1, 1], "repeats a choice"),
        ("approval", "vote-array", [1, 9], "must be a list of choice numbers in 1..3"),
        ("ranked-choice", "vote-array", [1, 2], "must rank all 3 choices"),
        ("single-choice", "vote-array", [1], "must be one choice number"),
        ("weighted", "vote", 1, "must map choice numbers to weights"),
    ],
)
def test_choices_out_of_range_or_of_the_wrong_kind_are_refused(
    voting_type: str, kind: str, choice: Any, reason: str
) -> None:
    assert reason in (verdict(current(choice, kind=kind), proposal(voting_type)) or "")


def test_a_string_choice_is_read_as_snapshot_reads_it() -> None:
    # Snapshot parses a vote-string choice as JSON, whatever the voting type
    assert verdict(current("2", kind="vote-string"), proposal("single-choice")) is None
    assert verdict(current("[2, 3]", kind="vote-string"), proposal("approval")) is None


# -- replays and ordering --------------------------------------------------------------------


def test_replays_are_keyed_on_the_message_not_the_signature() -> None:
    p = proposal("single-choice")
    vote = SignedVote.from_envelope(current())
    # the same message with the other valid signature (s → n − s, v flipped)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    raw = vote.signature_bytes()
    s = int.from_bytes(raw[32:64], "big")
    twin = raw[:32] + (n - s).to_bytes(32, "big") + bytes([55 - raw[64]])
    malleated = SignedVote(vote.address, "0x" + twin.hex(), vote.domain, vote.types, vote.message)
    assert check_vote(malleated, p, arrived_at=1600) is None  # a valid signature on its own
    check = verify_votes([vote, malleated], p, now=1600)
    assert len(check.accepted) == 1
    assert [r for _, r in check.rejected] == [f"replayed: message {vote.id} was already received"]


def test_same_timestamp_votes_are_ordered_by_message_id_whatever_the_arrival() -> None:
    p = proposal("single-choice")
    a = SignedVote.from_envelope(current(1, timestamp=1500))
    b = SignedVote.from_envelope(current(2, timestamp=1500))
    winner = max(a, b, key=lambda v: v.id)
    for order in ([a, b], [b, a], [a, b, a], [b, a, b, a]):
        assert verify_votes(order, p, now=1600).accepted == [winner]


def test_a_later_vote_replaces_an_earlier_one() -> None:
    first = SignedVote.from_envelope(current(1, timestamp=1200))
    second = SignedVote.from_envelope(current(2, timestamp=1300))
    check = verify_votes([second, first], proposal("single-choice"), now=1600)
    assert check.accepted == [second]
    assert check.rejected == [(first, "replaced by the voter's later vote")]
