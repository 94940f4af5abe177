"""The SettlementRegistry contract: a market interval's result hash, anchored once.

This adapter is the only place that calls the registry through web3; web3's and the node's
errors leave it as :class:`~feederdao.governance.errors.GovernanceError` (or
:class:`~feederdao.governance.errors.ChainUnavailableError` when the node cannot be reached).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import BlockNotFound, Web3Exception

from feederdao.governance.chain import transact
from feederdao.governance.dao import Dao
from feederdao.governance.errors import ChainUnavailableError, GovernanceError

ZERO = bytes(32)


@dataclass(frozen=True)
class AnchorRecord:
    """Where a result hash was anchored: the transaction, its block (number and hash), the
    chain and the registry."""

    transaction: str
    block: int
    block_hash: str
    chain_id: int
    registry: str


@dataclass(frozen=True)
class AnchorCheck:
    """What the chain says now about an anchor recorded earlier: ``verified`` is True only when
    the registry holds the expected hash and the recorded block is still on the chain;
    otherwise ``reason`` says why not."""

    on_chain_hash: str | None
    verified: bool
    reason: str | None


class SettlementRegistry:
    """Anchor and read result hashes; ``operator`` is the account allowed to anchor."""

    def __init__(self, dao: Dao, operator: str) -> None:
        self.w3: Web3 = dao.w3
        self.contract = dao.settlement
        self.contracts = [dao.settlement]
        self.address = str(dao.addresses.settlement)
        self.deployed_at_block = dao.addresses.deployed_at_block
        self.operator = operator

    def _read(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except (ConnectionError, OSError) as exc:
            raise ChainUnavailableError(f"{what}: the chain node cannot be reached: {exc}") from exc
        except (Web3Exception, ValueError) as exc:
            raise GovernanceError(f"{what} failed: {exc}") from exc

    @property
    def chain_id(self) -> int:
        return int(self._read("reading the chain id", lambda: self.w3.eth.chain_id))

    def result_hash(self, interval_id: int) -> bytes | None:
        """The hash the registry holds for ``interval_id`` (None: nothing anchored)."""
        raw = self._read(
            f"reading the anchor of interval {interval_id}",
            lambda: bytes(self.contract.functions.resultHash(interval_id).call()),
        )
        return None if raw == ZERO else bytes(raw)

    def find_anchor(self, interval_id: int) -> AnchorRecord | None:
        """The transaction that anchored ``interval_id`` (None: no Anchored event)."""
        logs = self._read(
            f"looking up the anchoring of interval {interval_id}",
            lambda: self.contract.events.Anchored().get_logs(
                from_block=self.deployed_at_block, argument_filters={"intervalId": interval_id}
            ),
        )
        if not logs:
            return None
        log = logs[0]
        return AnchorRecord(
            "0x" + bytes(log["transactionHash"]).hex(),
            int(log["blockNumber"]),
            "0x" + bytes(log["blockHash"]).hex(),
            self.chain_id,
            self.address,
        )

    def anchor(self, interval_id: int, digest: bytes) -> AnchorRecord:
        """Write ``digest`` for ``interval_id`` once: a retry after a crash finds the earlier
        transaction instead of sending another; another hash already there is an error."""
        on_chain = self.result_hash(interval_id)
        if on_chain is None:
            call = self.contract.functions.anchor(interval_id, digest)
            receipt = transact(
                self.w3, call, self.operator, f"anchoring interval {interval_id}", self.contracts
            )
            return AnchorRecord(
                "0x" + bytes(receipt["transactionHash"]).hex(),
                int(receipt["blockNumber"]),
                "0x" + bytes(receipt["blockHash"]).hex(),
                self.chain_id,
                self.address,
            )
        if on_chain != digest:
            raise GovernanceError(
                f"the registry holds another hash for interval {interval_id}: 0x{on_chain.hex()}"
            )
        found = self.find_anchor(interval_id)
        if found is None:
            raise GovernanceError(f"interval {interval_id} is anchored but no event was found")
        return found

    def block_hash(self, number: int) -> str | None:
        """The hash of block ``number`` on the chain now (None: the chain has no such block)."""
        try:
            block = self._read(f"reading block {number}", lambda: self.w3.eth.get_block(number))
        except GovernanceError as exc:
            if isinstance(exc.__cause__, BlockNotFound):
                return None
            raise
        return "0x" + bytes(block["hash"]).hex()

    def check(
        self,
        interval_id: int,
        expected: str,
        block: int | None,
        block_hash: str | None,
        registry: str | None,
    ) -> AnchorCheck:
        """Compare an anchor recorded in the store with what the chain holds now."""
        held = self.result_hash(interval_id)
        held_hex = None if held is None else "0x" + held.hex()
        if block is None:
            return AnchorCheck(held_hex, False, "the result has not been anchored yet")
        if registry is not None and registry.lower() != self.address.lower():
            return AnchorCheck(
                held_hex,
                False,
                f"anchored in another SettlementRegistry ({registry}) than this deployment's "
                f"({self.address}): it cannot be verified here",
            )
        now_hash = self.block_hash(block)
        if block_hash is not None and now_hash != block_hash:
            return AnchorCheck(
                held_hex,
                False,
                f"block {block} that recorded the anchor is no longer on this chain (the chain "
                "was reset or reorganised; the embedded chain starts afresh on every run)",
            )
        if held_hex is None:
            return AnchorCheck(
                None,
                False,
                f"the registry holds no hash for this interval although block {block} recorded "
                "its anchoring: the chain was reset (the embedded chain starts afresh on every "
                "run)",
            )
        if held_hex != expected:
            return AnchorCheck(held_hex, False, "the registry holds another hash")
        return AnchorCheck(held_hex, True, None)
