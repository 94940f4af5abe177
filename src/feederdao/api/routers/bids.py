"""Bids and offers: API-key or EIP-712-signed submissions, read and cancel your own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from feederdao.api.auth import Anyone, Participant, Service
from feederdao.api.schemas import MAX_ID, BidIn, BidOut, Error, Filter, SignedBidIn
from feederdao.store.models import BidRow

router = APIRouter(prefix="/bids", tags=["bids"])

# Every endpoint is a plain function that FastAPI runs in its thread pool: a submission commits
# to the store, and a store that is locked or slow must not stall the event loop (nor /health).

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error},
    402: {"model": Error, "description": "the participant's collateral cannot cover the bid"},
    403: {"model": Error},
    404: {"model": Error},
    409: {"model": Error},
    422: {"model": Error},
    503: {"model": Error, "description": "the store is busy or read-only: see Retry-After"},
}


def _answer(request: Request, response: Response, row: BidRow, created: bool, auth: str) -> BidOut:
    request.app.state.metrics.bids.labels("accepted" if created else "replayed", auth).inc()
    response.status_code = 201 if created else 200
    return BidOut.model_validate(row)


@router.post("", status_code=201, response_model=BidOut, responses=ERRORS)
def submit(
    body: BidIn,
    caller: Participant,
    svc: Service,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=128)],
) -> BidOut:
    """Submit a bid with a participant's API key. It is stored before the answer is sent; the
    same ``Idempotency-Key`` with the same bid answers 200 with the stored bid."""
    row, created = svc.bids.submit(
        str(caller.participant_id),
        body.interval_id,
        body.period,
        body.bus,
        body.side,
        [(b.price_eur_per_mwh, b.quantity_mw) for b in body.blocks],
        idempotency_key,
        body.device_id,
    )
    return _answer(request, response, row, created, "api-key")


@router.post("/signed", status_code=201, response_model=BidOut, responses=ERRORS)
def submit_signed(body: SignedBidIn, svc: Service, request: Request, response: Response) -> BidOut:
    """Submit a bid signed by the participant's wallet (EIP-712 ``Bid``, domain from
    ``GET /market``); no API key needed. The message's ``nonce`` is the idempotency key."""
    row, created = svc.bids.submit_signed(body.message.model_dump(), body.signature)
    return _answer(request, response, row, created, "eip712")


@router.get("", response_model=list[BidOut])
def list_bids(
    caller: Anyone,
    svc: Service,
    interval_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Filter = None,
) -> list[BidOut]:
    """Your bids (operators and auditors: everyone's)."""
    owner = None if caller.sees_everything else caller.participant_id
    return [BidOut.model_validate(r) for r in svc.bids.list(owner, interval_id, status)]


@router.get("/{bid_id}", response_model=BidOut, responses={404: {"model": Error}})
def one(bid_id: str, caller: Anyone, svc: Service) -> BidOut:
    owner = None if caller.sees_everything else caller.participant_id
    return BidOut.model_validate(svc.bids.get(bid_id, owner))


@router.delete("/{bid_id}", response_model=BidOut, responses=ERRORS)
def cancel(bid_id: str, caller: Participant, svc: Service) -> BidOut:
    """Cancel one of your bids until the interval's gate closes."""
    return BidOut.model_validate(svc.bids.cancel(str(caller.participant_id), bid_id))
