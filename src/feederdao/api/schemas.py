"""Request and response bodies. Requests forbid unknown fields; numbers are strict (``"1"`` or
``true`` is not a number) and finite."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from feederdao.domain.market import MAX_BLOCKS
from feederdao.workflows.market.results import PeriodSummary

Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$", examples=["0x" + "ab" * 20])]
Signature = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{130}$")]
DeviceId = Annotated[str, Field(min_length=1, max_length=64)]
Uint32 = Annotated[int, Field(strict=True, ge=0, le=2**32 - 1)]
Int64 = Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)]
Uint63 = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
MAX_ID = 2**31 - 1  # ids and indices are 32-bit columns
Id = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]
IntervalId = Annotated[int, Path(ge=1, le=MAX_ID, description="market interval id")]
Index = Annotated[int | None, Query(ge=0, le=MAX_ID)]
#: a state, status or event name to filter by (lower-case words and dashes)
Filter = Annotated[str | None, Query(max_length=32, pattern=r"^[a-z][a-z-]*$")]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Error(BaseModel):
    error: str
    field: str | None = None


# -- participants -----------------------------------------------------------------------------


class RegistrationIn(In):
    """A participant's request to join; ``signature`` is its wallet's EIP-712 signature of the
    Register message ``{participant: address, name, bus, devices}``."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    address: Address
    bus: Uint32
    devices: Annotated[list[DeviceId], Field(max_length=50)] = []
    signature: Signature


class ApprovalIn(In):
    """The bus and devices the operator grants (the requested ones when left out)."""

    bus: Uint32 | None = None
    devices: Annotated[list[DeviceId], Field(max_length=50)] | None = None


class ParticipantOut(Out):
    id: str
    name: str
    address: str
    status: str
    requested_bus: int
    requested_devices: list[str]
    bus: int | None
    devices: list[str]
    created_at: datetime
    approved_at: datetime | None


class ApiKeyIn(In):
    label: Annotated[str, Field(max_length=200)] = ""


class NewApiKeyIn(In):
    """A key to issue from the API: a participant's (``participant_id`` of an approved
    participant) or an auditor's. Operator keys are issued on the server only
    (``feederdao db api-key operator``)."""

    role: Annotated[str, Field(max_length=16)]
    participant_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    label: Annotated[str, Field(max_length=200)] = ""


class ApiKeyInfo(Out):
    """An issued key as stored (never the key itself); ``expires_at`` for a session key (a
    wallet sign-in)."""

    id: int
    role: str
    participant_id: str | None
    label: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_why: str | None
    expires_at: datetime | None


class NonceIn(In):
    """Who is signing in, and the page asking (its URI must be on the service's domain)."""

    address: Address
    uri: Annotated[str, Field(min_length=1, max_length=512)] | None = None


class ChallengeOut(BaseModel):
    """The EIP-4361 message for the wallet to sign (``personal_sign``), and its parts."""

    message: str
    domain: str
    address: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expires_at: datetime = Field(description="the session's end (the message's expiration)")
    nonce_expires_at: datetime = Field(description="sign and send it back before this")


class WalletSignInIn(In):
    message: Annotated[str, Field(min_length=1, max_length=4096)]
    signature: Signature


class WalletSessionOut(BaseModel):
    """A participant key that stops working at ``expires_at`` (shown once)."""

    key_id: int
    api_key: str
    role: str
    participant_id: str
    address: str
    expires_at: datetime


class ApiKeyOut(BaseModel):
    key_id: int = Field(description="the key's id, to revoke or rotate it")
    api_key: str = Field(description="shown once; only its hash is stored")
    role: str
    participant_id: str | None


# -- bids -------------------------------------------------------------------------------------


class BlockIn(In):
    """One price–quantity block; what it may be is the market's bid rules (the same for every
    entry point, ``feederdao.domain.bidrules``): a 422 names the block and field."""

    price_eur_per_mwh: Finite
    quantity_mw: Finite


class BidIn(In):
    interval_id: Id
    period: Uint32
    bus: Uint32
    side: Literal["buy", "sell"]
    device_id: DeviceId | None = None
    blocks: list[BlockIn] = Field(description=f"1 to {MAX_BLOCKS} blocks")


class BidMessage(In):
    """The EIP-712 ``Bid`` message (see ``GET /market``): prices in milli-EUR/MWh, quantities
    in W; ``nonce`` is the idempotency key."""

    participant: Address
    interval: Id
    period: Uint32
    bus: Uint32
    side: Literal["buy", "sell"]
    device: Annotated[str, Field(max_length=64)] = ""
    prices: list[Int64] = Field(description=f"1 to {MAX_BLOCKS} block prices")
    quantities: list[Uint63] = Field(description="block quantities in W, as many as prices")
    nonce: Annotated[str, Field(min_length=1, max_length=128)]


