"""The tables. Money in EUR, power in MW, prices in EUR/MWh, times in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class ParticipantRow(Base):
    """A market participant: its Ethereum address, the bus and devices the operator approved."""

    __tablename__ = "participants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(42), unique=True)  # lower-case hex
    requested_bus: Mapped[int]
    requested_devices: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|...
    bus: Mapped[int | None]
    devices: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]


class ApiKeyRow(Base):
    """An API key (only its SHA-256 is kept) and the role it carries."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # operator|participant|auditor
    participant_id: Mapped[str | None] = mapped_column(ForeignKey("participants.id"))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_why: Mapped[str | None] = mapped_column(String(16))  # revoked|rotated
    #: a session key (a wallet sign-in) stops working at this time; other keys never expire
    expires_at: Mapped[datetime | None]


class LoginNonceRow(Base):
    """A nonce handed out for a wallet sign-in (EIP-4361) to one address: it may be used once,
    before ``expires_at``."""

    __tablename__ = "login_nonces"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))  # lower-case hex
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class IntervalRow(Base):
    """A market interval: ``periods`` delivery periods from ``start``; bids until ``gate_closure``.

    ``state`` moves open → gate-closed → cleared → published; ``failed`` records a clearing that
    could not be done (the reason is in the operator steps)."""

    __tablename__ = "market_intervals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    start: Mapped[datetime] = mapped_column(unique=True)
    periods: Mapped[int]
    period_minutes: Mapped[int]
    gate_closure: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    parameters_id: Mapped[int | None] = mapped_column(ForeignKey("applied_parameters.id"))
    #: the book as the gate closed: when, how many active bids, and a hash of their ids
    gate_closed_at: Mapped[datetime | None]
    book_bids: Mapped[int | None]
    book_hash: Mapped[str | None] = mapped_column(String(64))


class BidRow(Base):
    """A bid or offer as submitted (blocks ``[[price, quantity], ...]``), with how it was
    authenticated and, after clearing, the accepted MW of each block."""

    __tablename__ = "bids"
    __table_args__ = (
        UniqueConstraint("participant_id", "idempotency_key", name="uq_bid_idempotency"),
        Index("ix_bids_interval", "interval_id", "participant_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    interval_id: Mapped[int] = mapped_column(ForeignKey("market_intervals.id"))
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(64))
    period: Mapped[int]
    bus: Mapped[int]
    side: Mapped[str] = mapped_column(String(4))
    device_id: Mapped[str | None] = mapped_column(String(64))
    blocks: Mapped[list[Any]]
    auth: Mapped[str] = mapped_column(String(16))  # api-key|eip712
    signature: Mapped[str | None] = mapped_column(String(140))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|cancelled
    accepted_mw: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None]


class AppliedParametersRow(Base):
    """A parameter set the clearing used, with its provenance and the reader's verdict."""

    __tablename__ = "applied_parameters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    read_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(24))  # fresh|last-known-good|safe-defaults|...
    values: Mapped[dict[str, Any]]
    provenance: Mapped[dict[str, Any]]
    alarms: Mapped[list[Any]] = mapped_column(default=list)


