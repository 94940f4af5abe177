"""Snapshot's vote message: the signed envelope a Snapshot client posts, and which ones Snapshot
accepts.

snapshot.js signs a vote with ethers (``_signTypedData(domain, types, message)``) and posts the
envelope ``{"address": signer, "sig": signature, "data": {"domain", "types", "message"}}`` to
Snapshot's sequencer. The sequencer

* requires the domain ``{name: "snapshot", version: "0.1.4"}``; wallets may add ``chainId``, and
  ethers accepts the other EIP-712 domain fields (``verifyingContract``, ``salt``) too; ethers
  derives the domain's own type from the fields present, in the standard order, so an
  ``EIP712Domain`` entry in ``types`` is dropped;
* accepts the message only if the SHA-256 of the compact JSON of the remaining ``types`` is one
  of the hashes in snapshot.js's ``hashedTypes.json``. For votes these are 36 type sets:
  ``from`` as ``address`` (older clients) or ``string`` (snapshot.js today), ``proposal`` as
  ``bytes32`` or ``string``, ``choice`` as ``uint32`` (*vote*), ``uint32[]`` (*vote-array*) or a
  JSON ``string`` (*vote-string*), and the optional trailing fields as clients added them over
  the years;
* names each message by its EIP-712 digest and refuses a digest it has already stored.

:data:`VOTE_TYPE_SETS` is that list; :class:`SignedVote` is the envelope; what makes a vote
count for a proposal is in :mod:`feederdao.governance.snapshot.votes`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from web3 import Web3

from feederdao.governance.errors import VoteRefused

DOMAIN_NAME = "snapshot"
DOMAIN_VERSION = "0.1.4"
# EIP-712 domain fields, in the order ethers encodes them when present
DOMAIN_FIELDS = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
)
MAX_METADATA_CHARS = 2000  # the sequencer refuses longer metadata
MAX_ENVELOPE_CHARS = 100_000  # and longer messages
FUTURE_DRIFT_S = 300  # and timestamps further ahead of its clock

ChoiceKind = Literal["vote", "vote-array", "vote-string"]
CHOICE_TYPES: dict[ChoiceKind, str] = {
    "vote": "uint32",
    "vote-array": "uint32[]",
    "vote-string": "string",
}


def types_hash(types: Mapping[str, Any]) -> str:
    """Snapshot's type hash: SHA-256 of the compact JSON (``JSON.stringify``) of ``types``
    without ``EIP712Domain``, keys in the order they came in."""
    rest = {k: v for k, v in types.items() if k != "EIP712Domain"}
    text = json.dumps(rest, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class VoteTypeSet:
    """One ``Vote`` struct Snapshot accepts: its kind and its fields, in order."""

    kind: ChoiceKind
    fields: tuple[tuple[str, str], ...]

    @property
    def types(self) -> dict[str, list[dict[str, str]]]:
        return {"Vote": [{"name": n, "type": t} for n, t in self.fields]}

    @property
    def type_hash(self) -> str:
        return types_hash(self.types)

    def type_of(self, name: str) -> str | None:
        return dict(self.fields).get(name)


def _vote_type_sets() -> tuple[VoteTypeSet, ...]:
    optional_with_address = ((), ("app",), ("metadata",), ("reason", "app"))
    full = ("reason", "app", "metadata")
    out = []
    for kind, choice in CHOICE_TYPES.items():
        for proposal in ("string", "bytes32"):
            for from_type, tails in (
                ("address", (*optional_with_address, full)),
                ("string", (full,)),
            ):
                for tail in tails:
                    head = (
                        ("from", from_type),
                        ("space", "string"),
                        ("timestamp", "uint64"),
                        ("proposal", proposal),
                        ("choice", choice),
                    )
                    out.append(VoteTypeSet(kind, head + tuple((n, "string") for n in tail)))
    return tuple(out)


VOTE_TYPE_SETS: tuple[VoteTypeSet, ...] = _vote_type_sets()
_BY_HASH = {s.type_hash: s for s in VOTE_TYPE_SETS}


def type_set_of(types: Mapping[str, Any]) -> VoteTypeSet | None:
    """The accepted Vote type set ``types`` is (None: Snapshot refuses it)."""
    try:
        return _BY_HASH.get(types_hash(types))
    except (TypeError, ValueError):
        return None


def current_type_set(voting_type: str) -> VoteTypeSet:
    """The set snapshot.js signs today for a proposal of ``voting_type``."""
    kind: ChoiceKind = (
        "vote-array"
        if voting_type in ("approval", "ranked-choice")
        else "vote-string"
        if voting_type in ("weighted", "quadratic")
        else "vote"
    )
    fields = (
        ("from", "string"),
        ("space", "string"),
        ("timestamp", "uint64"),
        ("proposal", "string"),
        ("choice", CHOICE_TYPES[kind]),
        ("reason", "string"),
        ("app", "string"),
        ("metadata", "string"),
    )
    return VoteTypeSet(kind, fields)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is too large for a number")
    return value


def _double_int(text: str) -> int:
    value = int(text)
    if abs(value) >= 2**1024:
        raise ValueError(f"{text[:20]}… is too large for a number")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice")
        out[key] = value
    return out


def loads_strict(text: str | bytes) -> Any:
    """JSON as the standard defines it: no ``NaN``/``Infinity`` (which Python's ``json``
    accepts), no number too large for a double, no key twice in an object."""
    return json.loads(
        text,
        parse_constant=_refuse_constant,
        parse_float=_finite_float,
        parse_int=_double_int,
        object_pairs_hook=_no_duplicate_keys,
    )


def _word_ok(value: Any, bits: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**bits


def _value_problem(name: str, kind: str, value: Any) -> str | None:
    if kind == "string":
        return None if isinstance(value, str) else f"message.{name} must be a string"
    if kind == "address":
        ok = isinstance(value, str) and Web3.is_address(value)
        return None if ok else f"message.{name} must be an address"
    if kind == "bytes32":
        ok = (
            isinstance(value, str)
            and value.startswith("0x")
            and len(value) == 66
            and all(c in "0123456789abcdefABCDEF" for c in value[2:])
        )
        return None if ok else f"message.{name} must be 0x and 64 hex digits (bytes32)"
    if kind in ("uint32", "uint64"):
        bits = int(kind[4:])
        return None if _word_ok(value, bits) else f"message.{name} must be a {kind}"
    if kind == "uint32[]":
        ok = isinstance(value, list) and all(_word_ok(v, 32) for v in value)
        return None if ok else f"message.{name} must be a list of uint32"
    return f"message.{name} has the unsupported type {kind}"


@dataclass(frozen=True)
class SignedVote:
    """A Snapshot vote envelope, as snapshot.js posts it to the sequencer: the signer's
    ``address``, the signature ``sig`` and the signed typed data (``domain``, ``types``,
    ``message``). Only fields the type set signs are read from the message."""

    address: str
    sig: str
    domain: dict[str, Any]
    types: dict[str, Any]
    message: dict[str, Any]
    primary_type: str | None = field(default=None, compare=False)

    # -- the envelope ---------------------------------------------------------------------

    @classmethod
    def from_envelope(cls, raw: Any) -> SignedVote:
        """Read an envelope (already parsed JSON); refuse any other shape, with the reason."""
        if not isinstance(raw, dict):
            raise VoteRefused("a vote envelope is a JSON object {address, sig, data}")
        extra = set(raw) - {"address", "sig", "data"}
        missing = {"address", "sig", "data"} - set(raw)
        if extra or missing:
            raise VoteRefused(
                "a vote envelope has exactly address, sig and data"
                + (f"; unexpected {sorted(extra)}" if extra else "")
                + (f"; missing {sorted(missing)}" if missing else "")
            )
        data = raw["data"]
        if not isinstance(data, dict):
            raise VoteRefused("envelope.data must be an object {domain, types, message}")
        extra = set(data) - {"domain", "types", "message", "primaryType"}
        if extra:
            raise VoteRefused(f"envelope.data has unexpected keys {sorted(extra)}")
        for key in ("domain", "types", "message"):
            if not isinstance(data.get(key), dict):
                raise VoteRefused(f"envelope.data.{key} must be an object")
        if not isinstance(raw["address"], str) or not isinstance(raw["sig"], str):
            raise VoteRefused("envelope.address and envelope.sig must be strings")
        primary = data.get("primaryType")
        if primary is not None and not isinstance(primary, str):
            raise VoteRefused("envelope.data.primaryType must be a string")
        return cls(
            raw["address"], raw["sig"], data["domain"], data["types"], data["message"], primary
        )

    def envelope(self) -> dict[str, Any]:
        data: dict[str, Any] = {"domain": self.domain, "types": self.types, "message": self.message}
        if self.primary_type is not None:
            data["primaryType"] = self.primary_type
        return {"address": self.address, "sig": self.sig, "data": data}

    # -- what was signed ------------------------------------------------------------------

    @property
    def type_set(self) -> VoteTypeSet | None:
        return type_set_of(self.types)

    def _signed(self, name: str, default: Any) -> Any:
        s = self.type_set
        if s is None or s.type_of(name) is None:
            return default
        return self.message.get(name, default)

    @property
    def voter(self) -> str:
        return str(self._signed("from", self.address))

    @property
    def space(self) -> str:
        return str(self._signed("space", ""))

    @property
    def timestamp(self) -> int:
        value = self._signed("timestamp", 0)
        return value if _word_ok(value, 64) else -1

    @property
    def proposal(self) -> str:
        return str(self._signed("proposal", ""))

    @property
    def choice(self) -> Any:
        return self._signed("choice", None)

    @property
    def reason(self) -> str:
        return str(self._signed("reason", ""))

    @property
    def app(self) -> str:
        return str(self._signed("app", ""))

    @property
    def metadata(self) -> str:
        return str(self._signed("metadata", "{}"))

    def problem(self) -> str | None:
        """Why Snapshot's sequencer would refuse this envelope before looking at the proposal
        (None: it would not)."""
        if len(json.dumps(self.envelope())) > MAX_ENVELOPE_CHARS:
            return f"the vote message is larger than {MAX_ENVELOPE_CHARS} characters"
        d = self.domain
        if d.get("name") != DOMAIN_NAME or d.get("version") != DOMAIN_VERSION:
            return (
                f"wrong domain {d.get('name')!r} {d.get('version')!r}: Snapshot signs "
                f"{{name: {DOMAIN_NAME!r}, version: {DOMAIN_VERSION!r}}}"
            )
        unknown = set(d) - {n for n, _ in DOMAIN_FIELDS}
        if unknown:
            return f"the domain has fields EIP-712 does not define: {sorted(unknown)}"
        for name, kind in DOMAIN_FIELDS[2:]:
            if name in d and (
                problem := _value_problem(name, kind if kind != "uint256" else "uint64", d[name])
            ):
                return "domain" + problem.removeprefix("message")
        s = self.type_set
        if s is None:
            return (
                "wrong types: the Vote type set (sha256 "
                f"{types_hash(self.types)[:16]}…) is not one Snapshot accepts"
            )
        if self.primary_type not in (None, "Vote"):
            return f"primaryType {self.primary_type!r} is not Vote"
        for name, kind in s.fields:
            if name not in self.message:
                return f"message.{name} is missing"
            if problem := _value_problem(name, kind, self.message[name]):
                return problem
        if not Web3.is_address(self.address):
            return "envelope.address is not an address"
        if s.type_of("from") == "string" and not Web3.is_address(self.message["from"]):
            return "message.from must be an address"
        if self.voter.lower() != self.address.lower():
            return (
                f"signed by {self.address} for {self.voter}: aliases (voting for another "
                "address) are not supported"
            )
        if " " in self.proposal:
            return "the proposal id contains whitespace"
        if len(self.metadata) > MAX_METADATA_CHARS:
            return f"metadata is longer than {MAX_METADATA_CHARS} characters"
        return None

    def typed_data(self) -> dict[str, Any]:
        """The EIP-712 typed data as ethers hashes it: the domain's type from the domain's
        fields, the Vote fields of the type set, the signed message fields only."""
        s = self.type_set
        if s is None:
            raise VoteRefused("this envelope's types are not a Vote type set Snapshot accepts")
        domain_types = [{"name": n, "type": t} for n, t in DOMAIN_FIELDS if n in self.domain]
        message = {n: self.message[n] for n, _ in s.fields}
        return {
            "domain": dict(self.domain),
            "types": {"EIP712Domain": domain_types, **s.types},
            "primaryType": "Vote",
            "message": message,
        }

    def signable(self) -> SignableMessage:
        return encode_typed_data(full_message=self.typed_data())

    def digest(self) -> bytes:
        """The EIP-712 digest: what the wallet signed, and Snapshot's id of the message."""
        m = self.signable()
        return bytes(Web3.keccak(b"\x19" + m.version + m.header + m.body))

    @property
    def id(self) -> str:
        """Snapshot's message id (``0x`` + the digest in lowercase hex)."""
        return "0x" + self.digest().hex()

    def signer(self) -> str:
        """The address the signature recovers to."""
        return str(Account.recover_message(self.signable(), signature=self.signature_bytes()))

    def signature_bytes(self) -> bytes:
        return bytes.fromhex(self.sig.removeprefix("0x"))


