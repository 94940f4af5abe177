"""Meters and their signed readings: the operator registers meters; readings arrive in
batches, idempotent per meter, period and device; refused batches store nothing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from feederdao.api.auth import Loop, Operator, Reader, refuse_if_limited
from feederdao.api.ratelimit import ClientLimiter
from feederdao.api.schemas import Error
from feederdao.metering.errors import MeteringError, ReadingsRefused
from feederdao.metering.readings import MeterReading
from feederdao.workflows.metering_desk import MeteringDesk

router = APIRouter(tags=["metering"])

MAX_BATCH = 5_000
Wh = Annotated[int, Field(ge=0, lt=2**63)]


async def desk(request: Request) -> MeteringDesk:
    found: MeteringDesk = request.app.state.metering
    return found


Desk = Annotated[MeteringDesk, Depends(desk)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MeterIn(Strict):
    meter: str = Field(description="The meter's own address (its signing key).")
    participant_id: str
    devices: list[str] = Field(min_length=1, max_length=64)


class MeterOut(BaseModel):
    meter: str
    participant_id: str
    devices: list[str]


class ReadingIn(Strict):
    meter: str
    interval: Annotated[int, Field(ge=0, lt=2**63)]
    period: Annotated[int, Field(ge=0, lt=2**32)]
    device: str = Field(min_length=1, max_length=200)
    imported_wh: Wh
    exported_wh: Wh
    sequence: Wh
    signature: str = Field(max_length=200, description="The meter's EIP-712 signature.")


class ReadingsIn(Strict):
    readings: list[ReadingIn] = Field(min_length=1, max_length=MAX_BATCH)


class IngestOut(BaseModel):
    accepted: int
    duplicates: int


def _reading(r: ReadingIn) -> MeterReading:
    return MeterReading(**r.model_dump())


@router.post(
    "/meters",
    status_code=201,
    response_model=MeterOut,
    responses={401: {"model": Error}, 404: {"model": Error}, 422: {"model": Error}},
)
def register_meter(body: MeterIn, _: Operator, metering: Desk) -> MeterOut:
    """Register a meter to devices of an approved participant (operator only)."""
    try:
        reg = metering.register(body.meter, body.participant_id, body.devices)
    except MeteringError as exc:
        raise HTTPException(422, str(exc)) from exc
    return MeterOut(
        meter=reg.meter,
        participant_id=reg.participant_id,
        devices=[d.device_id for d in reg.devices],
    )


@router.post(
    "/readings",
    response_model=IngestOut,
    responses={
        404: {"model": Error},
        422: {"model": Error},
        429: {"model": Error, "description": "too many refused batches from this client"},
    },
)
def post_readings(body: ReadingsIn, metering: Desk, request: Request) -> Any:
    """A batch of signed readings of one interval. The meter's signature authenticates each;
    the batch is stored whole or not at all; the same reading again is a duplicate. A client
    whose batches were refused ``refused_readings_per_minute`` times within a minute is
    answered 429 (with ``Retry-After``) before its next batch is checked."""
    limiter: ClientLimiter = request.app.state.readings_limiter
    client = refuse_if_limited(limiter, request, "refused batches of readings")
    try:
        readings = [_reading(r) for r in body.readings]
        report = metering.ingest(readings)
    except ReadingsRefused as exc:
        limiter.count(client)
        return _refused(exc)
    except MeteringError as exc:
        limiter.count(client)
        raise HTTPException(422, str(exc)) from exc
    return IngestOut(accepted=report.accepted, duplicates=report.duplicates)


def _refused(exc: ReadingsRefused) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={
            "error": str(exc),
            "field": "readings",
            "refusals": [
                {
                    "index": r.index,
                    "meter": r.meter,
                    "period": r.period,
                    "device": r.device,
                    "reason": r.reason,
                    "message": r.message,
                }
                for r in exc.refusals
            ],
        },
    )


@router.get("/intervals/{interval_id}/readings/conflicts")
def conflicts(interval_id: int, _: Reader, metering: Desk) -> list[dict[str, Any]]:
    """Readings refused because a different one for the same meter, period and device was
    held first: both, for the operator to resolve (``held`` is null when the two came in one
    refused batch, so that neither is held)."""

    def content(r: MeterReading | None) -> dict[str, int] | None:
        if r is None:
            return None
        return {"sequence": r.sequence, "imported_wh": r.imported_wh, "exported_wh": r.exported_wh}

    return [
        {
            "held": content(a),
            "refused": content(b),
            "meter": b.meter,
            "period": b.period,
            "device": b.device,
        }
        for a, b in metering.conflicts(interval_id)
    ]


STEP_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "the step failed (recorded; see the interval's steps)"},
    404: {"model": Error},
    409: {"model": Error},
    422: {"model": Error},
    503: {"model": Error},
}


class SettledOut(BaseModel):
    interval_id: int
    root: str
    readings: int
    substituted: int
    operator_units: int


class TransactionOut(BaseModel):
    interval_id: int
    transaction: str


@router.post("/intervals/{interval_id}/settle", response_model=SettledOut, responses=STEP_ERRORS)
async def settle(interval_id: int, _: Operator, op: Loop) -> SettledOut:
    """Settle the interval's metered deliveries (the loop's ``settle`` step; idempotent)."""
    done = await op.settle(interval_id)
    return SettledOut(**{k: getattr(done, k) for k in SettledOut.model_fields})


@router.post(
    "/intervals/{interval_id}/post-root", response_model=TransactionOut, responses=STEP_ERRORS
)
async def post_root(interval_id: int, _: Operator, op: Loop) -> TransactionOut:
    """Post the interval's settlement root to the vault (the ``post-root`` step; idempotent)."""
    return TransactionOut(interval_id=interval_id, transaction=await op.post_root(interval_id))


