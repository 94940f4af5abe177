"""Market intervals: open, gate closure, clear, anchor, publish; prices, results, settlement."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from feederdao.api.auth import Anyone, MaybeCaller, Operator, Reader, Service
from feederdao.api.schemas import (
    AnchorOut,
    DispatchOut,
    Error,
    Filter,
    Index,
    IntervalId,
    IntervalIn,
    IntervalOut,
    PeriodSummary,
    PriceOut,
    SettlementOut,
    StepOut,
    SummaryOut,
)
from feederdao.store import repositories as repo
from feederdao.store.models import IntervalRow
from feederdao.workflows.operator import Operator as MarketOperator
from feederdao.workflows.service import MarketService

router = APIRouter(prefix="/intervals", tags=["intervals"])
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Error},
    409: {"model": Error},
    422: {"model": Error},
}


def _operator(request: Request) -> MarketOperator:
    op: MarketOperator = request.app.state.operator
    return op


def _out(svc: MarketService, row: IntervalRow) -> IntervalOut:
    out = IntervalOut.model_validate(
        {
            **{c: getattr(row, c) for c in IntervalOut.model_fields if hasattr(row, c)},
            "end": row.start + timedelta(minutes=row.periods * row.period_minutes),
        }
    )
    if row.state in ("cleared", "published"):
        res = svc.result(row.id)
        out.result_hash, out.anchor_tx = res.result_hash, res.anchor_tx
    return out


def _visible(svc: MarketService, interval_id: IntervalId, caller: Any) -> IntervalRow:
    """Results are public once published; operators and auditors see them once cleared."""
    with svc.db.session() as s:
        row = repo.get_interval(s, interval_id)
    seen = ("cleared", "published") if caller is not None and caller.sees_everything else ()
    if row.state != "published" and row.state not in seen:
        raise HTTPException(404, f"market interval {interval_id} has no published result yet")
    return row


@router.post("", status_code=201, response_model=IntervalOut, responses=ERRORS)
def open_interval(body: IntervalIn, _: Operator, svc: Service) -> IntervalOut:
    """Open an interval for bids (gate closure defaults to the configured lead before start)."""
    return _out(svc, svc.open_interval(body.start, body.periods, body.gate_closure))


@router.get("", response_model=list[IntervalOut])
def list_intervals(
    svc: Service,
    state: Filter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IntervalOut]:
    with svc.db.session() as s:
        rows = repo.list_intervals(s, state, limit)
    return [_out(svc, r) for r in rows]


@router.get("/{interval_id}", response_model=IntervalOut, responses=ERRORS)
def one(interval_id: IntervalId, svc: Service) -> IntervalOut:
    with svc.db.session() as s:
        row = repo.get_interval(s, interval_id)
    return _out(svc, row)


@router.post("/{interval_id}/gate-closure", response_model=IntervalOut, responses=ERRORS)
def close_gate(interval_id: IntervalId, _: Operator, svc: Service) -> IntervalOut:
    """Close the gate now: no more bids or cancellations."""
    return _out(svc, svc.close_gate(interval_id))


@router.post("/{interval_id}/clear", response_model=IntervalOut, responses=ERRORS)
async def clear(
    interval_id: IntervalId, _: Operator, svc: Service, request: Request
) -> IntervalOut:
    """Clear with the parameters the safe reader returns; persist prices, dispatch, settlement."""
    await _operator(request).clear(interval_id)
    with svc.db.session() as s:
        return _out(svc, repo.get_interval(s, interval_id))


@router.post("/{interval_id}/anchor", response_model=AnchorOut, responses=ERRORS)
async def anchor(interval_id: IntervalId, _: Operator, request: Request) -> AnchorOut:
    """Write the result's hash to the SettlementRegistry (idempotent)."""
    a = await _operator(request).anchor(interval_id)
    return AnchorOut(
        result_hash=a.result_hash,
        transaction=a.transaction,
        block=a.block,
        chain_id=a.chain_id,
        on_chain_hash=a.result_hash,
        verified=True,
    )


