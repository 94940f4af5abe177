"""Merkle trees of net positions, built the way OpenZeppelin's ``StandardMerkleTree`` builds
them for ``["address", "int256"]`` leaves, so the vault's ``MerkleProof.verify`` and the
JavaScript library agree with what is computed here.

A leaf is ``keccak256(keccak256(abi.encode(account, position)))`` (hashed twice, so no leaf is
a valid inner node); leaves are sorted by hash and laid out as a complete binary tree in one
array (root at 0, children of i at 2i+1 and 2i+2, leaves at the end); an inner node hashes its
two children in sorted order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_utils.crypto import keccak

from feederdao.governance.errors import GovernanceError


def leaf_hash(account: str, position: int) -> bytes:
    raw = bytes.fromhex(account.removeprefix("0x").lower())
    if len(raw) != 20:
        raise GovernanceError(f"{account!r} is not an address")
    if not -(2**255) <= position < 2**255:
        raise GovernanceError(f"position {position} does not fit an int256")
    encoded = bytes(12) + raw + (position % 2**256).to_bytes(32, "big")
    return keccak(keccak(encoded))


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass(frozen=True)
class PositionTree:
    """Every account's cumulative net position, its tree and proofs."""

    positions: Mapping[str, int]  # lowercase address → position (token units)
    nodes: tuple[bytes, ...]
    index_of: Mapping[str, int]  # address → its leaf's index in ``nodes``

    @classmethod
    def build(cls, positions: Mapping[str, int]) -> PositionTree:
        if not positions:
            raise GovernanceError("a position tree needs at least one account")
        normal = {a.lower(): int(v) for a, v in positions.items()}
        if len(normal) != len(positions):
            raise GovernanceError("an account appears twice (addresses differing only in case)")
        hashed = sorted((leaf_hash(a, v), a) for a, v in normal.items())
        n = len(hashed)
        size = 2 * n - 1
        nodes: list[bytes] = [b""] * size
        index_of: dict[str, int] = {}
        for i, (h, a) in enumerate(hashed):
            nodes[size - 1 - i] = h
            index_of[a] = size - 1 - i
        for i in range(size - 1 - n, -1, -1):
            nodes[i] = _pair(nodes[2 * i + 1], nodes[2 * i + 2])
        return cls(normal, tuple(nodes), index_of)

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    def proof(self, account: str) -> list[bytes]:
        i = self.index_of.get(account.lower())
        if i is None:
            raise GovernanceError(f"account {account} has no position in this tree")
        out = []
        while i > 0:
            out.append(self.nodes[i + 1 if i % 2 else i - 1])
            i = (i - 1) // 2
        return out

    def verify(self, account: str, position: int, proof: list[bytes]) -> bool:
        h = leaf_hash(account, position)
        for sibling in proof:
            h = _pair(h, sibling)
        return h == self.root
