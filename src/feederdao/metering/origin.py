"""Proof of origin: metered export of local sources shared among the buyers it supplied.

For each period, every source (a PV or storage device) exporting x_s Wh issues exactly x_s
certificates (1 certificate = 1 Wh). With X = Σ x_s the local export and D = Σ d_b the metered
import of the buyers (participants whose devices drew from the grid, d_b Wh each), the local
supply reaching buyers is min(X, D); each source gives buyer b

    a[s, b] = ⌊x_s · min(X, D) · d_b / (X · D)⌋

and keeps the rest (what went upstream, plus rounding). No buyer receives more than it drew;
no source issues more than it exported.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Issue:
    """The certificates of one source in one period: to each holder (participant id) its Wh."""

    period: int
    source: str
    producer: str
    holders: tuple[tuple[str, int], ...]

    @property
    def total_wh(self) -> int:
        return sum(wh for _, wh in self.holders)


def allocate(
    metered_wh: Mapping[tuple[str, int], int],
    owner: Mapping[str, str],
    sources: Collection[str],
) -> list[Issue]:
    """The certificates to issue, per period and source, from metered net exports."""
    periods = sorted({t for _, t in metered_wh})
    out: list[Issue] = []
    for t in periods:
        supply = {
            d: wh for (d, p), wh in sorted(metered_wh.items()) if p == t and d in sources and wh > 0
        }
        demand: dict[str, int] = {}
        for (d, p), wh in sorted(metered_wh.items()):
            if p == t and wh < 0:
                demand[owner[d]] = demand.get(owner[d], 0) - wh
        x_total, d_total = sum(supply.values()), sum(demand.values())
        local = min(x_total, d_total)
        for source, x in supply.items():
            holders: dict[str, int] = {}
            given = 0
            if local:
                for buyer, drawn in sorted(demand.items()):
                    a = x * local * drawn // (x_total * d_total)
                    if a:
                        holders[buyer] = holders.get(buyer, 0) + a
                        given += a
            producer = owner[source]
            if x - given:
                holders[producer] = holders.get(producer, 0) + x - given
            out.append(Issue(t, source, producer, tuple(sorted(holders.items()))))
    return out
