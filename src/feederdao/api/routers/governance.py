"""Governance: the parameters in force with their provenance, and the proposals."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from feederdao.api.auth import Loop, Reader, Service
from feederdao.api.schemas import AuditOut, Filter, ParametersOut, ProposalOut

router = APIRouter(tags=["governance"])


@router.get("/governance/parameters", response_model=ParametersOut)
def parameters(svc: Service) -> ParametersOut:
    """The parameters the next clearing will use, read now by the safe reader."""
    reading = svc.governance.read_parameters()
    p = reading.parameters
    return ParametersOut(
        status=reading.status,
        values=p.values(),
        provenance=asdict(p.provenance),
        alarms=list(reading.alarms),
    )


@router.get("/governance/proposals", response_model=list[ProposalOut])
def proposals(svc: Service) -> list[ProposalOut]:
    """Every proposal on the Governor, with its state and tally (token units as strings)."""
    return [
        ProposalOut(
            id=str(p.proposal_id),
            description=p.description,
            state=p.state,
            votes_for=str(p.votes_for),
            votes_against=str(p.votes_against),
            votes_abstain=str(p.votes_abstain),
            snapshot_block=p.snapshot_block,
            deadline_block=p.deadline_block,
        )
        for p in svc.governance.proposals()
    ]


@router.get("/audit/commands", response_model=list[AuditOut], tags=["audit"])
def commands(_: Reader, op: Loop, event: Filter = None) -> list[AuditOut]:
    """The OPC UA command audit log (writes, read-backs, reconnects)."""
    return [
        AuditOut(
            time=r.pop("time"),
            event=r.pop("event"),
            fields=r,
        )
        for r in op.audit_records(event)
    ]
