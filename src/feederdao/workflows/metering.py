"""Metered settlement end to end: meters sign readings, the book validates them, deviations
are settled, positions become a Merkle root the vault holds, participants withdraw.

The EIP-712 code is governance's (:mod:`feederdao.governance.signing`, a ``Reading`` type
beside ``Bid``); the validation and the settlement are :mod:`feederdao.metering`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from feederdao.domain.clearing import ClearingResult
from feederdao.domain.market import Participant
from feederdao.governance import signing
from feederdao.governance.merkle import PositionTree
from feederdao.governance.signing import MarketDomain
from feederdao.metering.book import ReadingBook, Recover
from feederdao.metering.errors import MeteringError
from feederdao.metering.readings import MeterReading, MeterRegistration
from feederdao.metering.settlement import (
    DeviationSettlement,
    Schedule,
    cumulative_positions,
    schedule_of,
    settle_deviations,
)


def reading_verifier(domain: MarketDomain) -> Recover:
    """Recovers the signer of a reading under ``domain`` (libsecp256k1, digest computed
    directly); a malformed signature is a MeteringError."""
    separator = signing.domain_separator(domain)

    def recover(r: MeterReading) -> str:
        try:
            return signing.recover_digest_lower(
                signing.reading_digest(separator, r.message()), r.signature
            )
        except signing.SignatureError as exc:
            raise MeteringError(str(exc)) from exc

    return recover


def sign_reading(private_key: str | bytes, domain: MarketDomain, r: MeterReading) -> MeterReading:
    """``r`` signed by the meter's key."""
    digest = signing.reading_digest(signing.domain_separator(domain), r.message())
    return MeterReading(
        r.meter,
        r.interval,
        r.period,
        r.device,
        r.imported_wh,
        r.exported_wh,
        r.sequence,
        signing.sign_digest(private_key, digest),
    )


def reading_for(
    meter: str, interval: int, period: int, device: str, net_export_wh: int, sequence: int
) -> MeterReading:
    """An unsigned reading of a net export (negative: import)."""
    return MeterReading(
        meter,
        interval,
        period,
        device,
        max(-net_export_wh, 0),
        max(net_export_wh, 0),
        sequence,
    )


@dataclass(frozen=True)
class IntervalSettlement:
    """One interval settled: the schedule, the deviation settlement, every account's cumulative
    position and the tree over them (its root is what the operator posts)."""

    interval: int
    schedule: Schedule
    settlement: DeviationSettlement
    positions: dict[str, int]
    tree: PositionTree


def settle_interval(
    interval: int,
    result: ClearingResult,
    participants: Iterable[Participant],
    book: ReadingBook,
    operator: str,
    previous: Mapping[str, int] | None = None,
) -> IntervalSettlement:
    """Settle interval ``interval`` from its clearing and its readings, at the deviation charge
    the clearing ran with; add it to ``previous`` cumulative positions."""
    parts = tuple(participants)
    addresses = {p.participant_id: p.address for p in parts if p.address}
    schedule = schedule_of(result, parts)
    metered = [d.device_id for reg in book.registrations.values() for d in reg.devices]
    settlement = settle_deviations(
        schedule,
        book.net_export_wh(),
        metered,
        result.parameters.deviation_charge_eur_per_mwh,
    )
    missing = [r.participant_id for r in settlement.rows if r.participant_id not in addresses]
    if missing:
        raise MeteringError(f"participants without a wallet address: {', '.join(missing)}")
    positions = cumulative_positions(previous or {}, settlement, addresses, operator)
    return IntervalSettlement(
        interval, schedule, settlement, positions, PositionTree.build(positions)
    )


def registrations_for(
    meters: Mapping[str, str], participants: Iterable[Participant]
) -> list[MeterRegistration]:
    """One meter per device: ``meters`` maps device ids to meter addresses."""
    from feederdao.metering.readings import register

    out = []
    for p in participants:
        for d in p.devices:
            if d.device_id in meters:
                out.append(register(meters[d.device_id], p, (d.device_id,)))
    return out
