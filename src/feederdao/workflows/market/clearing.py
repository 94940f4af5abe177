"""Clearing a gate-closed interval from the store, with the safe reader's parameters.

The interval's active bids are checked again against the bid rules of the parameters the
clearing uses: a bid that no longer passes (its participant's mapping or the price limits
changed since it was placed) is left out of the clearing, and the outcome names it and why.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from feederdao.domain.bidrules import BidRules
from feederdao.domain.clearing import ClearingOptions, ClearingResult
from feederdao.domain.market import Bid, BidProblem, PriceBlock, Side
from feederdao.grid_model.participants import registry_from_assignments
from feederdao.grid_model.profiles import RESOLUTION_MIN, build_profiles
from feederdao.store import repositories as repo
from feederdao.store.errors import StateConflictError, StoreIntegrityError
from feederdao.workflows.clearing import Market, clear_market
from feederdao.workflows.market.context import MarketContext
from feederdao.workflows.market.governance import Governance


@dataclass(frozen=True)
class ClearingOutcome:
    """A stored clearing: the result, and the bids left out of it with the reason."""

    result: ClearingResult
    left_out: tuple[BidProblem, ...]

    def describe(self) -> str:
        """One line for the operator step's record."""
        if not self.left_out:
            return ""
        shown = "; ".join(str(p) for p in self.left_out[:10])
        more = f" (and {len(self.left_out) - 10} more)" if len(self.left_out) > 10 else ""
        return (
            f"left out {len(self.left_out)} bid(s) that no longer pass the bid rules: {shown}{more}"
        )


class Clearing:
    """Clearings run one at a time per service (a second waits for the first): they never
    interleave, whoever asks (the operator loop, the API, a library caller)."""

    def __init__(self, ctx: MarketContext, governance: Governance) -> None:
        self.ctx = ctx
        self.governance = governance
        self._one_at_a_time = threading.Lock()

    def clear(self, interval_id: int) -> ClearingOutcome:
        """Clear a gate-closed interval with the reader's parameters and persist everything."""
        with self._one_at_a_time:
            return self._clear(interval_id)

    def _clear(self, interval_id: int) -> ClearingOutcome:
        ctx = self.ctx
        with ctx.db.read() as s:
            interval = repo.get_interval(s, interval_id)
            if interval.state != "gate-closed":
                raise StateConflictError(
                    f"market interval {interval_id} is {interval.state}; close its gate first"
                )
            rows = repo.list_bids(s, interval_id, status="active")
            parts = repo.list_participants(s, "approved")
            book = repo.book_of(s, interval_id)
        if interval.book_hash is not None and book != (interval.book_bids, interval.book_hash):
            raise StoreIntegrityError(
                f"market interval {interval_id}: its active bids ({book[0]}) are not the book "
                f"as its gate closed ({interval.book_bids}); refusing to clear"
            )
        reading = self.governance.read_parameters()
        start = interval.start
        view = ctx.network.view
        profiles = build_profiles(
            ctx.network.loaded,
            view,
            start,  # an instant: read at the profiles' row of that instant (their own clock)
            interval.periods,
        )
        registry = registry_from_assignments(
            view,
            profiles,
            [(p.id, p.bus, p.devices, p.address) for p in parts if p.bus is not None],
        )
        rules = BidRules.of(view, reading.parameters, interval.periods)
        bids: list[Bid] = []
        left_out: list[BidProblem] = []
        for row in rows:
            bid = Bid(
                row.id,
                row.participant_id,
                row.bus,
                row.period,
                Side(row.side),
                tuple(PriceBlock(p, q) for p, q in row.blocks),
                row.device_id,
            )
            part = registry.get(row.participant_id)
            found = rules.problems(
                bid,
                part.bus if part is not None else None,
                {d.device_id for d in part.devices} if part is not None else (),
            )
            if found:
                left_out.extend(found)
                continue
            bids.append(bid.on_bus(view.canonical_bus(bid.bus)))
        first_step = (start.hour * 60 + start.minute) // RESOLUTION_MIN
        market = Market(ctx.network, profiles, registry, tuple(bids))
        result = clear_market(
            market,
            reading.parameters,
            ClearingOptions(elastic=True),
            ctx.prices.window(interval.periods, first_step),
        )
        with ctx.db.session() as s:
            params = repo.record_parameters(
                s,
                reading.status,
                reading.parameters.values(),
                _jsonable(asdict(reading.parameters.provenance)),
                reading.alarms,
            )
            repo.save_result(s, interval_id, result, params.id)
        ctx.use_parameters(reading.parameters)
        return ClearingOutcome(result, tuple(left_out))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
