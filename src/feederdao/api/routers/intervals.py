"""Market intervals: open, gate closure, clear, anchor, publish, push; prices, results,
settlement; the loop's steps, and an operator's acknowledgement of an escalated one."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import Field

from feederdao.api.auth import Anyone, Loop, MaybeCaller, Operator, Reader, Service
from feederdao.api.schemas import (
    AnchorOut,
    DispatchOut,
    Error,
    Filter,
    In,
    Index,
    IntervalId,
    IntervalIn,
    IntervalOut,
    PriceOut,
    SettlementOut,
    StepOut,
    SummaryOut,
)
from feederdao.workflows.market import MarketService
from feederdao.workflows.market.intervals import IntervalView

router = APIRouter(prefix="/intervals", tags=["intervals"])
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Error},
    409: {"model": Error},
    422: {"model": Error},
}


def _out(view: IntervalView) -> IntervalOut:
    row = view.row
    return IntervalOut.model_validate(
        {
            **{c: getattr(row, c) for c in IntervalOut.model_fields if hasattr(row, c)},
            "end": view.end,
            "result_hash": view.result_hash,
            "anchor_tx": view.anchor_tx,
        }
    )


def _sees(caller: Any) -> bool:
    return caller is not None and bool(caller.sees_everything)


@router.post("", status_code=201, response_model=IntervalOut, responses=ERRORS)
def open_interval(body: IntervalIn, _: Operator, svc: Service, op: Loop) -> IntervalOut:
    """Open an interval for bids (gate closure defaults to the configured lead before start)."""
    row = svc.intervals.open(body.start, body.periods, body.gate_closure)
    op.events.publish("interval", interval_id=row.id, state=row.state)
    return _out(svc.intervals.view(row.id, True))


@router.get("", response_model=list[IntervalOut])
def list_intervals(
    svc: Service,
    caller: MaybeCaller,
    state: Filter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IntervalOut]:
    return [_out(v) for v in svc.intervals.views(state, limit, _sees(caller))]


@router.get("/{interval_id}", response_model=IntervalOut, responses=ERRORS)
def one(interval_id: IntervalId, svc: Service, caller: MaybeCaller) -> IntervalOut:
    return _out(svc.intervals.view(interval_id, _sees(caller)))


@router.post("/{interval_id}/gate-closure", response_model=IntervalOut, responses=ERRORS)
def close_gate(interval_id: IntervalId, _: Operator, svc: Service, op: Loop) -> IntervalOut:
    """Close the gate now: no more bids or cancellations."""
    row = svc.intervals.close_gate(interval_id)
    op.events.publish("interval", interval_id=row.id, state=row.state)
    return _out(svc.intervals.view(interval_id, True))


@router.post("/{interval_id}/clear", response_model=IntervalOut, responses=ERRORS)
async def clear(interval_id: IntervalId, _: Operator, svc: Service, op: Loop) -> IntervalOut:
    """Clear with the parameters the safe reader returns; persist prices, dispatch, settlement.
    Bids that no longer pass the bid rules are left out and named in the interval's steps."""
    await op.clear(interval_id)
    return _out(await asyncio.to_thread(svc.intervals.view, interval_id, True))


@router.post("/{interval_id}/anchor", response_model=AnchorOut, responses=ERRORS)
async def anchor(interval_id: IntervalId, _: Operator, op: Loop) -> AnchorOut:
    """Write the result's hash to the SettlementRegistry (idempotent)."""
    a = await op.anchor(interval_id)
    return AnchorOut(
        result_hash=a.result_hash,
        transaction=a.transaction,
        block=a.block,
        chain_id=a.chain_id,
        on_chain_hash=a.result_hash,
        verified=True,
        reason=None,
    )


@router.post("/{interval_id}/publish", response_model=IntervalOut, responses=ERRORS)
async def publish(interval_id: IntervalId, _: Operator, svc: Service, op: Loop) -> IntervalOut:
    """Publish the cleared interval (API and OPC UA) so setpoints can be pushed."""
    await op.publish(interval_id)
    return _out(await asyncio.to_thread(svc.intervals.view, interval_id, True))


