"""Clearing a gate-closed interval from the store, with the safe reader's parameters.

The interval's active bids are checked again against the bid rules of the parameters the
clearing uses: a bid that no longer passes (its participant's mapping or the price limits
changed since it was placed) is left out of the clearing, and the outcome names it and why.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from feederdao.domain.bidrules import BidRules
from feederdao.domain.clearing import ClearingOptions, ClearingResult
from feederdao.domain.market import Bid, BidProblem, PriceBlock, Side
from feederdao.domain.params import GridParameters
from feederdao.grid_model.participants import registry_from_assignments
from feederdao.grid_model.profiles import RESOLUTION_MIN, build_profiles
from feederdao.store import repositories as repo
from feederdao.store.errors import StateConflictError, StoreIntegrityError
from feederdao.store.models import BidRow, IntervalRow, ParticipantRow
from feederdao.workflows.clearing import Market, clear_market
from feederdao.workflows.market.context import MarketContext, params_of
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
                    if interval.state == "open"
                    else (
                        f"market interval {interval_id} is {interval.state}: "
                        "only a gate-closed interval is cleared"
                    )
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
        result, left_out = self._run(interval, parts, rows, reading.parameters)
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

    def _run(
        self,
        interval: IntervalRow,
        parts: list[ParticipantRow],
        rows: list[BidRow],
        parameters: GridParameters,
    ) -> tuple[ClearingResult, list[BidProblem]]:
        """Clear the interval's bids with ``parameters`` (the bids that no longer pass the bid
        rules left out, and returned)."""
        ctx = self.ctx
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
        rules = BidRules.of(view, parameters, interval.periods)
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
            parameters,
            ClearingOptions(elastic=True),
            ctx.prices.window(interval.periods, first_step),
        )
        return result, left_out

    def recheck(self, interval_id: int) -> Recheck:
        """Clear a cleared interval's stored inputs again (its book, the parameters it was
        cleared with, the participants approved by then) and compare the result with the
        stored document, whose hash is the one anchored on chain.

        The solver's timings (``stats.*_s``) differ from run to run and are left out of the
        comparison; everything else must be equal (floats within ``RECHECK_RTOL``)."""
        ctx = self.ctx
        with ctx.db.read() as s:
            interval = repo.get_interval(s, interval_id)
            stored = repo.find_result(s, interval_id)
            if stored is None or interval.parameters_id is None:
                raise StateConflictError(
                    f"market interval {interval_id} is {interval.state}; it has no clearing "
                    "to compare with"
                )
            applied = repo.get_parameters(s, interval.parameters_id)
            rows = repo.list_bids(s, interval_id, status="active")
            cleared_at = interval.cleared_at
            parts = [
                p
                for p in repo.list_participants(s, "approved")
                if cleared_at is None
                or p.approved_at is None
                or _naive(p.approved_at) <= _naive(cleared_at)
            ]
        parameters = params_of(applied.values, applied.provenance)
        with self._one_at_a_time:
            result, _ = self._run(interval, parts, rows, parameters)
        text = result.to_json()
        doc_stored = json.loads(stored.result_json)
        doc_again = json.loads(text)
        return Recheck(
            interval_id=interval_id,
            stored_hash=stored.result_hash,
            stored_document_hash=repo.result_hash(stored.result_json),
            recomputed_hash=repo.result_hash(text),
            comparable_hash_stored=_comparable_hash(doc_stored),
            comparable_hash_recomputed=_comparable_hash(doc_again),
            first_difference=first_difference(_comparable(doc_stored), _comparable(doc_again)),
            ignored=IGNORED_STATS,
        )


#: solver timings in ``stats``: they differ from run to run and are not compared
IGNORED_STATS = ("build_s", "solve_s", "ac_check_s", "total_s", "load_s", "read_s")
#: relative tolerance of a float compared by :meth:`Clearing.recheck`
RECHECK_RTOL = 1e-9


@dataclass(frozen=True)
class Difference:
    """Where two result documents first differ: a JSON path and both values (as JSON text,
    cut to 200 characters)."""

    path: str
    stored: str
    recomputed: str


@dataclass(frozen=True)
class Recheck:
    """A re-clearing compared with the stored result. ``match``: the stored document still
    hashes to the stored (anchored) hash and the re-clearing reproduces it."""

    interval_id: int
    stored_hash: str
    stored_document_hash: str
    recomputed_hash: str
    comparable_hash_stored: str
    comparable_hash_recomputed: str
    first_difference: Difference | None
    ignored: tuple[str, ...]

    @property
    def match(self) -> bool:
        return self.stored_hash == self.stored_document_hash and self.first_difference is None


def _naive(t: datetime) -> datetime:
    return t.replace(tzinfo=None) if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    stats = {k: v for k, v in dict(doc.get("stats", {})).items() if k not in IGNORED_STATS}
    return {**doc, "stats": stats}


def _comparable_hash(doc: dict[str, Any]) -> str:
    text = json.dumps(_comparable(doc), sort_keys=True)
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:199] + "…"


def first_difference(a: Any, b: Any, path: str = "$") -> Difference | None:
    """The first place (depth first, keys in order) where ``a`` and ``b`` differ; floats are
    equal within ``RECHECK_RTOL`` (relative) or 1e-12 (absolute)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return Difference(
                    f"{path}.{key}",
                    _short(a.get(key)) if key in a else "(missing)",
                    _short(b.get(key)) if key in b else "(missing)",
                )
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return Difference(f"{path}.length", str(len(a)), str(len(b)))
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        if a == b or math.isclose(a, b, rel_tol=RECHECK_RTOL, abs_tol=1e-12):
            return None
        return Difference(path, _short(a), _short(b))
    if a != b:
        return Difference(path, _short(a), _short(b))
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