@router.post("/{interval_id}/publish", response_model=IntervalOut, responses=ERRORS)
async def publish(
    interval_id: IntervalId, _: Operator, svc: Service, request: Request
) -> IntervalOut:
    """Publish the cleared interval (API and OPC UA) so setpoints can be pushed."""
    await _operator(request).publish(interval_id)
    with svc.db.session() as s:
        return _out(svc, repo.get_interval(s, interval_id))


@router.get("/{interval_id}/prices", response_model=list[PriceOut], responses=ERRORS)
def prices(
    interval_id: IntervalId,
    svc: Service,
    caller: MaybeCaller,
    bus: Index = None,
    period: Index = None,
) -> list[PriceOut]:
    """DLMP per bus and period with its energy, loss, congestion and voltage parts."""
    _visible(svc, interval_id, caller)
    with svc.db.session() as s:
        return [PriceOut.model_validate(p) for p in repo.prices_of(s, interval_id, bus, period)]


@router.get("/{interval_id}/summary", response_model=SummaryOut, responses=ERRORS)
def summary(interval_id: IntervalId, svc: Service, caller: MaybeCaller) -> SummaryOut:
    """The public price and dispatch summary of an interval."""
    row = _visible(svc, interval_id, caller)
    with svc.db.session() as s:
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
                period=t,
                dlmp_min=min(d, default=0.0),
                dlmp_max=max(d, default=0.0),
                dlmp_mean=sum(d) / len(d) if d else 0.0,
                accepted_buy_mw=buy,
                accepted_sell_mw=sell,
            )
        )
    return SummaryOut(
        interval_id=interval_id,
        state=row.state,
        welfare_eur=res.welfare_eur,
        ac_feasible=res.ac_feasible,
        result_hash=res.result_hash,
        anchor_tx=res.anchor_tx,
        periods=periods,
    )


@router.get("/{interval_id}/result", responses=ERRORS)
def result(interval_id: IntervalId, _: Reader, svc: Service) -> dict[str, Any]:
    """The whole clearing result as stored (the document whose hash is anchored)."""
    doc: dict[str, Any] = json.loads(svc.result(interval_id).result_json)
    return doc


@router.get("/{interval_id}/dispatch", response_model=list[DispatchOut], responses=ERRORS)
def dispatch(
    interval_id: IntervalId, _: Reader, svc: Service, period: Index = None
) -> list[DispatchOut]:
    with svc.db.session() as s:
        repo.get_interval(s, interval_id)
        return [DispatchOut.model_validate(d) for d in repo.dispatch_of(s, interval_id, period)]


@router.get("/{interval_id}/settlement", response_model=list[SettlementOut], responses=ERRORS)
def settlement(interval_id: IntervalId, caller: Anyone, svc: Service) -> list[SettlementOut]:
    """Your settlement for the interval (operators and auditors: everyone's)."""
    _visible(svc, interval_id, caller if caller.sees_everything else None)
    owner = None if caller.sees_everything else caller.participant_id
    with svc.db.session() as s:
        return [SettlementOut.model_validate(r) for r in repo.settlement_of(s, interval_id, owner)]


@router.get("/{interval_id}/anchor", response_model=AnchorOut, responses=ERRORS)
def anchor_of(interval_id: IntervalId, svc: Service, caller: MaybeCaller) -> AnchorOut:
    """The anchoring transaction, and the hash the registry holds now (checked live)."""
    _visible(svc, interval_id, caller)
    res = svc.result(interval_id)
    on_chain = svc.anchored_hash(interval_id)
    return AnchorOut(
        result_hash=res.result_hash,
        transaction=res.anchor_tx,
        block=res.anchor_block,
        chain_id=res.anchor_chain_id,
        on_chain_hash=on_chain,
        verified=None if on_chain is None else on_chain == res.result_hash,
    )


@router.get("/{interval_id}/steps", response_model=list[StepOut], responses=ERRORS)
def steps(interval_id: IntervalId, _: Reader, svc: Service) -> list[StepOut]:
    """What the operator loop did for this interval: every attempt of every step."""
    with svc.db.session() as s:
        repo.get_interval(s, interval_id)
        return [StepOut.model_validate(r) for r in repo.steps_of(s, interval_id)]