@router.post("/{interval_id}/push/{period}", response_model=list[StepOut], responses=ERRORS)
async def push(
    interval_id: IntervalId, period: int, _: Operator, svc: Service, op: Loop
) -> list[StepOut]:
    """Push ``period``'s setpoints to the feeder now (the loop's ``push:<period>`` step, e.g. a
    retry of an escalated push): only while the period runs. Answers the interval's steps."""
    await op.push_now(interval_id, period)
    return await _steps(svc, interval_id)


class AcknowledgeIn(In):
    note: Annotated[str, Field(max_length=500)] = ""


@router.post(
    "/{interval_id}/steps/{step}/acknowledge", response_model=list[StepOut], responses=ERRORS
)
async def acknowledge(
    interval_id: IntervalId,
    step: Annotated[str, Path(max_length=32)],
    body: AcknowledgeIn,
    caller: Operator,
    svc: Service,
    op: Loop,
) -> list[StepOut]:
    """Take note of an escalated step that will not be retried (a push whose period is over):
    recorded with who and the note, it leaves ``/health``'s escalations and the loop does not
    run it again. Answers the interval's steps."""
    await op.acknowledge(interval_id, step, caller.who, body.note)
    return await _steps(svc, interval_id)


async def _steps(svc: MarketService, interval_id: int) -> list[StepOut]:
    rows = await asyncio.to_thread(svc.intervals.steps, interval_id)
    return [StepOut.model_validate(r) for r in rows]


@router.get("/{interval_id}/prices", response_model=list[PriceOut], responses=ERRORS)
def prices(
    interval_id: IntervalId,
    svc: Service,
    caller: MaybeCaller,
    bus: Index = None,
    period: Index = None,
) -> list[PriceOut]:
    """DLMP per bus and period with its energy, loss, congestion and voltage parts."""
    rows = svc.results.prices(interval_id, _sees(caller), bus, period)
    return [PriceOut.model_validate(p) for p in rows]


@router.get("/{interval_id}/summary", response_model=SummaryOut, responses=ERRORS)
def summary(interval_id: IntervalId, svc: Service, caller: MaybeCaller) -> SummaryOut:
    """The public price and dispatch summary of an interval."""
    got = svc.results.summary(interval_id, _sees(caller))
    return SummaryOut(
        interval_id=got.interval_id,
        state=got.state,
        welfare_eur=got.welfare_eur,
        ac_feasible=got.ac_feasible,
        result_hash=got.result_hash,
        anchor_tx=got.anchor_tx,
        periods=list(got.periods),
    )


@router.get("/{interval_id}/result", responses=ERRORS)
def result(interval_id: IntervalId, _: Reader, svc: Service) -> dict[str, Any]:
    """The whole clearing result as stored (the document whose hash is anchored)."""
    return svc.results.document(interval_id)


@router.get("/{interval_id}/dispatch", response_model=list[DispatchOut], responses=ERRORS)
def dispatch(
    interval_id: IntervalId, _: Reader, svc: Service, period: Index = None
) -> list[DispatchOut]:
    return [DispatchOut.model_validate(d) for d in svc.results.dispatch(interval_id, period)]


@router.get("/{interval_id}/settlement", response_model=list[SettlementOut], responses=ERRORS)
def settlement(interval_id: IntervalId, caller: Anyone, svc: Service) -> list[SettlementOut]:
    """Your settlement for the interval (operators and auditors: everyone's)."""
    owner = None if caller.sees_everything else caller.participant_id
    rows = svc.results.settlement(interval_id, caller.sees_everything, owner)
    return [SettlementOut.model_validate(r) for r in rows]


@router.get("/{interval_id}/anchor", response_model=AnchorOut, responses=ERRORS)
def anchor_of(interval_id: IntervalId, svc: Service, caller: MaybeCaller) -> AnchorOut:
    """The anchoring transaction, and the hash the registry holds now (checked live)."""
    svc.intervals.visible(interval_id, _sees(caller))
    return AnchorOut.model_validate(asdict(svc.anchoring.status(interval_id)))


@router.get("/{interval_id}/steps", response_model=list[StepOut], responses=ERRORS)
def steps(interval_id: IntervalId, _: Reader, svc: Service) -> list[StepOut]:
    """What the operator loop did for this interval: every attempt of every step."""
    return [StepOut.model_validate(r) for r in svc.intervals.steps(interval_id)]
