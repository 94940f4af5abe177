"""``POST /intervals/{id}/re-clear``: an auditor clears a cleared interval's stored inputs again
and compares the result with the stored document and the hash anchored on chain."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel, Field

from feederdao.api.auth import Loop, Reader, Service
from feederdao.api.schemas import AnchorOut, Error, IntervalId

router = APIRouter(tags=["audit"])


class DifferenceOut(BaseModel):
    path: str = Field(description="a JSON path into the result document, e.g. $.prices.dlmp[3][7]")
    stored: str
    recomputed: str


class RecheckOut(BaseModel):
    interval_id: int
    match: bool = Field(
        description="the stored document hashes to the anchored hash, the chain holds that "
        "hash, and clearing the stored inputs again reproduces the document"
    )
    stored_hash: str = Field(description="the hash stored with the result (the one anchored)")
    stored_document_hash: str = Field(description="SHA-256 of the stored document, now")
    recomputed_hash: str = Field(
        description="SHA-256 of the re-cleared document (its solver timings differ)"
    )
    comparable_hash_stored: str
    comparable_hash_recomputed: str
    first_difference: DifferenceOut | None
    ignored: list[str] = Field(description="fields left out of the comparison (timings)")
    anchor: AnchorOut


@router.post(
    "/intervals/{interval_id}/re-clear",
    response_model=RecheckOut,
    responses={404: {"model": Error}, 409: {"model": Error}},
)
async def re_clear(interval_id: IntervalId, _: Reader, svc: Service, op: Loop) -> RecheckOut:
    """Clear the interval's stored inputs again (its book, the parameters it was cleared with,
    the participants approved by then) and compare: the result document field by field (solver
    timings left out), its hash with the stored one, and the stored hash with the chain's."""
    check = await op.clearings.run(lambda: svc.clearing.recheck(interval_id))
    anchor = await op.clearings.run(lambda: svc.anchoring.status(interval_id))
    diff = check.first_difference
    return RecheckOut(
        interval_id=interval_id,
        match=check.match and anchor.verified and anchor.on_chain_hash == check.stored_hash,
        stored_hash=check.stored_hash,
        stored_document_hash=check.stored_document_hash,
        recomputed_hash=check.recomputed_hash,
        comparable_hash_stored=check.comparable_hash_stored,
        comparable_hash_recomputed=check.comparable_hash_recomputed,
        first_difference=DifferenceOut(**asdict(diff)) if diff is not None else None,
        ignored=list(check.ignored),
        anchor=AnchorOut.model_validate(asdict(anchor)),
    )
