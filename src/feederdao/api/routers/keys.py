"""API keys: list, revoke and rotate (participants' keys are issued with their approval,
operators' and auditors' with ``feederdao db api-key``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from feederdao.api.auth import Anyone, Operator, Reader, Service
from feederdao.api.schemas import MAX_ID, ApiKeyInfo, ApiKeyOut, Error

router = APIRouter(prefix="/api-keys", tags=["api-keys"])
KeyId = Annotated[int, Path(ge=1, le=MAX_ID, description="the key's id")]
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": Error}, 409: {"model": Error}}


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
