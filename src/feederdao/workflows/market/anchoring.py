"""Anchoring a result's hash in the SettlementRegistry (once), and checking it later."""

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
    """A stored anchor and what the registry holds now (``verified`` None: nothing there)."""

    result_hash: str
    transaction: str | None
    block: int | None
    chain_id: int | None
    on_chain_hash: str | None
    verified: bool | None


class Anchoring:
    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx

    def anchor(self, interval_id: int) -> Anchor:
        """Write the result's hash to the SettlementRegistry (once; a retry finds it there)."""
        registry = self.ctx.require_chain("results cannot be anchored").registry
        with self.ctx.db.session() as s:
            row = repo.get_result(s, interval_id)
        record = registry.anchor(interval_id, bytes.fromhex(row.result_hash[2:]))
        with self.ctx.db.session() as s:
            repo.record_anchor(s, interval_id, record.transaction, record.block, record.chain_id)
        return Anchor(
            interval_id, row.result_hash, record.transaction, record.block, record.chain_id
        )

    def status(self, interval_id: int) -> AnchorStatus:
        """The anchoring transaction, and the hash the registry holds now (read live)."""
        with self.ctx.db.session() as s:
            res = repo.get_result(s, interval_id)
        on_chain: str | None = None
        if self.ctx.chain is not None:
            held = self.ctx.chain.registry.result_hash(interval_id)
            on_chain = None if held is None else "0x" + held.hex()
        return AnchorStatus(
            res.result_hash,
            res.anchor_tx,
            res.anchor_block,
            res.anchor_chain_id,
            on_chain,
            None if on_chain is None else on_chain == res.result_hash,
        )
