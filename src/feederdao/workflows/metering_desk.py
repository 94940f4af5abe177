"""Readings arriving through the market API: the operator registers meters to approved
participants' devices; meters (or whoever relays their signed readings) post batches; each
batch goes through the one validator (:class:`feederdao.metering.book.ReadingBook`) until the
interval's metering window closes.

Registrations, accepted readings and conflicting readings live in the store (SQLite or
PostgreSQL): a batch is validated and stored in one unit of work, so it is stored whole or not
at all, and a restart of the service loses nothing. A refused batch still records its
conflicts for the operator. Two batches racing with the same reading: the loser's insert fails
on the table's key and the batch is validated again (then it is a duplicate or a conflict).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from feederdao.metering.book import IngestReport, ReadingBook, Recover
from feederdao.metering.errors import MeteringError, ReadingsRefused
from feederdao.metering.readings import MeteredDevice, MeterReading, MeterRegistration
from feederdao.store import repositories as repo
from feederdao.store.errors import ConflictError, DuplicateKeyError
from feederdao.store.models import IntervalRow, MeterReadingRow, ReadingConflictRow
from feederdao.workflows.market import MarketService
from feederdao.workflows.metering import reading_verifier

ATTEMPTS = 3


def reading_fields(r: MeterReading) -> dict[str, Any]:
    return {k: getattr(r, k) for k in repo.READING_FIELDS}


def _reading(interval_id: int, row: MeterReadingRow | ReadingConflictRow) -> MeterReading:
    return MeterReading(
        row.meter,
        interval_id,
        row.period,
        row.device,
        row.imported_wh,
        row.exported_wh,
        row.sequence,
        row.signature,
    )


class MeteringDesk:
    def __init__(self, service: MarketService, window_s: float = 3600.0) -> None:
        self.service = service
        self.window_s = window_s
        self._recover: Recover | None = None

    @property
    def recover(self) -> Recover:
        if self._recover is None:
            self._recover = reading_verifier(self.service.ctx.domain)
        return self._recover

    def register(
        self, meter: str, participant_id: str, device_ids: Sequence[str]
    ) -> MeterRegistration:
        """Register ``meter`` to devices the operator approved for ``participant_id``; the
        capability of each is its rating in the network model."""
        row = self.service.participants.get(participant_id)
        if row.status != "approved":
            raise MeteringError(f"participant {participant_id!r} is not approved")
        if not device_ids:
            raise MeteringError("a meter is registered to at least one device")
        view = self.service.network.view
        devices = []
        for device_id in device_ids:
            if device_id not in (row.devices or []):
                raise MeteringError(
                    f"device {device_id!r} is not approved for participant {participant_id!r}"
                )
            try:
                d = view.device(device_id)
            except KeyError:
                raise MeteringError(
                    f"device {device_id!r} is not in the network model: its rating is unknown"
                ) from None
            rating_w = 1e6 * max(
                abs(d.p_mw), abs(d.p_min_mw or 0.0), abs(d.p_max_mw or 0.0), d.sn_mva or 0.0
            )
            devices.append(MeteredDevice(device_id, rating_w, rating_w))
        if len({d.device_id for d in devices}) != len(devices):
            raise MeteringError("a device is named twice")
        reg = MeterRegistration(meter, participant_id, tuple(devices))
        try:
            with self.service.db.session() as s:
                repo.add_meter(
                    s,
                    reg.meter,
                    participant_id,
                    [(d.device_id, d.max_import_w, d.max_export_w) for d in reg.devices],
                )
        except ConflictError as exc:
            raise MeteringError(str(exc)) from None
        except DuplicateKeyError:  # registered concurrently
            raise MeteringError(
                f"meter {reg.meter} or one of its devices was registered meanwhile"
            ) from None
        return reg

    def registrations(self, which: Sequence[str] | None = None) -> dict[str, MeterRegistration]:
        """Registered meters (all, or those in ``which``) by address."""
        with self.service.db.read() as s:
            return self._registrations(s, which)

    def _registrations(
        self, s: Session, which: Collection[str] | None
    ) -> dict[str, MeterRegistration]:
        return {
            m.meter: MeterRegistration(
                m.meter,
                m.participant_id,
                tuple(MeteredDevice(d.device_id, d.max_import_w, d.max_export_w) for d in devs),
            )
            for m, devs in repo.meters(s, which)
        }

    def _closes_at_s(self, row: IntervalRow) -> float:
        end = row.start + timedelta(minutes=row.periods * row.period_minutes)
        return (end + timedelta(seconds=self.window_s)).timestamp()

    def ingest(self, readings: Sequence[MeterReading]) -> IngestReport:
        """Validate and store a batch (one interval per batch; all or nothing)."""
        intervals = {r.interval for r in readings}
        if len(intervals) != 1:
            raise MeteringError("a batch holds the readings of exactly one interval")
        interval_id = intervals.pop()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._ingest(interval_id, readings)
            except DuplicateKeyError:
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _ingest(self, interval_id: int, readings: Sequence[MeterReading]) -> IngestReport:
        refused: ReadingsRefused | None = None
        with self.service.db.session() as s:
            row = repo.get_interval(s, interval_id)  # NotFoundError if there is none
            meters = {r.meter for r in readings}
            held = {
                x.key: x
                for x in (
                    _reading(interval_id, h) for h in repo.readings_of(s, interval_id, meters)
                )
            }
            book = ReadingBook(
                interval_id,
                row.periods,
                row.period_minutes / 60.0,
                self._closes_at_s(row),
                self._registrations(s, meters),
                self.recover,
                dict(held),
            )
            now = self.service.clock()
            try:
                report = book.ingest(readings, now.timestamp())
            except ReadingsRefused as exc:
                refused = exc
            if book.conflicts:
                # both readings of a conflict within a refused batch: neither is held
                kept = [x for a, b in book.conflicts for x in ((b,) if a.key in held else (a, b))]
                repo.add_conflicts(s, interval_id, [reading_fields(x) for x in kept], now)
            if refused is None:
                fresh = [r for k, r in book.readings.items() if k not in held]
                repo.add_readings(s, interval_id, [reading_fields(r) for r in fresh], now)
        if refused is not None:
            raise refused
        return report

    def book(self, interval_id: int) -> ReadingBook:
        """The interval's readings as a book (every registered meter, every held reading), for
        its settlement."""
        with self.service.db.read() as s:
            row = repo.get_interval(s, interval_id)
            regs = self._registrations(s, None)
            held = {
                x.key: x
                for x in (_reading(interval_id, h) for h in repo.readings_of(s, interval_id))
            }
        return ReadingBook(
            interval_id,
            row.periods,
            row.period_minutes / 60.0,
            self._closes_at_s(row),
            regs,
            self.recover,
            held,
        )

    def conflicts(self, interval_id: int) -> list[tuple[MeterReading | None, MeterReading]]:
        """Conflicting readings of an interval: the reading held (None: the two conflicted
        within one refused batch, and neither is held) and the one refused."""
        with self.service.db.read() as s:
            held = {
                x.key: x
                for x in (_reading(interval_id, h) for h in repo.readings_of(s, interval_id))
            }
            refused = [_reading(interval_id, c) for c in repo.conflicts_of(s, interval_id)]
        return [(held.get(r.key), r) for r in refused]

    def last_sequences(self, meters: Collection[str]) -> dict[str, int]:
        """Each meter's highest accepted sequence number, over every interval."""
        with self.service.db.read() as s:
            return repo.last_sequences(s, meters)

    def readings(self, interval_id: int) -> list[MeterReading]:
        with self.service.db.read() as s:
            return [_reading(interval_id, h) for h in repo.readings_of(s, interval_id)]