class SignedBidIn(In):
    message: BidMessage
    signature: Signature


class BidOut(Out):
    id: str
    interval_id: int
    participant_id: str
    idempotency_key: str
    period: int
    bus: int
    side: str
    device_id: str | None
    blocks: list[list[float]] = Field(description="[[price EUR/MWh, quantity MW], ...]")
    auth: str
    status: str
    accepted_mw: list[float] | None
    created_at: datetime
    cancelled_at: datetime | None


# -- intervals and results --------------------------------------------------------------------


class IntervalIn(In):
    start: datetime = Field(description="first delivery period, on a 15-minute boundary, UTC")
    periods: Annotated[int, Field(strict=True, ge=1, le=96)] | None = None
    gate_closure: datetime | None = None


class AnchorOut(BaseModel):
    result_hash: str
    transaction: str | None
    block: int | None
    chain_id: int | None
    on_chain_hash: str | None = Field(None, description="read from the SettlementRegistry now")
    verified: bool = Field(description="the chain holds this anchor now (checked live)")
    reason: str | None = Field(None, description="why it is not verified")


class IntervalOut(Out):
    id: int
    start: datetime
    end: datetime
    periods: int
    period_minutes: int
    gate_closure: datetime
    state: str
    cleared_at: datetime | None
    published_at: datetime | None
    gate_closed_at: datetime | None = None
    book_bids: int | None = Field(None, description="active bids as the gate closed")
    book_hash: str | None = Field(
        None, description="SHA-256 of the sorted ids of the active bids as the gate closed"
    )
    result_hash: str | None = Field(None, description="once the result is public")
    anchor_tx: str | None = None


class PriceOut(Out):
    period: int
    bus: int
    dlmp: float
    energy: float
    loss: float
    congestion: float
    voltage: float


class DispatchOut(Out):
    period: int
    device_id: str
    bus: int
    p_mw: float
    q_mvar: float
    position: int | None


class SettlementOut(Out):
    participant_id: str
    bus: int
    bought_mwh: float
    sold_mwh: float
    energy_payment_eur: float
    fee_eur: float


class SummaryOut(BaseModel):
    interval_id: int
    state: str
    welfare_eur: float
    ac_feasible: bool
    result_hash: str
    anchor_tx: str | None
    periods: list[PeriodSummary]


class StepOut(Out):
    step: str
    attempt: int
    status: str
    reason: str = Field(description="a short reason code of a failure")
    detail: str
    at: datetime


# -- governance and system --------------------------------------------------------------------


class ParametersOut(BaseModel):
    status: str
    values: dict[str, float]
    provenance: dict[str, Any]
    alarms: list[str]


class ProposalOut(BaseModel):
    id: str
    description: str
    state: str
    votes_for: str
    votes_against: str
    votes_abstain: str
    snapshot_block: int
    deadline_block: int


class MarketOut(BaseModel):
    network: str
    buses: list[int]
    period_minutes: int
    periods_per_interval: int
    eip712_domain: dict[str, Any] | None
    eip712_types: dict[str, Any]
    wholesale_prices: Literal["file", "flat", "placeholder"] = Field(
        description="where the import and export prices come from (placeholder: not configured)"
    )
    notes: list[str] = Field(description="what a user must know about how the market runs")


class EscalationOut(BaseModel):
    interval_id: int
    step: str
    reason: str = Field(description="a short reason code (store, chain, solver, ...)")
    detail: str | None = Field(None, description="the message: operators and auditors only")


class DispatchStateOut(BaseModel):
    """Whether an operator holds dispatch (OPC UA SuspendDispatch): no publication, no push."""

    state: Literal["running", "suspended"]
    reason: str | None = None
    by: str | None = None
    since: datetime | None = None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool = Field(description="the database answers a query")
    store: Literal["ok", "busy", "read-only", "unreachable"] = Field(
        description="the database takes a write now"
    )
    chain: bool | None = Field(description="the chain's node answers (null: no chain)")
    loop: Literal["off", "ok", "failing", "stuck"] = Field(description="the operator loop")
    problems: list[str] = Field(description="reason codes of what is degraded")
    escalations: list[EscalationOut]
    wholesale_prices: Literal["file", "flat", "placeholder"]
    notes: list[str]
    dispatch: DispatchStateOut | None = Field(
        None, description="whether an operator holds dispatch (OPC UA SuspendDispatch)"
    )


class AuditOut(BaseModel):
    time: float
    event: str
    fields: dict[str, Any]
