"""Anchoring a result's hash in the SettlementRegistry (once), and checking it later.

An anchor is recorded with its transaction, block number and block hash, chain and registry;
checking it later compares all of them with the chain as it is now. The embedded chain starts
afresh on every run of the service, so an anchor of an earlier run reads ``verified: false`` with
the reason; ``verified`` is never left unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from feederdao.store import repositories as repo
from feederdao.workflows.market.context import MarketContext


@dataclass(frozen=True)
class Anchor:
    interval_id: int
    result_hash: str
    transaction: str
    block: int
    chain_id: int


@dataclass(frozen=True)
class AnchorStatus:
    """A stored anchor and what the registry holds now: ``verified`` is True or False, and
    when it is False, ``reason`` says why."""

    result_hash: str
    transaction: str | None
    block: int | None
    chain_id: int | None
    on_chain_hash: str | None
    verified: bool
    reason: str | None


class Anchoring:
    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx

    def anchor(self, interval_id: int) -> Anchor:
        """Write the result's hash to the SettlementRegistry (once; a retry finds it there)."""
        registry = self.ctx.require_chain("results cannot be anchored").registry
        with self.ctx.db.read() as s:
            row = repo.get_result(s, interval_id)
        record = registry.anchor(interval_id, bytes.fromhex(row.result_hash[2:]))
        with self.ctx.db.session() as s:
            repo.record_anchor(
                s,
                interval_id,
                record.transaction,
                record.block,
                record.chain_id,
                record.block_hash,
                record.registry,
            )
        return Anchor(
            interval_id, row.result_hash, record.transaction, record.block, record.chain_id
        )

    def status(self, interval_id: int) -> AnchorStatus:
        """The anchoring transaction, and whether the chain still holds it (read live)."""
        with self.ctx.db.read() as s:
            res = repo.get_result(s, interval_id)
        stored = (res.result_hash, res.anchor_tx, res.anchor_block, res.anchor_chain_id)
        if self.ctx.chain is None:
            return AnchorStatus(*stored, None, False, "this service runs without a chain")
        registry = self.ctx.chain.registry
        if res.anchor_chain_id is not None and res.anchor_chain_id != registry.chain_id:
            held = registry.result_hash(interval_id)
            return AnchorStatus(
                *stored,
                None if held is None else "0x" + held.hex(),
                False,
                f"anchored on chain {res.anchor_chain_id}; this service runs on chain "
                f"{registry.chain_id}",
            )
        check = registry.check(
            interval_id,
            res.result_hash,
            res.anchor_block,
            res.anchor_block_hash,
            res.anchor_registry,
        )
        return AnchorStatus(*stored, check.on_chain_hash, check.verified, check.reason)
