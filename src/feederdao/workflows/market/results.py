"""A cleared interval's results as stored: prices, summary, settlement, dispatch, the result
document, and what SCADA is sent (publication and setpoints)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any

from feederdao.domain.clearing import Publication, Setpoint
from feederdao.store import grids
from feederdao.store import repositories as repo
from feederdao.store.errors import NotFoundError
from feederdao.store.models import (
    ClearingResultRow,
    DispatchRow,
    PriceRow,
    SettlementRowModel,
)
from feederdao.workflows.market.context import MarketContext, params_of
from feederdao.workflows.market.intervals import Intervals


@dataclass(frozen=True)
class PeriodSummary:
    period: int
    dlmp_min: float
    dlmp_max: float
    dlmp_mean: float
    accepted_buy_mw: float
    accepted_sell_mw: float


@dataclass(frozen=True)
class Summary:
    interval_id: int
    state: str
    welfare_eur: float
    ac_feasible: bool
    result_hash: str
    anchor_tx: str | None
    periods: tuple[PeriodSummary, ...]


class Results:
    def __init__(self, ctx: MarketContext, intervals: Intervals) -> None:
        self.ctx = ctx
        self.intervals = intervals

    def result(self, interval_id: int) -> ClearingResultRow:
        with self.ctx.db.read() as s:
            return repo.get_result(s, interval_id)

    def document(self, interval_id: int) -> dict[str, Any]:
        """The whole clearing result as stored (the document whose hash is anchored)."""
        doc: dict[str, Any] = json.loads(self.result(interval_id).result_json)
        return doc

    def price_grid(self, interval_id: int, parts: str = "all") -> tuple[bytes, bytes]:
        """The prices as ``[period][bus]`` arrays (:mod:`feederdao.store.grids`; the DLMP
        alone with ``parts="dlmp"``), JSON plain and gzipped: as kept with the result, or made
        from the result document for a result stored before grids were kept."""
        with self.ctx.db.read() as s:
            packed = repo.stored_price_grid(s, interval_id, parts)
        if packed is not None:
            return gzip.decompress(packed), packed
        doc = self.document(interval_id)
        return grids.price_grid(interval_id, doc["bus_indices"], doc["prices"], parts)

    def prices(
        self,
        interval_id: int,
        sees_everything: bool,
        bus: int | None = None,
        period: int | None = None,
    ) -> list[PriceRow]:
        self.intervals.visible(interval_id, sees_everything)
        with self.ctx.db.read() as s:
            return repo.prices_of(s, interval_id, bus, period)

    def summary(self, interval_id: int, sees_everything: bool) -> Summary:
        """Per period: the DLMP's range and mean, and the accepted buy and sell MW."""
        row = self.intervals.visible(interval_id, sees_everything)
        with self.ctx.db.read() as s:
            res = repo.get_result(s, interval_id)
            price_rows = repo.prices_of(s, interval_id)
            bids = repo.list_bids(s, interval_id, status="active")
        periods = []
        for t in range(row.periods):
            d = [p.dlmp for p in price_rows if p.period == t]
            buy = sum(sum(b.accepted_mw or []) for b in bids if b.period == t and b.side == "buy")
            sell = sum(sum(b.accepted_mw or []) for b in bids if b.period == t and b.side == "sell")
            periods.append(
                PeriodSummary(
                    t,
                    min(d, default=0.0),
                    max(d, default=0.0),
                    sum(d) / len(d) if d else 0.0,
                    buy,
                    sell,
                )
            )
        return Summary(
            interval_id,
            row.state,
            res.welfare_eur,
            res.ac_feasible,
            res.result_hash,
            res.anchor_tx,
            tuple(periods),
        )

    def settlement(
        self, interval_id: int, sees_everything: bool, owner: str | None
    ) -> list[SettlementRowModel]:
        """``owner``'s settlement rows (None: everyone's, for operators and auditors)."""
        self.intervals.visible(interval_id, sees_everything)
        with self.ctx.db.read() as s:
            return repo.settlement_of(s, interval_id, owner)

    def dispatch(self, interval_id: int, period: int | None = None) -> list[DispatchRow]:
        with self.ctx.db.read() as s:
            repo.get_interval(s, interval_id)
            return repo.dispatch_of(s, interval_id, period)

    def setpoints(self, interval_id: int, period: int) -> tuple[Setpoint, ...]:
        return tuple(
            Setpoint(r.device_id, r.bus, r.period, r.p_mw, r.q_mvar, r.position)
            for r in self.dispatch(interval_id, period)
        )

    def publication(self, interval_id: int) -> Publication:
        """What SCADA sees of a cleared interval, rebuilt from the store."""
        with self.ctx.db.read() as s:
            interval = repo.get_interval(s, interval_id)
            res = repo.get_result(s, interval_id)
            params = (
                repo.get_parameters(s, interval.parameters_id)
                if interval.parameters_id is not None
                else None
            )
            dlmp: dict[int, list[float]] = {}
            for p in repo.prices_of(s, interval_id):
                dlmp.setdefault(p.bus, [0.0] * interval.periods)[p.period] = p.dlmp
            schedule: dict[str, list[float]] = {}
            for d in repo.dispatch_of(s, interval_id):
                schedule.setdefault(d.device_id, [0.0] * interval.periods)[d.period] = d.p_mw
        if params is None:
            raise NotFoundError(f"market interval {interval_id} has no applied parameters")
        return Publication(
            f"interval-{interval_id}",
            res.welfare_eur,
            res.ac_feasible,
            params_of(params.values, params.provenance),
            dlmp,
            schedule,
        )
