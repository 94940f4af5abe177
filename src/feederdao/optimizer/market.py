"""Bids, offers, the wholesale interface and the welfare objective."""

from __future__ import annotations

import pyomo.environ as pyo

from feederdao.optimizer.data import MarketData
from feederdao.optimizer.network import Injections


def block_cost(data: MarketData, n: int) -> float:
    """Objective coefficient of block ``n`` per MWh: the asking price for an offer, minus the
    willingness to pay net of the network fee for a bid."""
    bl = data.blocks
    price = float(bl.price[n])
    return price if not bl.is_buy[n] else data.params.network_fee_eur_per_mwh - price


def add_bid_blocks(m: pyo.ConcreteModel, data: MarketData, injections: Injections) -> None:
    """x[n] ∈ [0, quantity_n]: the accepted part of each block (MW in its period).

    Buy blocks consume at their bus, sell blocks inject. An offer tied to a PV device cannot
    sell more than the device has available (``pv_offer_cap``).
    """
    bl = data.blocks
    m.N = pyo.Set(initialize=range(len(bl)))
    m.qty = pyo.Param(m.N, mutable=True, initialize=lambda m, n: float(bl.quantity[n]))
    m.price = pyo.Param(m.N, mutable=True, initialize=lambda m, n: block_cost(data, n))
    m.x = pyo.Var(m.N, domain=pyo.NonNegativeReals, bounds=lambda m, n: (0.0, m.qty[n]))
    for n in range(len(bl)):
        sign = -1.0 if bl.is_buy[n] else 1.0
        injections.add_p(int(bl.bus_pos[n]), int(bl.period[n]), sign * m.x[n])


def add_pv_offer_caps(m: pyo.ConcreteModel, data: MarketData) -> None:
    """Σ accepted offers tied to a PV inverter in a period ≤ its available power."""
    bl = data.blocks
    tied: dict[tuple[str, int], list[int]] = {}
    for n in range(len(bl)):
        dev = bl.device[n]
        if dev is not None and not bl.is_buy[n]:
            tied.setdefault((dev, int(bl.period[n])), []).append(n)
    avail = {inv.device_id: inv.available_mw for inv in data.inverters}
    keys = [key for key in tied if key[0] in avail]
    m.PVCAP = pyo.Set(initialize=range(len(keys)))
    m.pv_offer_cap = pyo.Constraint(
        m.PVCAP,
        rule=lambda m, i: (
            sum(m.x[n] for n in tied[keys[i]]) <= float(avail[keys[i][0]][keys[i][1]])
        ),
    )
    m.pv_tied = tied


def add_objective(m: pyo.ConcreteModel, data: MarketData) -> None:
    """Minimise −welfare (EUR):

    Σ_t Δt · [ Σ offers price·x − Σ bids (price − fee)·x + import price·imp − export price·exp
    + a small cost on inverters' reactive power and on losses + elastic penalties ].
    """
    dt = data.period_hours
    bl = data.blocks
    w = data.wholesale
    eps = data.options.reactive_cost_eur_per_mvarh
    market = sum(dt * m.price[n] * m.x[n] for n in range(len(bl)))
    wholesale = sum(
        float(w.import_eur_per_mwh[t] * dt) * m.imp[s, t]
        - float(w.export_eur_per_mwh[t] * dt) * m.exp[s, t]
        for s in m.S
        for t in m.T
    )
    reactive = eps * dt * sum(m.q_abs[c] for c in m.q_abs) if hasattr(m, "q_abs") else 0.0
    # a token cost on losses: the loss variables are only bounded below (tangent cuts), so
    # without it a solver may "burn" energy that nobody values
    burn = eps * dt * sum(m.loss_p[c] for c in m.loss_p) if hasattr(m, "loss_p") else 0.0
    m.welfare_expr = pyo.Expression(expr=-(market + wholesale))
    m.obj = pyo.Objective(
        expr=market + wholesale + reactive + burn + m.elastic_penalty, sense=pyo.minimize
    )
