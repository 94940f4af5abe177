"""Bids and offers: one column per price–quantity block, its cost, and the PV offer caps.

The objective is −welfare (EUR): Σ_t Δt · [Σ offers price·x − Σ bids (price − fee)·x
+ import price · import − export price · export] plus small costs on inverters' reactive
power and, when the clearing runs elastic, the shedding and curtailment penalties. Each family
puts its own part on its columns' costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feederdao.optimizer.data import MarketData
from feederdao.optimizer.lp import Cols, FloatArray, IntArray, LinearProgram, Rows, Terms
from feederdao.optimizer.network import Injections


def block_cost(data: MarketData) -> FloatArray:
    """Objective coefficient of every block per MWh: the asking price for an offer, minus the
    willingness to pay net of the network fee for a bid."""
    bl = data.blocks
    return np.where(bl.is_buy, data.params.network_fee_eur_per_mwh - bl.price, bl.price)


def add_bid_blocks(lp: LinearProgram, data: MarketData, injections: Injections) -> Cols:
    """x[n] ∈ [0, quantity_n]: the accepted part of each block (MW in its period). Buy blocks
    consume at their bus, sell blocks inject."""
    bl = data.blocks
    x = lp.add_cols(
        "x",
        (len(bl),),
        0.0,
        bl.quantity,
        data.period_hours * block_cost(data),
        period=bl.period,
    )
    injections.add_p(bl.period, bl.bus_pos, x.idx, np.where(bl.is_buy, -1.0, 1.0))
    return x


@dataclass(frozen=True)
class PvTies:
    """Offers tied to PV inverters, grouped by (inverter, period): ``group[n]`` is the group of
    block ``n`` (-1: not tied); a group's inverter and period are ``inverter[g]``/``period[g]``.
    ``caps`` are the rows Σ x ≤ available power of each group."""

    group: IntArray
    inverter: IntArray
    period: IntArray
    caps: Rows | None


def add_pv_offer_caps(lp: LinearProgram, data: MarketData, x: Cols) -> PvTies:
    """Σ accepted offers tied to a PV inverter in a period ≤ its available power."""
    bl = data.blocks
    inv_of = {inv.device_id: i for i, inv in enumerate(data.inverters)}
    inv = np.array([inv_of.get(d, -1) if d is not None else -1 for d in bl.device], dtype=np.int64)
    tied = (inv >= 0) & ~bl.is_buy
    keys = inv * max(data.n_periods, 1) + bl.period
    uniq, group_of_tied = np.unique(keys[tied], return_inverse=True)
    group = np.full(len(bl), -1, dtype=np.int64)
    group[tied] = group_of_tied
    g_inv, g_t = uniq // max(data.n_periods, 1), uniq % max(data.n_periods, 1)
    if not uniq.size:
        return PvTies(group, g_inv, g_t, None)
    avail = np.array([data.inverters[i].available_mw[t] for i, t in zip(g_inv, g_t, strict=True)])
    terms = Terms(uniq.size).add(group[tied], x.idx[tied], 1.0)
    caps = lp.add_rows("pv_offer_cap", (uniq.size,), terms, -np.inf, avail)
    return PvTies(group, g_inv, g_t, caps)
