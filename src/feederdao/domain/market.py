"""Market values: participants, their devices, and bids/offers made of price–quantity blocks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from feederdao.domain.network import DeviceKind
from feederdao.errors import BidValidationError, ParticipantError

#: Hard sanity limits for a single block; anything beyond is a typo, not a bid.
MAX_ABS_PRICE_EUR_PER_MWH = 100_000.0
MAX_QUANTITY_MW = 1_000.0


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class PriceBlock:
    """``quantity_mw`` (average power over one period) at ``price_eur_per_mwh``."""

    price_eur_per_mwh: float
    quantity_mw: float


@dataclass(frozen=True, slots=True)
class Bid:
    """A buy bid or sell offer of one participant at one bus for one period.

    Blocks are independent: each may be accepted partly. ``device_id`` ties an offer to the
    device that delivers it (a PV inverter's offer is bounded by its available power).
    """

    bid_id: str
    participant_id: str
    bus: int
    period: int
    side: Side
    blocks: tuple[PriceBlock, ...]
    device_id: str | None = None

    def __post_init__(self) -> None:
        where = f"bid {self.bid_id!r}"
        if not self.bid_id:
            raise BidValidationError("a bid has an empty bid_id")
        if not self.participant_id:
            raise BidValidationError(f"{where}: participant_id is empty")
        if self.period < 0:
            raise BidValidationError(f"{where}: period {self.period} is negative")
        if not self.blocks:
            raise BidValidationError(f"{where}: has no price-quantity block")
        for k, block in enumerate(self.blocks):
            p, q = block.price_eur_per_mwh, block.quantity_mw
            if not math.isfinite(p):
                raise BidValidationError(f"{where} block {k}: price {p} is not a finite number")
            if not math.isfinite(q):
                raise BidValidationError(f"{where} block {k}: quantity {q} is not a finite number")
            if q < 0:
                raise BidValidationError(
                    f"{where} block {k}: quantity {q} MW is negative "
                    "(use side='sell' for offers, 'buy' for bids)"
                )
            if q > MAX_QUANTITY_MW:
                raise BidValidationError(
                    f"{where} block {k}: quantity {q} MW exceeds {MAX_QUANTITY_MW} MW"
                )
            if abs(p) > MAX_ABS_PRICE_EUR_PER_MWH:
                raise BidValidationError(
                    f"{where} block {k}: price {p} EUR/MWh is beyond "
                    f"±{MAX_ABS_PRICE_EUR_PER_MWH} EUR/MWh"
                )

    @property
    def total_mw(self) -> float:
        return sum(b.quantity_mw for b in self.blocks)


@dataclass(frozen=True, slots=True)
class ParticipantDevice:
    """A device a participant controls and what it can do.

    ``p_min_mw``/``p_max_mw`` bound the device's power in its own sign convention (consumption
    for loads and storage, charging positive; injection for PV). ``s_mva`` is the inverter or
    connection rating; ``min_power_factor`` limits reactive power for inverters; ``e_mwh`` is
    a storage's energy capacity (or a flexible load's energy need per day).
    """

    device_id: str
    kind: DeviceKind
    p_min_mw: float
    p_max_mw: float
    s_mva: float | None = None
    min_power_factor: float | None = None
    e_mwh: float | None = None
    soc_init_percent: float = 50.0
    soc_min_percent: float = 10.0
    soc_max_percent: float = 90.0
    eta_charge: float = 0.95
    eta_discharge: float = 0.95


@dataclass(frozen=True, slots=True)
class Participant:
    """A market participant at one bus; ``address`` is its Ethereum account, when known."""

    participant_id: str
    bus: int
    devices: tuple[ParticipantDevice, ...] = ()
    address: str | None = None

    def __post_init__(self) -> None:
        if not self.participant_id:
            raise ParticipantError("a participant has an empty participant_id")
        seen: set[str] = set()
        for d in self.devices:
            if d.device_id in seen:
                raise ParticipantError(
                    f"participant {self.participant_id!r}: device {d.device_id!r} listed twice"
                )
            seen.add(d.device_id)

    def has_device(self, device_id: str) -> bool:
        return any(d.device_id == device_id for d in self.devices)
