"""Snapshot vote messages (EIP-712) and their verification.

The typed data is Snapshot's: domain ``{name: "snapshot", version: "0.1.4"}`` and a ``Vote``
struct of ``from, space, timestamp, proposal, choice, reason, app, metadata``. The ``proposal``
is ``bytes32`` for 0x-prefixed 32-byte ids and ``string`` otherwise; ``choice`` is ``uint32``
(single-choice, basic), ``uint32[]`` (approval, ranked-choice) or ``string`` (a JSON object of
weights for weighted and quadratic). A vote is accepted only if the signature recovers to
``from`` (or the ``from`` contract confirms it through ERC-1271), and space, proposal, timestamp
window and choice format are right; a replayed signature is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3

DOMAIN = {"name": "snapshot", "version": "0.1.4"}
ERC1271_MAGIC = bytes.fromhex("1626ba7e")
ERC1271_ABI = [
    {
        "name": "isValidSignature",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "outputs": [{"name": "", "type": "bytes4"}],
    }
]


@dataclass(frozen=True)
class SnapshotProposal:
    """What a vote is checked against."""

    id: str
    space: str
    voting_type: str
    choices: tuple[str, ...]
    start: int
    end: int
    snapshot_block: int
    quorum: float = 0.0
    strategies: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class SignedVote:
    """A vote message as Snapshot signs it, with its signature."""

    voter: str
    space: str
    timestamp: int
    proposal: str
    choice: Any
    signature: str
    reason: str = ""
    app: str = ""
    metadata: str = "{}"


def _choice_type(voting_type: str) -> str:
    if voting_type in ("approval", "ranked-choice"):
        return "uint32[]"
    if voting_type in ("weighted", "quadratic"):
        return "string"
    return "uint32"


def typed_data(vote: SignedVote, voting_type: str) -> dict[str, Any]:
    """The EIP-712 typed data of ``vote`` for a proposal of ``voting_type``."""
    is_hash = vote.proposal.startswith("0x") and len(vote.proposal) == 66
    choice = vote.choice
    if voting_type in ("weighted", "quadratic") and not isinstance(choice, str):
        choice = json.dumps(choice, separators=(",", ":"))
    return {
        "domain": dict(DOMAIN),
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
            ],
            "Vote": [
                {"name": "from", "type": "address"},
                {"name": "space", "type": "string"},
                {"name": "timestamp", "type": "uint64"},
                {"name": "proposal", "type": "bytes32" if is_hash else "string"},
                {"name": "choice", "type": _choice_type(voting_type)},
                {"name": "reason", "type": "string"},
                {"name": "app", "type": "string"},
                {"name": "metadata", "type": "string"},
            ],
        },
        "primaryType": "Vote",
        "message": {
            "from": Web3.to_checksum_address(vote.voter),
            "space": vote.space,
            "timestamp": int(vote.timestamp),
            "proposal": bytes.fromhex(vote.proposal[2:]) if is_hash else vote.proposal,
            "choice": choice,
            "reason": vote.reason,
            "app": vote.app,
            "metadata": vote.metadata,
        },
    }


def sign_vote(private_key: str, vote: SignedVote, voting_type: str) -> SignedVote:
    """Sign ``vote`` (its ``signature`` ignored) as a Snapshot wallet would."""
    message = encode_typed_data(full_message=typed_data(vote, voting_type))
    signed = Account.sign_message(message, private_key)
    return SignedVote(
        vote.voter,
        vote.space,
        vote.timestamp,
        vote.proposal,
        vote.choice,
        "0x" + bytes(signed.signature).hex(),
        vote.reason,
        vote.app,
        vote.metadata,
    )


def vote_digest(vote: SignedVote, voting_type: str) -> bytes:
    """The EIP-712 digest a contract wallet checks (ERC-1271)."""
    message = encode_typed_data(full_message=typed_data(vote, voting_type))
    return bytes(Web3.keccak(b"\x19" + message.version + message.header + message.body))


def choice_problem(voting_type: str, n: int, choice: Any) -> str | None:
    """Why ``choice`` is malformed for the voting type (None: it is fine)."""

    def index_ok(c: Any) -> bool:
        return isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= n

    if voting_type in ("single-choice", "basic"):
        limit = 3 if voting_type == "basic" else n
        if not (isinstance(choice, int) and not isinstance(choice, bool) and 1 <= choice <= limit):
            return f"choice {choice!r} must be one choice number in 1..{limit}"
        return None
    if voting_type in ("approval", "ranked-choice"):
        if not isinstance(choice, list) or not choice or not all(index_ok(c) for c in choice):
            return f"choice {choice!r} must be a non-empty list of choice numbers in 1..{n}"
        if len(set(choice)) != len(choice):
            return f"choice {choice!r} repeats a choice"
        if voting_type == "ranked-choice" and sorted(choice) != list(range(1, n + 1)):
            return f"a ranked-choice vote must rank all {n} choices, got {choice!r}"
        return None
    weights = choice
    if isinstance(choice, str):
        try:
            weights = json.loads(choice)
        except json.JSONDecodeError:
            return f"choice {choice!r} is not a JSON object of weights"
    if not isinstance(weights, dict) or not weights:
        return f"choice {choice!r} must map choice numbers to weights"
    for key, value in weights.items():
        if not str(key).isdigit() or not 1 <= int(key) <= n:
            return f"choice {choice!r}: {key!r} is not a choice number in 1..{n}"
        if not isinstance(value, int | float) or value < 0:
            return f"choice {choice!r}: weight {value!r} must be a non-negative number"
    if sum(float(v) for v in weights.values()) <= 0:
        return f"choice {choice!r} gives no weight to any choice"
    return None


@dataclass
class VoteCheck:
    accepted: list[SignedVote] = field(default_factory=list)
    rejected: list[tuple[SignedVote, str]] = field(default_factory=list)


def verify_votes(
    votes: Iterable[SignedVote],
    proposal: SnapshotProposal,
    w3: Web3 | None = None,
    now: float | None = None,
) -> VoteCheck:
    """Accept the votes that are genuine and well-formed for ``proposal``; every refusal carries
    its reason. A voter's later vote replaces an earlier one (as on Snapshot)."""
    check = VoteCheck()
    seen_signatures: set[str] = set()
    latest: dict[str, SignedVote] = {}
    now = time.time() if now is None else now
    for vote in sorted(votes, key=lambda v: v.timestamp):
        reason = _problem(vote, proposal, w3, now, seen_signatures)
        seen_signatures.add(vote.signature.lower())
        if reason:
            check.rejected.append((vote, reason))
            continue
        key = vote.voter.lower()
        if key in latest:
            check.rejected.append((latest[key], "replaced by the voter's later vote"))
        latest[key] = vote
    check.accepted = list(latest.values())
    return check


