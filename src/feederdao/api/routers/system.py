"""Health, metrics, and what a client needs to sign messages."""

from __future__ import annotations

from dataclasses import asdict

import anyio
from fastapi import APIRouter, Request, Response

from feederdao.api.auth import Loop, MaybeCaller, Reader, Service
from feederdao.api.schemas import DispatchStateOut, EscalationOut, HealthOut, MarketOut
from feederdao.governance.signing import BID_TYPES, REGISTER_TYPES
from feederdao.workflows.market.system import Health

router = APIRouter(tags=["system"])

#: how long /health waits for its checks; a store that takes longer is reported busy
HEALTH_TIMEOUT_S = 3.0


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def health(svc: Service, op: Loop, caller: MaybeCaller, response: Response) -> HealthOut:
    """``ok``, or ``degraded`` (HTTP 503) with the reason codes of what is wrong: the database
    cannot be read or written, the chain is unreachable, a gate is overdue, the operator loop
    fails or is stuck, or a step was escalated. Anyone sees each escalated step and its reason
    code; operators and auditors also see its message. ``dispatch`` says whether an operator
    holds dispatch."""
    loop = op.status()
    escalations = []
    got: Health | None = None
    with anyio.move_on_after(HEALTH_TIMEOUT_S):
        escalations = await anyio.to_thread.run_sync(op.escalations, abandon_on_cancel=True)
        got = await anyio.to_thread.run_sync(
            lambda: svc.system.health(escalations, loop.state), abandon_on_cancel=True
        )
    sees = caller is not None and caller.sees_everything
    shown = [
        EscalationOut(
            interval_id=e.interval_id,
            step=e.step,
            reason=e.reason,
            detail=e.detail if sees else None,
        )
        for e in escalations
    ]
    if got is None:  # the checks did not finish in time: the store is blocked
        response.status_code = 503
        return HealthOut(
            status="degraded",
            database=False,
            store="busy",
            chain=None,
            loop=loop.state,
            problems=["store-busy"],
            escalations=shown,
            wholesale_prices=svc.ctx.prices.kind,
            notes=list(svc.system.notes()),
            dispatch=DispatchStateOut.model_validate(op.control.state()),
        )
    if not got.ok:
        response.status_code = 503
    return HealthOut(
        status="ok" if got.ok else "degraded",
        database=got.database,
        store=got.store,
        chain=got.chain,
        loop=loop.state,
        problems=list(got.problems),
        escalations=shown,
        wholesale_prices=got.wholesale_prices,
        notes=list(got.notes),
        dispatch=DispatchStateOut.model_validate(op.control.state()),
    )


@router.get("/escalations", response_model=list[EscalationOut])
async def escalations(_: Reader, op: Loop) -> list[EscalationOut]:
    """The escalated steps with their messages (what ``/health`` reports as ``escalated``), until
    an operator retries each successfully or acknowledges it; answered 200 whatever the health,
    for the operator's console."""
    rows = await anyio.to_thread.run_sync(op.escalations)
    return [EscalationOut(**asdict(e)) for e in rows]


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/market", response_model=MarketOut)
def market(svc: Service) -> MarketOut:
    """The feeder's buses and the EIP-712 domain and types to sign registrations and bids."""
    info = svc.system.market()
    return MarketOut(
        network=info.network,
        buses=list(info.buses),
        period_minutes=info.period_minutes,
        periods_per_interval=info.periods_per_interval,
        eip712_domain=info.eip712_domain,
        eip712_types={"Bid": BID_TYPES, "Register": REGISTER_TYPES},
        wholesale_prices=info.wholesale_prices,
        notes=list(info.notes),
    )
