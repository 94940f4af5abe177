"""Market intervals: open, gate closure, publication state; what anyone may see of them.

An interval moves open → gate-closed → cleared → published. Its results are public once it is
published; operators and auditors see them as soon as it is cleared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from feederdao.errors import FieldError
from feederdao.grid_model.profiles import RESOLUTION_MIN
from feederdao.store import repositories as repo
from feederdao.store.errors import NotFoundError
from feederdao.store.models import IntervalRow, OperatorStepRow
from feederdao.workflows.market.context import MarketContext

LIVE_STATES = ("open", "gate-closed", "cleared", "published")


@dataclass(frozen=True)
class IntervalView:
    """An interval with the hash and anchoring transaction of its result (None until the
    caller may see them: a cleared but unpublished result is not public)."""

    row: IntervalRow
    result_hash: str | None
    anchor_tx: str | None

    @property
    def end(self) -> datetime:
        return self.row.start + timedelta(minutes=self.row.periods * self.row.period_minutes)


def results_visible(row: IntervalRow, sees_everything: bool) -> bool:
    """Published results are public; cleared ones only for operators and auditors."""
    return row.state == "published" or (sees_everything and row.state == "cleared")


class Intervals:
    def __init__(self, ctx: MarketContext) -> None:
        self.ctx = ctx

    def open(
        self, start: datetime, periods: int | None = None, gate_closure: datetime | None = None
    ) -> IntervalRow:
        if start.tzinfo is None:
            raise FieldError("start", "start must carry a time zone (e.g. 2026-06-21T12:00Z)")
        if gate_closure is not None and gate_closure.tzinfo is None:
            raise FieldError("gate_closure", "gate_closure must carry a time zone")
        if start.minute % RESOLUTION_MIN or start.second or start.microsecond:
            raise FieldError("start", f"start must be on a {RESOLUTION_MIN}-minute boundary")
        n = periods or self.ctx.settings.periods_per_interval
        if not 1 <= n <= 96:
            raise FieldError("periods", f"periods {n} must be between 1 and 96")
        try:
            start + timedelta(minutes=n * RESOLUTION_MIN)
            lead = timedelta(seconds=self.ctx.settings.gate_closure_lead_s)
            gate = gate_closure or start - lead
            gate.astimezone(UTC)
        except OverflowError:
            raise FieldError(
                "start",
                f"an interval from {start.isoformat()} would end after 9999-12-31 or close its "
                "gate before 0001-01-01",
            ) from None
        if gate > start:
            raise FieldError("gate_closure", "gate closure must not be after the start")
        with self.ctx.db.session() as s:
            return repo.open_interval(s, start, n, RESOLUTION_MIN, gate)

    def close_gate(self, interval_id: int) -> IntervalRow:
        """No more bids or cancellations for the interval."""
        with self.ctx.db.session() as s:
            return repo.set_interval_state(s, interval_id, ("open",), "gate-closed")

    def mark_published(self, interval_id: int) -> IntervalRow:
        with self.ctx.db.session() as s:
            row = repo.get_interval(s, interval_id)
            if row.state == "published":
                return row
            return repo.set_interval_state(s, interval_id, ("cleared",), "published")

    def get(self, interval_id: int) -> IntervalRow:
        with self.ctx.db.read() as s:
            return repo.get_interval(s, interval_id)

    def live(self, limit: int = 50) -> list[IntervalRow]:
        """Intervals the operator loop still has work for, oldest first."""
        with self.ctx.db.read() as s:
            rows = [r for state in LIVE_STATES for r in repo.list_intervals(s, state, limit)]
        return sorted(rows, key=lambda r: r.start)

    def _views(self, rows: Sequence[IntervalRow], sees_everything: bool) -> list[IntervalView]:
        seen = [row.id for row in rows if results_visible(row, sees_everything)]
        with self.ctx.db.read() as s:
            refs = repo.result_refs(s, seen)  # hashes only: never the documents
        out = []
        for row in rows:
            res = refs.get(row.id)
            out.append(IntervalView(row, *(res if res is not None else (None, None))))
        return out

    def view(self, interval_id: int, sees_everything: bool = False) -> IntervalView:
        return self._views([self.get(interval_id)], sees_everything)[0]

    def views(
        self, state: str | None = None, limit: int = 100, sees_everything: bool = False
    ) -> list[IntervalView]:
        """The latest intervals, newest first."""
        with self.ctx.db.read() as s:
            rows = repo.list_intervals(s, state, limit)
        return self._views(rows, sees_everything)

    def visible(self, interval_id: int, sees_everything: bool) -> IntervalRow:
        """The interval, if the caller may see its results; NotFoundError otherwise."""
        row = self.get(interval_id)
        if not results_visible(row, sees_everything):
            raise NotFoundError(f"market interval {interval_id} has no published result yet")
        return row

    def steps(self, interval_id: int) -> list[OperatorStepRow]:
        """What the operator loop did for the interval: every attempt of every step."""
        with self.ctx.db.read() as s:
            repo.get_interval(s, interval_id)
            return repo.steps_of(s, interval_id)
