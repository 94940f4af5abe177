"""Period readings from the feeder's meters over OPC UA.

A meter's registers count energy since it started (imported and exported Wh, as a meter's
1.8.0 and 2.8.0 registers). At each period's end the bridge reads every metered device's
registers in one request; a period's reading is the difference from the period before, signed
with the meter's own key (EIP-712 ``Reading``, as its secure element signs it) and numbered by
the meter's sequence. The readings then go through the same validation as the API's
(:class:`feederdao.metering.book.ReadingBook`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
