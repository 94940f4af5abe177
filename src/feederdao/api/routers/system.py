"""Health, metrics, and what a client needs to sign messages."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from feederdao.api.auth import Loop, Service
from feederdao.api.schemas import HealthOut, MarketOut
from feederdao.governance.signing import BID_TYPES, REGISTER_TYPES

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthOut)
def health(svc: Service, op: Loop, response: Response) -> HealthOut:
    """``ok``, or ``degraded`` (HTTP 503) when the database is down or a step was escalated."""
    got = svc.system.health(op.escalations())
    if not got.ok:
        response.status_code = 503
    return HealthOut(
        status="ok" if got.ok else "degraded",
        database=got.database,
        chain=got.chain,
        escalations=list(got.escalations),
        wholesale_prices=got.wholesale_prices,
        notes=list(got.notes),
    )


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
