"""The service's own state: health, and what a client needs to sign messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from feederdao.grid_model.profiles import RESOLUTION_MIN
from feederdao.workflows.market.context import MarketContext
from feederdao.workflows.market.wholesale import Kind


@dataclass(frozen=True)
class Health:
    ok: bool
    database: bool
    chain: bool | None
    escalations: tuple[str, ...]
    wholesale_prices: Kind
    notes: tuple[str, ...]


@dataclass(frozen=True)
class MarketInfo:
    network: str
    buses: tuple[int, ...]
    period_minutes: int
    periods_per_interval: int
    eip712_domain: dict[str, Any] | None
    wholesale_prices: Kind
    notes: tuple[str, ...]


class System:
    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx

    def chain_connected(self) -> bool | None:
        """None: no chain configured."""
        if self.ctx.chain is None:
            return None
        try:
            return bool(self.ctx.chain.w3.is_connected())
        except Exception:
            return False

    def health(self, escalations: Sequence[str]) -> Health:
        """``ok`` unless the database is down, the chain unreachable or a step escalated."""
        db = self.ctx.db.ping()
        chain = self.chain_connected()
        ok = db and chain is not False and not escalations
        prices = self.ctx.prices
        return Health(ok, db, chain, tuple(escalations), prices.kind, self.notes())

    def notes(self) -> tuple[str, ...]:
        """What an operator must know about how this service runs."""
        note = self.ctx.prices.note
        return (note,) if note else ()

    def market(self) -> MarketInfo:
        view = self.ctx.network.view
        return MarketInfo(
            view.name,
            tuple(b.index for b in view.buses),
            RESOLUTION_MIN,
            self.ctx.settings.periods_per_interval,
            self.ctx.domain.as_dict() if self.ctx.chain is not None else None,
            self.ctx.prices.kind,
            self.notes(),
        )
