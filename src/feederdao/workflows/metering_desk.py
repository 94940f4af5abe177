"""Readings arriving through the market API: the operator registers meters to approved
participants' devices; meters (or whoever relays their signed readings) post batches; each
interval's readings go through the one validator (:class:`feederdao.metering.book.ReadingBook`)
until the interval's metering window closes.

The desk holds registrations, readings and conflicts in memory: they are not yet persisted in
the store, and a restart of the service loses them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

from feederdao.metering.book import IngestReport, ReadingBook
from feederdao.metering.errors import MeteringError
from feederdao.metering.readings import MeteredDevice, MeterReading, MeterRegistration
from feederdao.workflows.market import MarketService
from feederdao.workflows.metering import reading_verifier


class MeteringDesk:
    def __init__(self, service: MarketService, window_s: float = 3600.0) -> None:
        self.service = service
        self.window_s = window_s
        self._lock = threading.Lock()
        self._registrations: dict[str, MeterRegistration] = {}
        self._books: dict[int, ReadingBook] = {}

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
        reg = MeterRegistration(meter, participant_id, tuple(devices))
        with self._lock:
            if reg.meter in self._registrations:
                raise MeteringError(f"meter {reg.meter} is already registered")
            taken = {d.device_id: r.meter for r in self._registrations.values() for d in r.devices}
            for md in reg.devices:
                if md.device_id in taken:
                    raise MeteringError(
                        f"device {md.device_id!r} already has meter {taken[md.device_id]}"
                    )
            self._registrations[reg.meter] = reg
        return reg

    def _book(self, interval_id: int) -> ReadingBook:
        book = self._books.get(interval_id)
        if book is None:
            row = self.service.intervals.get(interval_id)  # NotFoundError if there is none
            end = row.start + timedelta(minutes=row.periods * row.period_minutes)
            closes = end + timedelta(seconds=self.window_s)
            book = ReadingBook(
                interval_id,
                row.periods,
                row.period_minutes / 60.0,
                closes.timestamp(),
                self._registrations,  # live: a meter registered later counts
                reading_verifier(self.service.ctx.domain),
            )
            self._books[interval_id] = book
        return book

    def ingest(self, readings: Sequence[MeterReading]) -> IngestReport:
        """Validate and store a batch (one interval per batch; all or nothing)."""
        intervals = {r.interval for r in readings}
        if len(intervals) != 1:
            raise MeteringError("a batch holds the readings of exactly one interval")
        with self._lock:
            book = self._book(intervals.pop())
            return book.ingest(readings, self.service.clock().timestamp())

    def conflicts(self, interval_id: int) -> list[tuple[MeterReading, MeterReading]]:
        with self._lock:
            book = self._books.get(interval_id)
            return list(book.conflicts) if book else []

    def readings(self, interval_id: int) -> list[MeterReading]:
        with self._lock:
            book = self._books.get(interval_id)
            return list(book.readings.values()) if book else []