@router.post(
    "/intervals/{interval_id}/finalise", response_model=TransactionOut, responses=STEP_ERRORS
)
async def finalise(interval_id: int, _: Operator, op: Loop) -> TransactionOut:
    """Make the interval's root final once its challenge window has passed (the ``finalise``
    step; idempotent)."""
    return TransactionOut(interval_id=interval_id, transaction=await op.finalise(interval_id))


class CertifiedOut(BaseModel):
    interval_id: int
    minted: int
    held: int
    minted_wh: int


@router.post("/intervals/{interval_id}/certify", response_model=CertifiedOut, responses=STEP_ERRORS)
async def certify(interval_id: int, _: Operator, op: Loop) -> CertifiedOut:
    """Mint the settled interval's certificates of origin (the ``certify`` step; idempotent:
    what the chain holds already is not minted again)."""
    done = await op.certify(interval_id)
    return CertifiedOut(**{k: getattr(done, k) for k in CertifiedOut.model_fields})


class ResettleIn(Strict):
    readings: list[ReadingIn] = Field(
        default_factory=list,
        max_length=MAX_BATCH,
        description="The operator's corrections: signed readings the interval lacked, or a "
        "meter's conflicting reading the store recorded, to take the place of the one held.",
    )


@router.post("/intervals/{interval_id}/resettle", response_model=SettledOut, responses=STEP_ERRORS)
async def resettle(interval_id: int, _: Operator, op: Loop, body: ResettleIn | None = None) -> Any:
    """Settle again the latest settled interval after the guardian or the DAO rejected its
    root, with the operator's corrected readings; the settlement, its evidence and the
    readings are replaced at once, and the loop posts and finalises the new root. Refused
    (409) for an interval that is not the latest settled one or whose root is not rejected."""
    corrections = [_reading(r) for r in (body.readings if body else [])]
    try:
        done = await op.resettle(interval_id, corrections)
    except ReadingsRefused as exc:
        return _refused(exc)
    except MeteringError as exc:
        raise HTTPException(422, str(exc)) from exc
    return SettledOut(**{k: getattr(done, k) for k in SettledOut.model_fields})


@router.get("/intervals/{interval_id}/metered-settlement", responses={404: {"model": Error}})
def metered_settlement(interval_id: int, _: Reader, op: Loop) -> dict[str, Any]:
    """The interval's metered settlement: every account's cumulative position (token units),
    the participants' rows, the (device, period) pairs settled on schedule for want of a
    reading, the root and its transactions; and the evidence that recomputes the root."""
    row = op.metered.stored(interval_id)
    return {
        "interval_id": row.interval_id,
        "root": row.root,
        "positions": row.positions,
        "rows": row.rows,
        "substituted": row.substituted,
        "operator_units": row.operator_units,
        "posted_tx": row.posted_tx,
        "finalised_tx": row.finalised_tx,
        "evidence": op.metered.evidence(interval_id),
    }