def _problem(
    vote: SignedVote, p: SnapshotProposal, w3: Web3 | None, now: float, seen: set[str]
) -> str | None:
    if vote.signature.lower() in seen:
        return "replayed: this signature was already counted"
    if vote.space != p.space:
        return f"signed for space {vote.space!r}, not {p.space!r}"
    if vote.proposal.lower() != p.id.lower():
        return f"signed for proposal {vote.proposal}, not {p.id}"
    if not p.start <= vote.timestamp <= p.end:
        return f"timestamp {vote.timestamp} is outside the voting window [{p.start}, {p.end}]"
    if vote.timestamp > now + 60:
        return f"timestamp {vote.timestamp} is in the future"
    problem = choice_problem(p.voting_type, len(p.choices), vote.choice)
    if problem:
        return problem
    try:
        message = encode_typed_data(full_message=typed_data(vote, p.voting_type))
        signer = Account.recover_message(message, signature=vote.signature)
    except Exception as exc:  # malformed signature or message
        return f"signature does not decode: {exc}"
    if signer.lower() == vote.voter.lower():
        return None
    if w3 is not None and w3.eth.get_code(Web3.to_checksum_address(vote.voter)):
        wallet = w3.eth.contract(address=Web3.to_checksum_address(vote.voter), abi=ERC1271_ABI)
        digest = vote_digest(vote, p.voting_type)
        try:
            magic = wallet.functions.isValidSignature(
                digest, bytes.fromhex(vote.signature.removeprefix("0x"))
            ).call()
        except Exception as exc:
            return f"the contract wallet {vote.voter} refused the signature: {exc}"
        if bytes(magic) == ERC1271_MAGIC:
            return None
        return f"the contract wallet {vote.voter} does not confirm the signature (ERC-1271)"
    return f"signed by {signer}, not by the voter {vote.voter}"