def sign_vote(
    private_key: str | bytes,
    *,
    space: str,
    proposal: str,
    choice: Any,
    voting_type: str,
    timestamp: int,
    reason: str = "",
    app: str = "",
    metadata: str = "{}",
    type_set: VoteTypeSet | None = None,
    chain_id: int | None = None,
) -> SignedVote:
    """Sign a vote as snapshot.js does (by default today's type set for ``voting_type``;
    weighted and quadratic choices JSON-encoded) and return its envelope."""
    account = Account.from_key(private_key)
    s = type_set or current_type_set(voting_type)
    if s.kind == "vote-string" and not isinstance(choice, str):
        choice = json.dumps(choice, separators=(",", ":"))
    values = {
        "from": account.address,
        "space": space,
        "timestamp": timestamp,
        "proposal": proposal,
        "choice": choice,
        "reason": reason,
        "app": app,
        "metadata": metadata,
    }
    domain: dict[str, Any] = {"name": DOMAIN_NAME, "version": DOMAIN_VERSION}
    if chain_id is not None:
        domain["chainId"] = chain_id
    unsigned = SignedVote(
        account.address, "0x", domain, s.types, {n: values[n] for n, _ in s.fields}
    )
    signed = Account.sign_message(unsigned.signable(), account.key)
    return SignedVote(
        account.address,
        "0x" + bytes(signed.signature).hex(),
        domain,
        s.types,
        unsigned.message,
    )
