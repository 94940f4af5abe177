"""Participants register with a signed message; the operator approves them and issues keys."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from feederdao.api.auth import Anyone, Operator, Participant, Reader, Service
from feederdao.api.schemas import (
    ApiKeyIn,
    ApiKeyOut,
    ApprovalIn,
    Error,
    Filter,
    ParticipantOut,
    RegistrationIn,
)

router = APIRouter(prefix="/participants", tags=["participants"])


@router.post(
    "",
    status_code=201,
    response_model=ParticipantOut,
    responses={401: {"model": Error}, 409: {"model": Error}, 422: {"model": Error}},
)
def register(body: RegistrationIn, svc: Service) -> ParticipantOut:
    """Ask to join the market at a bus with devices; the operator approves before bidding."""
    row = svc.participants.register(body.name, body.address, body.bus, body.devices, body.signature)
    return ParticipantOut.model_validate(row)


@router.get("", response_model=list[ParticipantOut])
def list_all(_: Reader, svc: Service, status: Filter = None) -> list[ParticipantOut]:
    return [ParticipantOut.model_validate(r) for r in svc.participants.list(status)]


@router.get("/me", response_model=ParticipantOut)
def me(caller: Participant, svc: Service) -> ParticipantOut:
    return ParticipantOut.model_validate(svc.participants.get(str(caller.participant_id)))


@router.get("/{participant_id}", response_model=ParticipantOut, responses={404: {"model": Error}})
def one(participant_id: str, caller: Anyone, svc: Service) -> ParticipantOut:
    if not caller.sees_everything and caller.participant_id != participant_id:
        raise HTTPException(404, f"participant {participant_id!r} does not exist")
    return ParticipantOut.model_validate(svc.participants.get(participant_id))


@router.post(
    "/{participant_id}/approve",
    response_model=ParticipantOut,
    responses={404: {"model": Error}, 409: {"model": Error}, 422: {"model": Error}},
)
def approve(participant_id: str, body: ApprovalIn, _: Operator, svc: Service) -> ParticipantOut:
    """Approve the participant's bus and devices (a device belongs to one participant)."""
    return ParticipantOut.model_validate(
        svc.participants.approve(participant_id, body.bus, body.devices)
    )


@router.post(
    "/{participant_id}/api-keys",
    status_code=201,
    response_model=ApiKeyOut,
    responses={404: {"model": Error}, 409: {"model": Error}},
)
def issue_key(participant_id: str, body: ApiKeyIn, _: Operator, svc: Service) -> ApiKeyOut:
    """Issue an API key to an approved participant; the key is shown only in this answer."""
    key = svc.keys.issue("participant", participant_id, body.label)
    return ApiKeyOut(
        key_id=key.key_id, api_key=key.api_key, role=key.role, participant_id=key.participant_id
    )
