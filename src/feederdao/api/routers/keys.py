"""API keys: issue, list, revoke and rotate. The operator issues participants' and auditors'
keys here (or a participant's with ``/participants/{id}/api-keys``); operator keys are issued on
the server only, with ``feederdao db api-key operator``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from feederdao.api.auth import Anyone, Operator, Reader, Service
from feederdao.api.schemas import MAX_ID, ApiKeyInfo, ApiKeyOut, Error, NewApiKeyIn
from feederdao.errors import FieldError

router = APIRouter(prefix="/api-keys", tags=["api-keys"])
KeyId = Annotated[int, Path(ge=1, le=MAX_ID, description="the key's id")]
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": Error}, 409: {"model": Error}}


#: the roles whose keys the API issues (an operator key is made on the server)
ISSUED_HERE = ("participant", "auditor")


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyOut,
    responses={**ERRORS, 422: {"model": Error}},
)
def issue(body: NewApiKeyIn, _: Operator, svc: Service) -> ApiKeyOut:
    """Issue a participant's or an auditor's key; the key is shown only in this answer."""
    if body.role not in ISSUED_HERE:
        if body.role == "operator":
            raise FieldError(
                "role", "operator keys are issued on the server: feederdao db api-key operator"
            )
        raise FieldError("role", f"role {body.role!r}: choose one of {', '.join(ISSUED_HERE)}")
    key = svc.keys.issue(body.role, body.participant_id, body.label)
    return ApiKeyOut(
        key_id=key.key_id, api_key=key.api_key, role=key.role, participant_id=key.participant_id
    )


@router.get("", response_model=list[ApiKeyInfo])
def list_keys(_: Reader, svc: Service) -> list[ApiKeyInfo]:
    """Every key issued, revoked or not (never the keys themselves: only their hashes are
    stored)."""
    return [ApiKeyInfo.model_validate(k) for k in svc.keys.list()]


@router.post("/me/rotate", status_code=201, response_model=ApiKeyOut, responses=ERRORS)
def rotate_mine(caller: Anyone, svc: Service) -> ApiKeyOut:
    """Replace the key this request is made with: the answer holds the new key (shown once);
    the old one stops working now."""
    assert caller.key_id is not None
    key = svc.keys.rotate(caller.key_id)
    return ApiKeyOut(
        key_id=key.key_id, api_key=key.api_key, role=key.role, participant_id=key.participant_id
    )


@router.post("/{key_id}/revoke", response_model=ApiKeyInfo, responses=ERRORS)
def revoke(key_id: KeyId, _: Operator, svc: Service) -> ApiKeyInfo:
    """Revoke a key now (the last operator key cannot be revoked: issue another first)."""
    return ApiKeyInfo.model_validate(svc.keys.revoke(key_id))


@router.post("/{key_id}/rotate", status_code=201, response_model=ApiKeyOut, responses=ERRORS)
def rotate(key_id: KeyId, _: Operator, svc: Service) -> ApiKeyOut:
    """Issue a new key with the same role, participant and label and revoke the old one."""
    key = svc.keys.rotate(key_id)
    return ApiKeyOut(
        key_id=key.key_id, api_key=key.api_key, role=key.role, participant_id=key.participant_id
    )
