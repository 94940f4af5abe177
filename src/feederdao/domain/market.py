"""Market values: participants, their devices, and bids/offers made of price–quantity blocks."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from feederdao.domain.network import DeviceKind
from feederdao.errors import BidValidationError, ParticipantError

#: The most price–quantity blocks one bid may carry.
MAX_BLOCKS = 10


@dataclass(frozen=True, slots=True)
class BidProblem:
    """One thing wrong with one bid: ``field`` is the path of the value at fault
    (``bus``, ``period``, ``blocks[1].price_eur_per_mwh``)."""

    bid_id: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"bid {self.bid_id!r} {self.field}: {self.reason}"


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
        found = bid_problems(self)
        if found:
            raise BidValidationError.of(found)

    def on_bus(self, bus: int) -> Bid:
        """The same bid at ``bus`` (a fused bus's canonical number)."""
        return self if bus == self.bus else replace(self, bus=bus)

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


def bid_problems(bid: Bid) -> list[BidProblem]:
    """What is wrong with a bid on its own, whatever the market: empty ids, a negative period,
    no or too many blocks, prices or quantities that are not finite, quantities that are not
    positive. (What a market allows besides is :class:`feederdao.domain.bidrules.BidRules`.)"""
    out: list[BidProblem] = []

    def problem(field: str, reason: str) -> None:
        out.append(BidProblem(bid.bid_id, field, reason))

    if not bid.bid_id:
        problem("bid_id", "bid_id is empty")
    if not bid.participant_id:
        problem("participant_id", "participant_id is empty")
    if bid.period < 0:
        problem("period", f"period {bid.period} is negative")
    if not 1 <= len(bid.blocks) <= MAX_BLOCKS:
        problem(
            "blocks", f"a bid has 1 to {MAX_BLOCKS} price-quantity blocks, not {len(bid.blocks)}"
        )
    for k, block in enumerate(bid.blocks):
        p, q = block.price_eur_per_mwh, block.quantity_mw
        if not math.isfinite(p):
            problem(f"blocks[{k}].price_eur_per_mwh", f"price {p} is not a finite number")
        if not math.isfinite(q):
            problem(f"blocks[{k}].quantity_mw", f"quantity {q} is not a finite number")
        elif q <= 0:
            problem(
                f"blocks[{k}].quantity_mw",
                f"quantity {q:g} MW must be positive (side 'buy' for bids, 'sell' for offers)",
            )
    return out
