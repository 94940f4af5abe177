"""Health, metrics, and what a client needs to sign messages."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from feederdao.api.auth import Service
from feederdao.api.schemas import DispatchStateOut, HealthOut, MarketOut
from feederdao.governance.signing import BID_TYPES, REGISTER_TYPES
from feederdao.grid_model.profiles import RESOLUTION_MIN

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthOut)
def health(svc: Service, request: Request, response: Response) -> HealthOut:
    """``ok``, or ``degraded`` (HTTP 503) when the database is down or a step was escalated;
    ``dispatch`` says whether an operator holds dispatch."""
    db = svc.db.ping()
    chain = None
    if svc.chain is not None:
        try:
            chain = bool(svc.chain.w3.is_connected())
        except Exception:
            chain = False
    escalations = request.app.state.operator.escalations()
    ok = db and chain is not False and not escalations
    if not ok:
        response.status_code = 503
    control = request.app.state.operator.control
    return HealthOut(
        status="ok" if ok else "degraded",
        database=db,
        chain=chain,
        escalations=escalations,
        dispatch=DispatchStateOut.model_validate(control.state()),
    )


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    return Response(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/market", response_model=MarketOut)
def market(svc: Service) -> MarketOut:
    """The feeder's buses and the EIP-712 domain and types to sign registrations and bids."""
    return MarketOut(
        network=svc.network.view.name,
        buses=[b.index for b in svc.network.view.buses],
        period_minutes=RESOLUTION_MIN,
        periods_per_interval=svc.settings.periods_per_interval,
        eip712_domain=svc.domain.as_dict() if svc.chain is not None else None,
        eip712_types={"Bid": BID_TYPES, "Register": REGISTER_TYPES},
    )
