"""Collateral: what a bid can cost at worst, and whether a participant's collateral covers it.

A cleared buyer pays the DLMP of its bus for each accepted block, and the DLMP never exceeds
the limit price of a block the clearing accepted (a block priced below the DLMP is not
accepted); it also pays the network fee on what it buys. A cleared seller is paid the DLMP,
never less than its block's price, so only a negative offer price can cost it money. The
worst-case cost of a bid, over its blocks ``(p, q)`` in a period of ``h`` hours with the fee
``f`` (EUR/MWh), is therefore

    buy:  Σ q·h·max(p + f, 0)
    sell: Σ q·h·max(−p, 0)

in token units rounded up (never below what the clearing can charge).

What covers it: the vault's ``deposited − withdrawn − requested`` (a withdrawal given notice
counts as withdrawn from the moment it is requested, though the vault pays it out only after
the notice) plus the participant's cumulative net
position of the last metered settlement (positive: the market owes it), less the worst-case
cost of its other active bids in intervals not yet settled. A bid whose worst case exceeds
that is refused; :class:`Cover` says by how much.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from feederdao.metering.errors import MeteringError
from feederdao.metering.settlement import UNITS_PER_EUR


def worst_case_units(
    side: str, blocks: Iterable[Sequence[float]], period_hours: float, fee_eur_per_mwh: float
) -> int:
    """The most a bid can cost its participant (token units, rounded up; 0 for a bid that can
    only earn)."""
    if side not in ("buy", "sell"):
        raise MeteringError(f"side {side!r}: choose buy or sell")
    eur = 0.0
    for price, quantity in blocks:
        per_mwh = max(price + fee_eur_per_mwh, 0.0) if side == "buy" else max(-price, 0.0)
        eur += quantity * period_hours * per_mwh
    return math.ceil(eur * UNITS_PER_EUR - 1e-6) if eur > 0 else 0


def units_text(units: int) -> str:
    """Token units as EUR with six decimals (``-1.500000 EUR``)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNITS_PER_EUR)
    return f"{sign}{whole}.{frac:06d} EUR"


@dataclass(frozen=True, slots=True)
class Cover:
    """A participant's collateral against one more bid (token units)."""

    deposited: int
    withdrawn: int
    position: int  # cumulative net position of the last metered settlement
    open_bids: int  # worst-case cost of its other active bids in unsettled intervals
    bid: int  # worst-case cost of the bid
    requested: int = 0  # withdrawals given notice of and not yet paid out

    @property
    def available(self) -> int:
        """What is left to cover new bids."""
        return self.deposited - self.withdrawn - self.requested + self.position - self.open_bids

    @property
    def shortfall(self) -> int:
        """How much more collateral the bid needs (0: covered)."""
        return max(self.bid - self.available, 0)

    def explain(self) -> str:
        return (
            f"can cost up to {units_text(self.bid)} but the collateral covers "
            f"{units_text(max(self.available, 0))} (deposited {units_text(self.deposited)}, "
            f"withdrawn {units_text(self.withdrawn)}, requested for withdrawal "
            f"{units_text(self.requested)}, settled position "
            f"{units_text(self.position)}, other open bids up to {units_text(self.open_bids)}): "
            f"short by {units_text(self.shortfall)} ({self.shortfall} token units)"
        )
