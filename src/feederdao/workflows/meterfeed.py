"""Period readings from the feeder's meters over OPC UA.

A meter's registers count energy since it started (imported and exported Wh, as a meter's
1.8.0 and 2.8.0 registers). At each period's end the bridge reads every metered device's
registers in one request; a period's reading is the difference from the period before, signed
with the meter's own key (EIP-712 ``Reading``, as its secure element signs it) and numbered by
the meter's sequence. The readings then go through the same validation as the API's
(:class:`feederdao.metering.book.ReadingBook`).

:class:`FeederMeters` is the operator loop's side of it (step ``meter:{p}`` of
:class:`feederdao.workflows.operator.Operator`): the registers at each period boundary, read
within ``slack_s`` of it, and the signed readings of a period until they are stored. A period
is metered only when the registers were read at both of its boundaries: those at the start of
a period that began before this process did (a restart, or a loop late by more than
``slack_s``) cannot be known afterwards, so that period is not read; its settlement
substitutes the schedule and flags it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from feederdao.governance.signing import MarketDomain
from feederdao.metering.errors import MeteringError
from feederdao.metering.readings import MeterReading, MeterRegistration, normal_address
from feederdao.scada_bridge.bridge import Bridge
from feederdao.workflows.metering import sign_reading

Registers = Mapping[str, tuple[int, int]]  # device → (imported Wh, exported Wh), cumulative


@dataclass
class MeterFeed:
    """The meters on the feeder: their registrations, their signing keys (by meter address)
    and where their registers stood at the last period's end."""

    registrations: Mapping[str, MeterRegistration]
    keys: Mapping[str, str]
    domain: MarketDomain
    last: dict[str, tuple[int, int]] = field(default_factory=dict)
    sequence: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = {normal_address(m): k for m, k in self.keys.items()}
        missing = sorted(set(self.registrations) - set(keys))
        if missing:
            raise MeteringError(f"no signing key for meter(s) {', '.join(missing)}")
        self.keys = keys

    @property
    def devices(self) -> list[str]:
        return sorted({d.device_id for r in self.registrations.values() for d in r.devices})

    def start(self, registers: Registers) -> None:
        """Where the registers stand when metering starts (the first period's beginning)."""
        self.last = {d: registers[d] for d in self.devices}

    def close(self, interval: int, period: int, registers: Registers) -> list[MeterReading]:
        """Every metered device's signed reading of ``period``: its registers now less where
        they stood at the period's start."""
        if not self.last:
            raise MeteringError("the meter feed has no starting registers: call start first")
        out: list[MeterReading] = []
        for meter in sorted(self.registrations):
            for dev in self.registrations[meter].devices:
                d = dev.device_id
                (i0, e0), (i1, e1) = self.last[d], registers[d]
                if i1 < i0 or e1 < e0:
                    raise MeteringError(
                        f"meter {meter}, device {d}: the registers went back from "
                        f"({i0}, {e0}) to ({i1}, {e1}) Wh; a meter's registers only count up"
                    )
                seq = self.sequence.get(meter, 0) + 1
                self.sequence[meter] = seq
                reading = MeterReading(meter, interval, period, d, i1 - i0, e1 - e0, seq)
                out.append(sign_reading(self.keys[meter], self.domain, reading))
        self.last = {d: registers[d] for d in self.devices}
        return out


async def start_feed(feed: MeterFeed, bridge: Bridge) -> None:
    feed.start(await bridge.read_energy(feed.devices))


async def read_period(
    feed: MeterFeed, bridge: Bridge, interval: int, period: int
) -> list[MeterReading]:
    """Read the registers over OPC UA at ``period``'s end and return its signed readings."""
    return feed.close(interval, period, await bridge.read_energy(feed.devices))


@dataclass(frozen=True)
class Metered:
    """What step ``meter:{period}`` did: the readings stored (and those already held), or why
    the period could not be read (``missed``)."""

    interval_id: int
    period: int
    accepted: int = 0
    duplicates: int = 0
    missed: str = ""

    def describe(self) -> str:
        if not self.missed:
            return ""
        return (
            f"period {self.period} not metered over OPC UA: {self.missed}; it is settled on its "
            "schedule and flagged"
        )


#: snapshots of the registers older than this are dropped
KEEP = timedelta(days=2)


@dataclass
class FeederMeters:
    """The meters the operator loop reads over OPC UA: the feed (registrations, keys, the
    meters' sequence numbers), the bridge it reads through, the registers read at each
    period boundary and each period's signed readings until they are stored."""

    feed: MeterFeed
    bridge: Bridge
    slack_s: float = 60.0
    snapshots: dict[datetime, dict[str, tuple[int, int]]] = field(default_factory=dict)
    pending: dict[tuple[int, int], list[MeterReading]] = field(default_factory=dict)

    @property
    def meters(self) -> list[str]:
        return sorted(self.feed.registrations)

    def _near(self, boundary: datetime, now: datetime) -> bool:
        return 0.0 <= (now - boundary).total_seconds() <= self.slack_s

    async def snapshot(self, boundary: datetime, now: datetime) -> bool:
        """Read the registers at a period's start ``boundary`` (once, and only within
        ``slack_s`` after it); whether they are held now."""
        if boundary not in self.snapshots and self._near(boundary, now):
            self.snapshots[boundary] = dict(await self.bridge.read_energy(self.feed.devices))
        for old in [t for t in self.snapshots if t < now - KEEP]:
            del self.snapshots[old]
        return boundary in self.snapshots

    async def read(
        self,
        interval_id: int,
        period: int,
        start: datetime,
        end: datetime,
        now: datetime,
        sequences: Mapping[str, int],
    ) -> list[MeterReading] | str:
        """The signed readings of ``period`` (``start``..``end``), or why it cannot be read.
        Readings made before and not yet stored are given again, never read anew (the
        registers have moved on); ``sequences`` (each meter's last stored sequence number) is
        where numbering continues from."""
        key = (interval_id, period)
        if key in self.pending:
            return self.pending[key]
        first = self.snapshots.get(start)
        if end not in self.snapshots and self._near(end, now):
            # the end of this period is the start of the next: read it either way
            self.snapshots[end] = dict(await self.bridge.read_energy(self.feed.devices))
        last = self.snapshots.get(end)
        if first is None:
            return (
                f"its start registers ({start.isoformat()}) were not read: the loop was not "
                f"running within {self.slack_s:.0f} s of the period's start"
            )
        if last is None:
            return (
                f"its end registers ({end.isoformat()}) were not read within "
                f"{self.slack_s:.0f} s of the period's end"
            )
        for meter, seq in sequences.items():
            m = normal_address(meter)
            self.feed.sequence[m] = max(self.feed.sequence.get(m, 0), seq)
        self.feed.last = dict(first)
        readings = self.feed.close(interval_id, period, last)
        self.pending[key] = readings
        return readings

    def stored(self, interval_id: int, period: int) -> None:
        """The period's readings are stored (or refused for good): forget them."""
        self.pending.pop((interval_id, period), None)
