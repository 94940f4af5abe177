"""Dispatch hold from the API: the same as OPC UA ``SuspendDispatch``/``ResumeDispatch`` on the
market server. While held, the operator loop still clears and anchors but publishes nothing and
pushes no setpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import Field

from feederdao.api.auth import Loop, Operator
from feederdao.api.schemas import DispatchStateOut, In

router = APIRouter(prefix="/dispatch", tags=["dispatch"])


class SuspendIn(In):
    reason: Annotated[str, Field(min_length=1, max_length=200)]


@router.get("", response_model=DispatchStateOut)
def state(op: Loop) -> DispatchStateOut:
    """Whether an operator holds dispatch."""
    return DispatchStateOut.model_validate(op.control.state())


@router.post("/suspend", response_model=DispatchStateOut)
async def suspend(body: SuspendIn, caller: Operator, op: Loop) -> DispatchStateOut:
    """Hold dispatch: no publication and no setpoint push until resumed."""
    await op.control.suspend(body.reason, caller.who)
    op.events.publish("dispatch", state="suspended")
    return DispatchStateOut.model_validate(op.control.state())


@router.post("/resume", response_model=DispatchStateOut)
async def resume(caller: Operator, op: Loop) -> DispatchStateOut:
    """Release the hold."""
    await op.control.resume(caller.who)
    op.events.publish("dispatch", state="running")
    return DispatchStateOut.model_validate(op.control.state())
