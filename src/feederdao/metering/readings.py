"""Meters, the devices they are registered to, and their signed readings.

A meter is its own signing key (a smart meter's secure element), not the participant's wallet.
The operator registers it to one participant and to the devices it measures. A reading covers
one device over one period of one clearing interval: the energy imported from and exported to
the grid in Wh (integers, as the meter's register counts them) and the meter's sequence number,
signed by the meter as an EIP-712 ``Reading`` message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feederdao.domain.market import Participant, ParticipantDevice
from feederdao.metering.errors import MeteringError


def normal_address(address: str) -> str:
    """``address`` as lowercase 0x-hex, or MeteringError."""
    text = str(address).strip().lower()
    body = text.removeprefix("0x")
    if len(body) != 40 or any(c not in "0123456789abcdef" for c in body):
        raise MeteringError(f"{address!r} is not an address (0x and 40 hex digits)")
    return "0x" + body


@dataclass(frozen=True, slots=True)
class MeteredDevice:
    """A device behind a meter and what it can physically exchange with the grid (W)."""

    device_id: str
    max_import_w: float
    max_export_w: float

    @classmethod
    def of(cls, device: ParticipantDevice) -> MeteredDevice:
        """Capability from the device's own limits: the larger of |P| bounds and its apparent
        power rating, in each direction the device can go."""
        rating = max(abs(device.p_min_mw), abs(device.p_max_mw), device.s_mva or 0.0) * 1e6
        return cls(device.device_id, rating, rating)


@dataclass(frozen=True, slots=True)
class MeterRegistration:
    meter: str
    participant_id: str
    devices: tuple[MeteredDevice, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "meter", normal_address(self.meter))
        if not self.devices:
            raise MeteringError(f"meter {self.meter} is registered to no device")

    def device(self, device_id: str) -> MeteredDevice | None:
        for d in self.devices:
            if d.device_id == device_id:
                return d
        return None


def register(
    meter: str, participant: Participant, device_ids: tuple[str, ...]
) -> MeterRegistration:
    """The operator's registration of ``meter`` to ``participant`` and some of its devices."""
    devices = []
    by_id = {d.device_id: d for d in participant.devices}
    for device_id in device_ids:
        if device_id not in by_id:
            raise MeteringError(
                f"participant {participant.participant_id!r} has no device {device_id!r}"
            )
        devices.append(MeteredDevice.of(by_id[device_id]))
    return MeterRegistration(meter, participant.participant_id, tuple(devices))


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One signed reading. ``key`` is what must be unique: one reading per meter, interval,
    period and device."""

    meter: str
    interval: int
    period: int
    device: str
    imported_wh: int
    exported_wh: int
    sequence: int
    signature: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "meter", normal_address(self.meter))
        for name in ("interval", "period", "imported_wh", "exported_wh", "sequence"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v >= 2**63:
                raise MeteringError(f"reading {name} = {v!r} must be a non-negative integer")
        if not self.device:
            raise MeteringError("reading device must not be empty")

    @property
    def key(self) -> tuple[str, int, int, str]:
        return (self.meter, self.interval, self.period, self.device)

    @property
    def net_export_wh(self) -> int:
        return self.exported_wh - self.imported_wh

    def same_content(self, other: MeterReading) -> bool:
        """The same measurement (the signature aside: resending it is idempotent)."""
        return (
            self.key == other.key
            and self.imported_wh == other.imported_wh
            and self.exported_wh == other.exported_wh
            and self.sequence == other.sequence
        )

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``Reading`` message the meter signs."""
        return {
            "meter": self.meter,
            "interval": self.interval,
            "period": self.period,
            "device": self.device,
            "importedWh": self.imported_wh,
            "exportedWh": self.exported_wh,
            "sequence": self.sequence,
        }
