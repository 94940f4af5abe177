"""Repository functions: each takes a Session and leaves committing to the caller's unit of work
(``Database.session()``), so one API call or operator step is one transaction."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from feederdao.domain.clearing import ClearingResult
from feederdao.errors import FieldError
from feederdao.store.errors import (
    ConflictError,
    GateClosedError,
    NotFoundError,
    StateConflictError,
)
from feederdao.store.grids import PARTS as GRID_PARTS
from feederdao.store.grids import price_grid
from feederdao.store.models import (
    ApiKeyRow,
    AppliedParametersRow,
    BidRow,
    ClearingResultRow,
    DispatchRow,
    IntervalRow,
    KeyValueRow,
    LoginNonceRow,
    MeterDeviceRow,
    MeteredSettlementRow,
    MeterReadingRow,
    MeterRow,
    OperatorStepRow,
    ParticipantRow,
    PriceRow,
    ReadingConflictRow,
    SettlementRowModel,
    utcnow,
)

ROLES = ("operator", "participant", "auditor")
KEY_PREFIX = "fdk_"

# -- participants -----------------------------------------------------------------------------


def register_participant(
    s: Session, name: str, address: str, bus: int, devices: Sequence[str]
) -> ParticipantRow:
    """A pending participant asking for ``bus`` and ``devices``; the operator approves it."""
    addr = address.lower()
    if s.scalar(select(ParticipantRow.id).where(ParticipantRow.address == addr)):
        raise ConflictError(f"address {address} is already registered")
    row = ParticipantRow(
        id="p-" + uuid.uuid4().hex[:12],
        name=name,
        address=addr,
        requested_bus=bus,
        requested_devices=list(devices),
        status="pending",
        bus=None,
        devices=[],
    )
    s.add(row)
    s.flush()
    return row


def get_participant(s: Session, participant_id: str) -> ParticipantRow:
    row = s.get(ParticipantRow, participant_id)
    if row is None:
        raise NotFoundError(f"participant {participant_id!r} does not exist")
    return row


def participant_by_address(s: Session, address: str) -> ParticipantRow | None:
    return s.scalar(select(ParticipantRow).where(ParticipantRow.address == address.lower()))


def list_participants(s: Session, status: str | None = None) -> list[ParticipantRow]:
    q = select(ParticipantRow).order_by(ParticipantRow.created_at, ParticipantRow.id)
    if status:
        q = q.where(ParticipantRow.status == status)
    return list(s.scalars(q))


def approve_participant(
    s: Session, participant_id: str, bus: int, devices: Sequence[str]
) -> ParticipantRow:
    """Approve the bus/device mapping (it may differ from the request); devices are exclusive."""
    row = get_participant(s, participant_id)
    for other in list_participants(s, "approved"):
        if other.id == participant_id:
            continue
        taken = set(other.devices) & set(devices)
        if taken:
            raise ConflictError(
                f"device(s) {', '.join(sorted(taken))} already belong to participant {other.id!r}"
            )
    row.status, row.bus, row.devices, row.approved_at = "approved", bus, list(devices), utcnow()
    s.flush()
    return row


# -- API keys ---------------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_api_key(
    s: Session,
    role: str,
    participant_id: str | None = None,
    label: str = "",
    expires_at: datetime | None = None,
) -> tuple[int, str]:
    """A new API key for ``role``: ``(key id, secret)``. Only the secret's hash is stored, so
    the secret is shown once. A key with ``expires_at`` (a session) stops working then."""
    if role not in ROLES:
        raise FieldError("role", f"role {role!r}: choose one of {', '.join(ROLES)}")
    if (role == "participant") != (participant_id is not None):
        raise FieldError(
            "participant_id", "a participant key needs a participant; other roles take none"
        )
    if participant_id is not None:
        part = get_participant(s, participant_id)
        if part.status != "approved":
            raise ConflictError(f"participant {participant_id!r} is {part.status}, not approved")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        key_hash=_digest(secret),
        role=role,
        participant_id=participant_id,
        label=label,
        expires_at=expires_at,
    )
    s.add(row)
    s.flush()
    return row.id, secret


def identify(
    s: Session, secret: str, now: datetime | None = None
) -> tuple[str, str | None, int] | None:
    """``(role, participant_id, key id)`` of a valid key (not revoked, not expired at ``now``);
    None otherwise."""
    row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == _digest(secret)))
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return None
    return row.role, row.participant_id, row.id


def list_api_keys(s: Session) -> list[ApiKeyRow]:
    return list(s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)))


def get_api_key(s: Session, key_id: int) -> ApiKeyRow:
    row = s.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFoundError(f"API key {key_id} does not exist")
    return row


def revoke_api_key(s: Session, key_id: int, now: datetime, why: str = "revoked") -> ApiKeyRow:
    """Revoke a key at once (revoking a revoked key changes nothing). The last valid operator
    key cannot be revoked: issue another first."""
    row = get_api_key(s, key_id)
    if row.revoked_at is not None:
        return row
    if row.role == "operator" and why == "revoked" and count_keys(s, "operator") <= 1:
        raise StateConflictError(
            f"API key {key_id} is the last operator key; issue another one first "
            "(feederdao db api-key operator)"
        )
    row.revoked_at, row.revoked_why = now, why
    s.flush()
    return row


def rotate_api_key(s: Session, key_id: int, now: datetime) -> tuple[int, str]:
    """A new key with the same role, participant and label; the old one is revoked in the same
    transaction. ``(new key id, secret)``."""
    old = get_api_key(s, key_id)
    if old.revoked_at is not None:
        raise StateConflictError(f"API key {key_id} is revoked; it cannot be rotated")
    new = issue_api_key(s, old.role, old.participant_id, old.label)
    old.revoked_at, old.revoked_why = now, "rotated"
    s.flush()
    return new


def count_keys(s: Session, role: str) -> int:
    return int(
        s.scalar(select(func.count()).where(ApiKeyRow.role == role, ApiKeyRow.revoked_at.is_(None)))
        or 0
    )


# -- wallet sign-in nonces --------------------------------------------------------------------

NonceUse = Literal["ok", "unknown", "other-address", "expired", "used"]


def add_login_nonce(s: Session, address: str, now: datetime, ttl_s: float) -> LoginNonceRow:
    """A fresh single-use nonce for ``address``, valid ``ttl_s`` from ``now``. The nonces
    expired by ``now`` are deleted on the way (a used or expired nonce is refused either way)."""
    s.execute(delete(LoginNonceRow).where(LoginNonceRow.expires_at <= now))
    row = LoginNonceRow(
        nonce=secrets.token_hex(16),
        address=address.lower(),
        issued_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
    )
    s.add(row)
    s.flush()
    return row


def keep_newest_login_nonces(s: Session, address: str, now: datetime, keep: int) -> int:
    """Leave ``address`` at most ``keep`` outstanding nonces, dropping its oldest; how many
    were dropped."""
    outstanding = s.scalars(
        select(LoginNonceRow.nonce)
        .where(
            LoginNonceRow.address == address.lower(),
            LoginNonceRow.used_at.is_(None),
            LoginNonceRow.expires_at > now,
        )
        .order_by(LoginNonceRow.issued_at.desc(), LoginNonceRow.nonce)
    ).all()
    drop = list(outstanding[max(keep, 0) :])
    if drop:
        s.execute(delete(LoginNonceRow).where(LoginNonceRow.nonce.in_(drop)))
    return len(drop)


def count_login_nonces(s: Session, now: datetime) -> int:
    """Nonces handed out and neither used nor expired at ``now``."""
    return int(
        s.scalar(
            select(func.count()).where(
                LoginNonceRow.used_at.is_(None), LoginNonceRow.expires_at > now
            )
        )
        or 0
    )


def login_nonce(s: Session, nonce: str) -> LoginNonceRow | None:
    return s.get(LoginNonceRow, nonce)


def use_login_nonce(s: Session, nonce: str, address: str, now: datetime) -> NonceUse:
    """Mark ``nonce`` used by ``address`` at ``now``; what stood in the way otherwise. Two
    sign-ins racing with one nonce: one conditional update, so exactly one of them wins."""
    row = s.get(LoginNonceRow, nonce)
    if row is None:
        return "unknown"
    if row.address != address.lower():
        return "other-address"
    if row.expires_at <= now:
        return "expired"
    done = s.execute(
        update(LoginNonceRow)
        .where(LoginNonceRow.nonce == nonce, LoginNonceRow.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(done, CursorResult)
    return "ok" if done.rowcount == 1 else "used"


# -- market intervals -------------------------------------------------------------------------


def open_interval(
    s: Session, start: datetime, periods: int, period_minutes: int, gate_closure: datetime
) -> IntervalRow:
    """A new interval; it may not overlap another one."""
    if periods <= 0:
        raise FieldError("periods", "periods must be positive")
    if gate_closure > start:
        raise FieldError("gate_closure", "gate closure must not be after the interval's start")
    end = start + timedelta(minutes=periods * period_minutes)
    for other in s.scalars(select(IntervalRow).where(IntervalRow.start < end)):
        other_end = other.start + timedelta(minutes=other.periods * other.period_minutes)
        if other_end > start:
            raise ConflictError(
                f"interval {other.id} already covers {other.start.isoformat()} to "
                f"{other_end.isoformat()}"
            )
    row = IntervalRow(
        start=start, periods=periods, period_minutes=period_minutes, gate_closure=gate_closure
    )
    s.add(row)
    s.flush()
    return row


def get_interval(
    s: Session, interval_id: int, lock: Literal["update", "share"] | None = None
) -> IntervalRow:
    """An interval; ``lock`` holds its row until the unit of work ends (PostgreSQL's
    ``FOR UPDATE`` to change its state, ``FOR SHARE`` to keep the state as read while bids are
    written; SQLite's write transaction holds the whole database anyway)."""
    q = select(IntervalRow).where(IntervalRow.id == interval_id)
    if lock is not None:
        q = q.with_for_update(read=lock == "share")
    row = s.scalar(q)
    if row is None:
        raise NotFoundError(f"market interval {interval_id} does not exist")
    return row


def list_intervals(s: Session, state: str | None = None, limit: int = 100) -> list[IntervalRow]:
    q = select(IntervalRow).order_by(IntervalRow.start.desc()).limit(limit)
    if state:
        q = q.where(IntervalRow.state == state)
    return list(s.scalars(q))


def set_interval_state(
    s: Session, interval_id: int, allowed_from: Sequence[str], to: str
) -> IntervalRow:
    """Move an interval to state ``to``. Closing the gate records the book as it closes: the
    number of active bids and a hash of their ids, read under the same lock as the change."""
    row = get_interval(s, interval_id, lock="update")
    if row.state not in allowed_from:
        raise StateConflictError(
            f"market interval {interval_id} is {row.state}; it must be "
            f"{' or '.join(allowed_from)} to become {to}"
        )
    row.state = to
    if to == "published":
        row.published_at = utcnow()
    if to == "gate-closed":
        row.gate_closed_at = utcnow()
        row.book_bids, row.book_hash = book_of(s, interval_id)
    s.flush()
    return row


def book_of(s: Session, interval_id: int) -> tuple[int, str]:
    """``(number of active bids, SHA-256 of their sorted ids)`` of an interval now."""
    ids = sorted(
        s.scalars(
            select(BidRow.id).where(BidRow.interval_id == interval_id, BidRow.status == "active")
        )
    )
    return len(ids), hashlib.sha256("\n".join(ids).encode()).hexdigest()


def gates_overdue(s: Session, before: datetime) -> list[IntervalRow]:
    """Open intervals whose gate should have closed before ``before``."""
    q = select(IntervalRow).where(IntervalRow.state == "open", IntervalRow.gate_closure < before)
    return list(s.scalars(q.order_by(IntervalRow.start)))


def gate_is_open(row: IntervalRow, now: datetime) -> bool:
    return row.state == "open" and now < row.gate_closure


# -- bids -------------------------------------------------------------------------------------


def bid_content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def bid_by_key(s: Session, participant_id: str, idempotency_key: str) -> BidRow | None:
    return s.scalar(
        select(BidRow).where(
            BidRow.participant_id == participant_id, BidRow.idempotency_key == idempotency_key
        )
    )


def submit_bid(
    s: Session,
    interval: IntervalRow,
    participant_id: str,
    idempotency_key: str,
    content: dict[str, Any],
    auth: str,
    signature: str | None,
    now: datetime,
) -> tuple[BidRow, bool]:
    """Store a validated bid; ``(row, created)``. The same idempotency key with the same content
    returns the stored bid; with other content it is a conflict. Two requests racing with one
    key: the loser's insert raises DuplicateKeyError, which the caller answers as a replay."""
    digest = bid_content_hash(content)
    existing = bid_by_key(s, participant_id, idempotency_key)
    if existing is not None:
        if existing.content_hash != digest:
            raise ConflictError(
                f"idempotency key {idempotency_key!r} was used for another bid ({existing.id})"
            )
        return existing, False
    if not gate_is_open(interval, now):
        raise GateClosedError(
            f"market interval {interval.id} closed its gate at {interval.gate_closure.isoformat()}"
        )
    row = BidRow(
        id="b-" + uuid.uuid4().hex,
        interval_id=interval.id,
        participant_id=participant_id,
        idempotency_key=idempotency_key,
        content_hash=digest,
        period=content["period"],
        bus=content["bus"],
        side=content["side"],
        device_id=content["device_id"],
        blocks=content["blocks"],
        auth=auth,
        signature=signature,
        created_at=now,
    )
    s.add(row)
    s.flush()
    return row, True


def get_bid(s: Session, bid_id: str, participant_id: str | None = None) -> BidRow:
    """A bid; with ``participant_id`` only that participant's (others look absent)."""
    row = s.get(BidRow, bid_id)
    if row is None or (participant_id is not None and row.participant_id != participant_id):
        raise NotFoundError(f"bid {bid_id!r} does not exist")
    return row


def list_bids(
    s: Session,
    interval_id: int | None = None,
    participant_id: str | None = None,
    status: str | None = None,
) -> list[BidRow]:
    q = select(BidRow).order_by(BidRow.created_at, BidRow.id)
    if interval_id is not None:
        q = q.where(BidRow.interval_id == interval_id)
    if participant_id is not None:
        q = q.where(BidRow.participant_id == participant_id)
    if status is not None:
        q = q.where(BidRow.status == status)
    return list(s.scalars(q))


def cancel_bid(
    s: Session, bid_id: str, participant_id: str, clock: Callable[[], datetime]
) -> BidRow:
    """Cancel a bid while its interval's gate is open, the state read under a lock held until
    the commit (the time is taken once the lock is held)."""
    row = get_bid(s, bid_id, participant_id)
    interval = get_interval(s, row.interval_id, lock="share")
    now = clock()
    if not gate_is_open(interval, now):
        raise GateClosedError(
            f"bid {bid_id!r}: market interval {interval.id} closed its gate at "
            f"{interval.gate_closure.isoformat()}; it can no longer be cancelled"
        )
    if row.status != "cancelled":
        row.status, row.cancelled_at = "cancelled", now
    s.flush()
    return row


# -- parameters, results, anchoring -----------------------------------------------------------


def record_parameters(
    s: Session,
    status: str,
    values: dict[str, float],
    provenance: dict[str, Any],
    alarms: Sequence[str],
) -> AppliedParametersRow:
    row = AppliedParametersRow(
        status=status, values=values, provenance=provenance, alarms=list(alarms)
    )
    s.add(row)
    s.flush()
    return row


def get_parameters(s: Session, parameters_id: int) -> AppliedParametersRow:
    row = s.get(AppliedParametersRow, parameters_id)
    if row is None:
        raise NotFoundError(f"applied parameter set {parameters_id} does not exist")
    return row


def latest_parameters(s: Session) -> AppliedParametersRow | None:
    return s.scalar(select(AppliedParametersRow).order_by(AppliedParametersRow.id.desc()).limit(1))


def result_hash(result_json: str) -> str:
    """The keccak-free, canonical fingerprint anchored on chain: SHA-256 of the result JSON."""
    return "0x" + hashlib.sha256(result_json.encode()).hexdigest()


def save_result(
    s: Session, interval_id: int, result: ClearingResult, parameters_id: int
) -> ClearingResultRow:
    """Persist a clearing in one go: the result document, prices, dispatch, settlement and
    each bid's accepted MW; the interval becomes ``cleared``."""
    interval = set_interval_state(s, interval_id, ("gate-closed",), "cleared")
    interval.cleared_at = utcnow()
    interval.parameters_id = parameters_id
    for table in (PriceRow, DispatchRow, SettlementRowModel):
        s.execute(delete(table).where(table.interval_id == interval_id))
    text = result.to_json()
    p = result.prices
    arrays = {k: getattr(p, k).tolist() for k in GRID_PARTS}
    _, grid = price_grid(interval_id, result.bus_indices, arrays)
    _, dlmp_grid = price_grid(interval_id, result.bus_indices, arrays, "dlmp")
    row = ClearingResultRow(
        interval_id=interval_id,
        result_json=text,
        result_hash=result_hash(text),
        welfare_eur=float(result.welfare_eur),
        status=result.status,
        ac_feasible=result.ac_check.feasible,
        price_grid_gz=grid,
        dlmp_grid_gz=dlmp_grid,
    )
    s.merge(row)
    s.add_all(
        PriceRow(
            interval_id=interval_id,
            period=t,
            bus=int(b),
            dlmp=float(p.dlmp[t, i]),
            energy=float(p.energy[t, i]),
            loss=float(p.loss[t, i]),
            congestion=float(p.congestion[t, i]),
            voltage=float(p.voltage[t, i]),
        )
        for t in range(result.n_periods)
        for i, b in enumerate(result.bus_indices)
    )
    s.add_all(DispatchRow(interval_id=interval_id, **asdict(sp)) for sp in result.setpoints)
    s.add_all(
        SettlementRowModel(interval_id=interval_id, **asdict(r)) for r in result.settlement.rows
    )
    for bid in list_bids(s, interval_id, status="active"):
        accepted = result.accepted_mw.get(bid.id)
        bid.accepted_mw = list(accepted) if accepted is not None else [0.0] * len(bid.blocks)
    s.flush()
    return row


def find_result(s: Session, interval_id: int) -> ClearingResultRow | None:
    return s.get(ClearingResultRow, interval_id)


def result_refs(s: Session, interval_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """``{interval id: (result hash, anchor transaction)}`` of the stored results among
    ``interval_ids``, without reading the result documents."""
    if not interval_ids:
        return {}
    rows = s.execute(
        select(
            ClearingResultRow.interval_id,
            ClearingResultRow.result_hash,
            ClearingResultRow.anchor_tx,
        ).where(ClearingResultRow.interval_id.in_(list(interval_ids)))
    )
    return {int(i): (str(h), a) for i, h, a in rows}


def stored_price_grid(s: Session, interval_id: int, parts: str = "all") -> bytes | None:
    """The gzipped price grid kept with the result, of every part or of the DLMP alone
    (``parts="dlmp"``); None if there is none."""
    column = ClearingResultRow.price_grid_gz if parts == "all" else ClearingResultRow.dlmp_grid_gz
    found = s.scalar(select(column).where(ClearingResultRow.interval_id == interval_id))
    return bytes(found) if found is not None else None


def get_result(s: Session, interval_id: int) -> ClearingResultRow:
    row = find_result(s, interval_id)
    if row is None:
        raise NotFoundError(f"market interval {interval_id} has no clearing result yet")
    return row


def record_anchor(
    s: Session,
    interval_id: int,
    tx: str,
    block: int,
    chain_id: int,
    block_hash: str | None = None,
    registry: str | None = None,
) -> None:
    row = get_result(s, interval_id)
    row.anchor_tx, row.anchor_block, row.anchor_chain_id = tx, block, chain_id
    row.anchor_block_hash, row.anchor_registry = block_hash, registry
    s.flush()


def prices_of(
    s: Session, interval_id: int, bus: int | None = None, period: int | None = None
) -> list[PriceRow]:
    q = select(PriceRow).where(PriceRow.interval_id == interval_id)
    if bus is not None:
        q = q.where(PriceRow.bus == bus)
    if period is not None:
        q = q.where(PriceRow.period == period)
    return list(s.scalars(q.order_by(PriceRow.period, PriceRow.bus)))


def dispatch_of(s: Session, interval_id: int, period: int | None = None) -> list[DispatchRow]:
    q = select(DispatchRow).where(DispatchRow.interval_id == interval_id)
    if period is not None:
        q = q.where(DispatchRow.period == period)
    return list(s.scalars(q.order_by(DispatchRow.period, DispatchRow.device_id)))


def settlement_of(
    s: Session, interval_id: int, participant_id: str | None = None
) -> list[SettlementRowModel]:
    q = select(SettlementRowModel).where(SettlementRowModel.interval_id == interval_id)
    if participant_id is not None:
        q = q.where(SettlementRowModel.participant_id == participant_id)
    return list(s.scalars(q.order_by(SettlementRowModel.participant_id)))


# -- metered settlement and collateral ---------------------------------------------------------


def lock_participant(s: Session, participant_id: str) -> None:
    """Hold ``participant_id``'s row until the unit of work ends (PostgreSQL's ``FOR UPDATE``;
    SQLite's write transaction holds the whole database anyway), so that two bids of one
    participant are checked against its collateral one after the other."""
    s.scalar(select(ParticipantRow.id).where(ParticipantRow.id == participant_id).with_for_update())


def latest_metered_settlement(s: Session) -> MeteredSettlementRow | None:
    """The metered settlement of the latest settled interval (None: none yet)."""
    return s.scalar(
        select(MeteredSettlementRow).order_by(MeteredSettlementRow.interval_id.desc()).limit(1)
    )


def metered_settlement(s: Session, interval_id: int) -> MeteredSettlementRow | None:
    return s.get(MeteredSettlementRow, interval_id)


def save_metered_settlement(
    s: Session,
    interval_id: int,
    root: str,
    positions: dict[str, int],
    rows: list[dict[str, Any]],
    substituted: list[tuple[str, int]],
    operator_units: int,
) -> MeteredSettlementRow:
    """Record an interval's metered settlement once; recording it again with the same root
    returns the stored one, with another root is a conflict."""
    row = s.get(MeteredSettlementRow, interval_id)
    if row is not None:
        if row.root != root:
            raise ConflictError(
                f"interval {interval_id} is already settled with root {row.root}, not {root}"
            )
        return row
    row = MeteredSettlementRow(
        interval_id=interval_id,
        root=root,
        positions=dict(positions),
        rows=list(rows),
        substituted=[list(x) for x in substituted],
        operator_units=operator_units,
    )
    s.add(row)
    s.flush()
    return row


def metered_settlement_before(s: Session, interval_id: int) -> MeteredSettlementRow | None:
    """The metered settlement of the latest interval settled before ``interval_id``."""
    return s.scalar(
        select(MeteredSettlementRow)
        .where(MeteredSettlementRow.interval_id < interval_id)
        .order_by(MeteredSettlementRow.interval_id.desc())
        .limit(1)
    )


def replace_metered_settlement(
    s: Session,
    interval_id: int,
    root: str,
    positions: dict[str, int],
    rows: list[dict[str, Any]],
    substituted: list[tuple[str, int]],
    operator_units: int,
) -> MeteredSettlementRow:
    """Replace an interval's metered settlement (a re-settlement after its root was rejected):
    what was posted or made final of the old root is forgotten with it."""
    row = s.get(MeteredSettlementRow, interval_id)
    if row is None:
        raise NotFoundError(f"interval {interval_id} has no metered settlement")
    row.root, row.positions, row.rows = root, dict(positions), list(rows)
    row.substituted = [list(x) for x in substituted]
    row.operator_units, row.created_at = operator_units, utcnow()
    row.posted_tx = row.posted_at = row.finalised_tx = row.finalised_at = None
    s.flush()
    return row


def mark_metered_settlement(
    s: Session,
    interval_id: int,
    at: datetime,
    posted_tx: str | None = None,
    finalised_tx: str | None = None,
) -> MeteredSettlementRow:
    """Record that an interval's root was posted to the vault, or made final."""
    row = s.get(MeteredSettlementRow, interval_id)
    if row is None:
        raise NotFoundError(f"interval {interval_id} has no metered settlement")
    if posted_tx is not None:
        row.posted_tx, row.posted_at = posted_tx, at
    if finalised_tx is not None:
        row.finalised_tx, row.finalised_at = finalised_tx, at
    s.flush()
    return row


def open_bids(s: Session, participant_id: str) -> list[BidRow]:
    """``participant_id``'s active bids in intervals that have no metered settlement yet
    (an interval whose clearing failed is never settled: its bids do not count)."""
    settled = select(MeteredSettlementRow.interval_id)
    failed = select(IntervalRow.id).where(IntervalRow.state == "failed")
    return list(
        s.scalars(
            select(BidRow)
            .where(
                BidRow.participant_id == participant_id,
                BidRow.status == "active",
                BidRow.interval_id.not_in(settled),
                BidRow.interval_id.not_in(failed),
            )
            .order_by(BidRow.created_at)
        )
    )


# -- meters and their readings ----------------------------------------------------------------

#: a reading's content as stored: meter, period, device, imported_wh, exported_wh, sequence,
#: signature (the interval is the batch's)
READING_FIELDS = (
    "meter",
    "period",
    "device",
    "imported_wh",
    "exported_wh",
    "sequence",
    "signature",
)


def add_meter(
    s: Session, meter: str, participant_id: str, devices: Sequence[tuple[str, float, float]]
) -> MeterRow:
    """Register ``meter`` (lower-case address) to ``participant_id`` and ``devices``
    (``(device_id, max_import_w, max_export_w)``); a meter already registered, or a device that
    already has a meter, is a conflict."""
    if s.get(MeterRow, meter) is not None:
        raise ConflictError(f"meter {meter} is already registered")
    for device_id, _, _ in devices:
        taken = s.get(MeterDeviceRow, device_id)
        if taken is not None:
            raise ConflictError(f"device {device_id!r} already has meter {taken.meter}")
    row = MeterRow(meter=meter, participant_id=participant_id)
    s.add(row)
    s.flush()
    for device_id, imp, exp in devices:
        s.add(MeterDeviceRow(device_id=device_id, meter=meter, max_import_w=imp, max_export_w=exp))
    s.flush()
    return row


def meters(
    s: Session, which: Collection[str] | None = None
) -> list[tuple[MeterRow, list[MeterDeviceRow]]]:
    """Registered meters (all, or those in ``which``) with their devices."""
    q = select(MeterRow).order_by(MeterRow.meter)
    if which is not None:
        q = q.where(MeterRow.meter.in_(sorted(which)))
    found = list(s.scalars(q))
    devices: dict[str, list[MeterDeviceRow]] = {m.meter: [] for m in found}
    if found:
        dq = (
            select(MeterDeviceRow)
            .where(MeterDeviceRow.meter.in_(list(devices)))
            .order_by(MeterDeviceRow.device_id)
        )
        for d in s.scalars(dq):
            devices[d.meter].append(d)
    return [(m, devices[m.meter]) for m in found]


def readings_of(
    s: Session, interval_id: int, which: Collection[str] | None = None
) -> list[MeterReadingRow]:
    """The accepted readings of an interval (of the meters in ``which`` only, if given)."""
    q = select(MeterReadingRow).where(MeterReadingRow.interval_id == interval_id)
    if which is not None:
        q = q.where(MeterReadingRow.meter.in_(sorted(which)))
    return list(
        s.scalars(q.order_by(MeterReadingRow.meter, MeterReadingRow.period, MeterReadingRow.device))
    )


def last_sequences(s: Session, which: Collection[str]) -> dict[str, int]:
    """The highest sequence number of an accepted reading of each meter in ``which`` (meters
    with none are left out)."""
    q = (
        select(MeterReadingRow.meter, func.max(MeterReadingRow.sequence))
        .where(MeterReadingRow.meter.in_(sorted(which)))
        .group_by(MeterReadingRow.meter)
    )
    return {str(m): int(seq) for m, seq in s.execute(q)}


def add_readings(
    s: Session, interval_id: int, readings: Sequence[dict[str, Any]], now: datetime
) -> None:
    """Store validated readings of one interval (each a dict of :data:`READING_FIELDS`)."""
    s.add_all(
        MeterReadingRow(
            interval_id=interval_id, received_at=now, **{k: r[k] for k in READING_FIELDS}
        )
        for r in readings
    )
    s.flush()


def add_conflicts(
    s: Session, interval_id: int, readings: Sequence[dict[str, Any]], now: datetime
) -> int:
    """Keep conflicting readings for the operator (the same one sent again is kept once);
    how many were new."""
    held = {
        tuple(getattr(c, k) for k in READING_FIELDS if k != "signature")
        for c in conflicts_of(s, interval_id)
    }
    new = 0
    for r in readings:
        key = tuple(r[k] for k in READING_FIELDS if k != "signature")
        if key in held:
            continue
        held.add(key)
        s.add(
            ReadingConflictRow(
                interval_id=interval_id, received_at=now, **{k: r[k] for k in READING_FIELDS}
            )
        )
        new += 1
    s.flush()
    return new


def correct_readings(
    s: Session,
    interval_id: int,
    readings: Sequence[dict[str, Any]],
    now: datetime,
) -> None:
    """The operator's correction of an interval's readings: each reading (a dict of
    :data:`READING_FIELDS`) takes the place of the one held for its meter, period and device,
    if any; a recorded conflict it settles (the same reading) is no longer a conflict."""
    for r in readings:
        held = s.get(MeterReadingRow, (r["meter"], interval_id, r["period"], r["device"]))
        if held is not None:
            s.delete(held)
        for c in conflicts_of(s, interval_id):
            if all(getattr(c, k) == r[k] for k in READING_FIELDS):
                s.delete(c)
    s.flush()
    add_readings(s, interval_id, readings, now)


def conflicts_of(s: Session, interval_id: int) -> list[ReadingConflictRow]:
    q = select(ReadingConflictRow).where(ReadingConflictRow.interval_id == interval_id)
    return list(s.scalars(q.order_by(ReadingConflictRow.id)))


# -- operator steps ---------------------------------------------------------------------------


def record_step(
    s: Session,
    interval_id: int,
    step: str,
    status: str,
    detail: str = "",
    at: datetime | None = None,
    reason: str = "",
) -> int:
    """Record an attempt of ``step``; return its attempt number (1 for the first)."""
    attempt = attempts(s, interval_id, step) + 1
    s.add(
        OperatorStepRow(
            interval_id=interval_id,
            step=step,
            attempt=attempt,
            status=status,
            reason=reason,
            detail=detail,
            at=at or utcnow(),
        )
    )
    s.flush()
    return attempt


def attempts(s: Session, interval_id: int, step: str) -> int:
    return int(
        s.scalar(
            select(func.count()).where(
                OperatorStepRow.interval_id == interval_id, OperatorStepRow.step == step
            )
        )
        or 0
    )


def step_status(s: Session, interval_id: int, step: str) -> str | None:
    """The last recorded status of ``step`` (None: never attempted)."""
    return s.scalar(
        select(OperatorStepRow.status)
        .where(OperatorStepRow.interval_id == interval_id, OperatorStepRow.step == step)
        .order_by(OperatorStepRow.id.desc())
        .limit(1)
    )


def steps_of(s: Session, interval_id: int | None = None) -> list[OperatorStepRow]:
    q = select(OperatorStepRow).order_by(OperatorStepRow.id)
    if interval_id is not None:
        q = q.where(OperatorStepRow.interval_id == interval_id)
    return list(s.scalars(q))


# -- small documents --------------------------------------------------------------------------


def load_document(s: Session, name: str) -> str | None:
    row = s.get(KeyValueRow, name)
    return row.value if row else None


def save_document(s: Session, name: str, value: str) -> None:
    row = s.get(KeyValueRow, name)
    if row is None:
        s.add(KeyValueRow(name=name, value=value))
    else:
        row.value, row.updated_at = value, utcnow()
    s.flush()


def last_step(s: Session, interval_id: int, step: str) -> OperatorStepRow | None:
    return s.scalar(
        select(OperatorStepRow)
        .where(OperatorStepRow.interval_id == interval_id, OperatorStepRow.step == step)
        .order_by(OperatorStepRow.id.desc())
        .limit(1)
    )


def escalated_steps(s: Session, limit: int = 200) -> list[OperatorStepRow]:
    """Steps whose latest attempt is escalated (a later success clears the escalation)."""
    latest: dict[tuple[int, str], OperatorStepRow] = {}
    q = select(OperatorStepRow).order_by(OperatorStepRow.id.desc()).limit(limit * 10)
    for row in s.scalars(q):
        latest.setdefault((row.interval_id, row.step), row)
    return [r for r in latest.values() if r.status == "escalated"][:limit]