class ClearingResultRow(Base):
    """An interval's clearing result: the whole result as JSON, its hash, and the anchor."""

    __tablename__ = "clearing_results"

    interval_id: Mapped[int] = mapped_column(ForeignKey("market_intervals.id"), primary_key=True)
    result_json: Mapped[str] = mapped_column(Text)
    result_hash: Mapped[str] = mapped_column(String(66))
    welfare_eur: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    ac_feasible: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    anchor_tx: Mapped[str | None] = mapped_column(String(66))
    anchor_block: Mapped[int | None] = mapped_column(BigInteger)
    anchor_chain_id: Mapped[int | None] = mapped_column(BigInteger)
    anchor_block_hash: Mapped[str | None] = mapped_column(String(66))
    anchor_registry: Mapped[str | None] = mapped_column(String(42))
    #: the prices as [period][bus] arrays, gzipped JSON (:mod:`feederdao.store.grids`); null for
    #: results stored before it was kept
    price_grid_gz: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: the same with the DLMP alone (a first paint's)
    dlmp_grid_gz: Mapped[bytes | None] = mapped_column(LargeBinary)


class PriceRow(Base):
    """The DLMP of one bus in one period and its parts."""

    __tablename__ = "prices"

    interval_id: Mapped[int] = mapped_column(ForeignKey("market_intervals.id"), primary_key=True)
    period: Mapped[int] = mapped_column(primary_key=True)
    bus: Mapped[int] = mapped_column(primary_key=True)
    dlmp: Mapped[float] = mapped_column(Float)
    energy: Mapped[float] = mapped_column(Float)
    loss: Mapped[float] = mapped_column(Float)
    congestion: Mapped[float] = mapped_column(Float)
    voltage: Mapped[float] = mapped_column(Float)


class DispatchRow(Base):
    """A device's scheduled setpoint in one period."""

    __tablename__ = "dispatch"

    interval_id: Mapped[int] = mapped_column(ForeignKey("market_intervals.id"), primary_key=True)
    period: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bus: Mapped[int]
    p_mw: Mapped[float] = mapped_column(Float)
    q_mvar: Mapped[float] = mapped_column(Float)
    position: Mapped[int | None]


class SettlementRowModel(Base):
    """A participant's energy and money for one interval (positive payment: it pays)."""

    __tablename__ = "settlements"

    interval_id: Mapped[int] = mapped_column(ForeignKey("market_intervals.id"), primary_key=True)
    participant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bus: Mapped[int]
    bought_mwh: Mapped[float] = mapped_column(Float)
    sold_mwh: Mapped[float] = mapped_column(Float)
    energy_payment_eur: Mapped[float] = mapped_column(Float)
    fee_eur: Mapped[float] = mapped_column(Float)


class OperatorStepRow(Base):
    """One attempt of one step of the operator loop (clear, anchor, publish, push:k)."""

    __tablename__ = "operator_steps"
    __table_args__ = (Index("ix_steps_interval", "interval_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    interval_id: Mapped[int] = mapped_column(ForeignKey("market_intervals.id"))
    step: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))  # ok|failed|escalated|acknowledged
    #: a short public reason code of a failure (store, chain, solver, ...); details in ``detail``
    reason: Mapped[str] = mapped_column(String(32), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class CommandAuditRow(Base):
    """One entry of the OPC UA command audit log."""

    __tablename__ = "command_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    event: Mapped[str] = mapped_column(String(32))
    cycle: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]]


class KeyValueRow(Base):
    """Small named documents (the parameter reader's cursor and last-known-good set)."""

    __tablename__ = "state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeteredSettlementRow(Base):
    """An interval's metered settlement: every account's cumulative net position after it
    (token units, ``{address: units}``), the participants' rows, the (device, period) pairs
    settled on their schedule for want of a reading, the Merkle root, and what became of the
    root on chain."""

    __tablename__ = "metered_settlements"

    interval_id: Mapped[int] = mapped_column(ForeignKey("market_intervals.id"), primary_key=True)
    root: Mapped[str] = mapped_column(String(66))
    positions: Mapped[dict[str, Any]]
    rows: Mapped[list[Any]]
    substituted: Mapped[list[Any]]
    operator_units: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    posted_tx: Mapped[str | None] = mapped_column(String(66))
    posted_at: Mapped[datetime | None]
    finalised_tx: Mapped[str | None] = mapped_column(String(66))
    finalised_at: Mapped[datetime | None]


class MeterRow(Base):
    """A meter (its own signing address, lower-case hex) registered by the operator to one
    participant."""

    __tablename__ = "meters"

    meter: Mapped[str] = mapped_column(String(42), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeterDeviceRow(Base):
    """A device behind a meter and what it can exchange with the grid (W); a device has one
    meter at most."""

    __tablename__ = "meter_devices"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    meter: Mapped[str] = mapped_column(ForeignKey("meters.meter"))
    max_import_w: Mapped[float] = mapped_column(Float)
    max_export_w: Mapped[float] = mapped_column(Float)


class MeterReadingRow(Base):
    """An accepted, signed reading: one per meter, interval, period and device."""

    __tablename__ = "meter_readings"

    meter: Mapped[str] = mapped_column(String(42), primary_key=True)
    interval_id: Mapped[int] = mapped_column(ForeignKey("market_intervals.id"), primary_key=True)
    period: Mapped[int] = mapped_column(primary_key=True)
    device: Mapped[str] = mapped_column(String(200), primary_key=True)
    imported_wh: Mapped[int] = mapped_column(BigInteger)
    exported_wh: Mapped[int] = mapped_column(BigInteger)
    sequence: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReadingConflictRow(Base):
    """A signed reading refused because a different one for the same meter, interval, period
    and device was held first: kept for the operator, never applied."""

    __tablename__ = "reading_conflicts"
    __table_args__ = (Index("ix_reading_conflicts_interval", "interval_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter: Mapped[str] = mapped_column(String(42))
    interval_id: Mapped[int] = mapped_column(ForeignKey("market_intervals.id"))
    period: Mapped[int]
    device: Mapped[str] = mapped_column(String(200))
    imported_wh: Mapped[int] = mapped_column(BigInteger)
    exported_wh: Mapped[int] = mapped_column(BigInteger)
    sequence: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
