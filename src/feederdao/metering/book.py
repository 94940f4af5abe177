"""The readings of one clearing interval: validated, stored once, conflicts kept aside.

One validator for every entry point (API batch, OPC UA, CLI file). A reading is refused, with
its reason, when

- its meter is not registered (``unknown-meter``);
- its signature does not recover to the meter (``bad-signature``);
- it is for another interval or a period outside the interval (``wrong-interval``,
  ``bad-period``);
- the meter is not registered to its device (``device-not-registered``), which is also what
  a reading for another participant's device gets;
- it reports more energy, in either direction, than the device can exchange in one period at
  its rating, plus the meter's accuracy class (``beyond-capability``);
- it arrives after the metering window closed (``after-window``);
- the book already holds a different reading for the same meter, period and device
  (``conflict``). The conflicting reading is kept in :attr:`ReadingBook.conflicts` for the
  operator and never replaces the first one. The same reading again is accepted as a duplicate
  and changes nothing (idempotent).

A batch is all or nothing: one refusal and nothing of it is stored (its conflicts are still
recorded as evidence).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from feederdao.metering.errors import MeteringError, ReadingsRefused, Refusal
from feederdao.metering.readings import MeterReading, MeterRegistration

#: Metering accuracy allowed above a device's rating (class 2 meters: ±2 %), plus 1 Wh of
#: register rounding.
ACCURACY_FRACTION = 0.02

#: Verifies a reading's signature: returns the lowercase address it recovers to, or raises.
Recover = Callable[[MeterReading], str]


@dataclass(frozen=True, slots=True)
class IngestReport:
    accepted: int
    duplicates: int


@dataclass
class ReadingBook:
    """Readings of interval ``interval`` (``n_periods`` periods of ``period_hours``), accepted
    until ``closes_at_s`` (Unix seconds: the end of the metering window)."""

    interval: int
    n_periods: int
    period_hours: float
    closes_at_s: float
    registrations: Mapping[str, MeterRegistration]
    recover: Recover
    readings: dict[tuple[str, int, int, str], MeterReading] = field(default_factory=dict)
    conflicts: list[tuple[MeterReading, MeterReading]] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        interval: int,
        n_periods: int,
        period_hours: float,
        closes_at_s: float,
        registrations: Iterable[MeterRegistration],
        recover: Recover,
    ) -> ReadingBook:
        regs: dict[str, MeterRegistration] = {}
        owner: dict[str, str] = {}
        for r in registrations:
            if r.meter in regs:
                raise MeteringError(f"meter {r.meter} is registered twice")
            for d in r.devices:
                if d.device_id in owner:
                    raise MeteringError(
                        f"device {d.device_id!r} is registered to meters {owner[d.device_id]} "
                        f"and {r.meter}"
                    )
                owner[d.device_id] = r.meter
            regs[r.meter] = r
        return cls(interval, n_periods, period_hours, closes_at_s, regs, recover)

    def _problem(self, r: MeterReading, received_at_s: float) -> tuple[str, str] | None:
        reg = self.registrations.get(r.meter)
        if reg is None:
            return "unknown-meter", f"meter {r.meter} is not registered"
        try:
            signer = self.recover(r)
        except MeteringError as exc:
            return "bad-signature", str(exc)
        if signer != r.meter:
            return "bad-signature", f"the signature is by {signer}, not by meter {r.meter}"
        if r.interval != self.interval:
            return "wrong-interval", f"interval {r.interval} is not interval {self.interval}"
        if not 0 <= r.period < self.n_periods:
            return "bad-period", f"period {r.period} is outside 0..{self.n_periods - 1}"
        device = reg.device(r.device)
        if device is None:
            return (
                "device-not-registered",
                f"meter {r.meter} is not registered to device {r.device!r}",
            )
        for what, wh, max_w in (
            ("imported", r.imported_wh, device.max_import_w),
            ("exported", r.exported_wh, device.max_export_w),
        ):
            limit = max_w * self.period_hours * (1 + ACCURACY_FRACTION) + 1
            if wh > limit:
                return (
                    "beyond-capability",
                    f"{what} {wh} Wh exceeds what device {r.device!r} can exchange in one "
                    f"period ({limit:.0f} Wh at {max_w:.0f} W)",
                )
        if received_at_s > self.closes_at_s:
            return (
                "after-window",
                f"received {received_at_s - self.closes_at_s:.0f} s after the metering window "
                "closed",
            )
        return None

    def ingest(self, batch: Iterable[MeterReading], received_at_s: float) -> IngestReport:
        """Validate ``batch`` and store it whole, or raise :class:`ReadingsRefused` and store
        none of it."""
        refusals: list[Refusal] = []
        fresh: dict[tuple[str, int, int, str], MeterReading] = {}
        duplicates = 0
        conflicts: list[tuple[MeterReading, MeterReading]] = []
        for i, r in enumerate(batch):
            problem = self._problem(r, received_at_s)
            if problem is None:
                first = self.readings.get(r.key) or fresh.get(r.key)
                if first is None:
                    fresh[r.key] = r
                    continue
                if first.same_content(r):
                    duplicates += 1
                    continue
                conflicts.append((first, r))
                problem = (
                    "conflict",
                    f"a different reading for device {r.device!r} in this period is already "
                    f"held (sequence {first.sequence}); kept as a conflict for the operator",
                )
            refusals.append(Refusal(i, r.meter, r.period, r.device, *problem))
        self.conflicts.extend(conflicts)
        if refusals:
            raise ReadingsRefused(refusals)
        self.readings.update(fresh)
        return IngestReport(len(fresh), duplicates)

    def net_export_wh(self) -> dict[tuple[str, int], int]:
        """Metered net export (exported − imported, Wh) per (device, period)."""
        return {(r.device, r.period): r.net_export_wh for r in self.readings.values()}
