"""Controllable devices: PV inverters, storage and flexible loads."""

from __future__ import annotations

import math
from typing import Any

import pyomo.environ as pyo

from feederdao.optimizer.data import MarketData
from feederdao.optimizer.limits import polygon_directions
from feederdao.optimizer.network import Injections


def add_pv_inverters(m: pyo.ConcreteModel, data: MarketData, injections: Injections) -> None:
    """Reactive power of each PV inverter within its capability.

    Where the inverter's P is fixed (its available power, or its owner is not in the market
    that period) the circle P² + Q² ≤ S² and the power-factor limit |Q| ≤ tan φ · P reduce to
    bounds on Q. Where its P follows an offer (P = available − unsold offered quantity) they
    are rows: the half-polygon for P ≥ 0 and the two power-factor lines.
    ``q_abs`` ≥ |Q| carries a small cost so inverters only absorb or inject when it helps.
    """
    invs = data.inverters
    tied = getattr(m, "pv_tied", {})
    m.PV = pyo.Set(initialize=range(len(invs)))
    m.q_pv = pyo.Var(m.PV, m.T, initialize=0.0)
    m.q_abs = pyo.Var(m.PV, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.q_abs_pos = pyo.Constraint(m.PV, m.T, rule=lambda m, i, t: m.q_abs[i, t] >= m.q_pv[i, t])
    m.q_abs_neg = pyo.Constraint(m.PV, m.T, rule=lambda m, i, t: m.q_abs[i, t] >= -m.q_pv[i, t])
    rows: list[tuple[int, int]] = []
    p_expr: dict[tuple[int, int], Any] = {}
    for i, inv in enumerate(invs):
        for t in range(data.n_periods):
            avail = float(inv.available_mw[t])
            blocks = tied.get((inv.device_id, t))
            if blocks and inv.represented[t]:
                p_expr[(i, t)] = avail - sum(m.qty[n] - m.x[n] for n in blocks)
                rows.append((i, t))
                m.q_pv[i, t].setlb(-inv.s_mva)
                m.q_pv[i, t].setub(inv.s_mva)
            else:
                q_max = min(inv.tan_phi * avail, math.sqrt(max(inv.s_mva**2 - avail**2, 0.0)))
                m.q_pv[i, t].setlb(-q_max)
                m.q_pv[i, t].setub(q_max)
            injections.add_q(inv.bus_pos, t, m.q_pv[i, t])
    half = [d for d in polygon_directions(data.options.polygon_sides) if d[0] > 1e-9]
    m.PV_ROWS = pyo.Set(initialize=rows, dimen=2)
    m.PV_SIDES = pyo.Set(initialize=range(len(half)))
    m.pv_circle = pyo.Constraint(
        m.PV_ROWS,
        m.PV_SIDES,
        rule=lambda m, i, t, s: (
            half[s][0] * p_expr[(i, t)] + half[s][1] * m.q_pv[i, t] <= invs[i].s_mva
        ),
    )
    m.pv_pf_up = pyo.Constraint(
        m.PV_ROWS, rule=lambda m, i, t: m.q_pv[i, t] <= invs[i].tan_phi * p_expr[(i, t)]
    )
    m.pv_pf_down = pyo.Constraint(
        m.PV_ROWS, rule=lambda m, i, t: -m.q_pv[i, t] <= invs[i].tan_phi * p_expr[(i, t)]
    )
    m.pv_p_expr = p_expr


def add_storage(m: pyo.ConcreteModel, data: MarketData, injections: Injections) -> None:
    """Storage: charge/discharge power, state of charge and reactive capability.

    soc[t] = soc[t−1] + (η_c · ch[t] − dis[t] / η_d) · Δt, soc_min ≤ soc ≤ soc_max, and the
    final state at least the initial one. In ``profile`` mode charge and discharge are fixed to
    the storage's profile. P and Q share the converter's S rating (polygon).
    """
    units = data.storage
    dt = data.period_hours
    m.ST = pyo.Set(initialize=range(len(units)))
    m.ch = pyo.Var(
        m.ST, m.T, domain=pyo.NonNegativeReals, bounds=lambda m, s, t: (0.0, units[s].p_max_mw)
    )
    m.dis = pyo.Var(
        m.ST, m.T, domain=pyo.NonNegativeReals, bounds=lambda m, s, t: (0.0, units[s].p_max_mw)
    )
    m.soc = pyo.Var(m.ST, m.T, bounds=lambda m, s, t: (units[s].soc_min_mwh, units[s].soc_max_mwh))
    m.q_st = pyo.Var(m.ST, m.T, bounds=lambda m, s, t: (-units[s].s_mva, units[s].s_mva))

    def soc_rule(m: pyo.ConcreteModel, s: int, t: int) -> pyo.Expression:
        u = units[s]
        prev = m.soc[s, t - 1] if t > 0 else u.soc_init_mwh
        return (
            m.soc[s, t] == prev + (u.eta_charge * m.ch[s, t] - m.dis[s, t] / u.eta_discharge) * dt
        )

    m.soc_balance = pyo.Constraint(m.ST, m.T, rule=soc_rule)
    last = data.n_periods - 1
    m.soc_final = pyo.Constraint(m.ST, rule=lambda m, s: m.soc[s, last] >= units[s].soc_init_mwh)
    # P–Q capability: an octagon inside the circle P² + Q² ≤ S² with corners on the P and Q
    # axes (full active and reactive rating; at most 7.6 % short of the circle in between);
    # in profile mode P is fixed and Q is simply bounded
    octagon = [
        (math.cos(math.pi / 8 + k * math.pi / 4), math.sin(math.pi / 8 + k * math.pi / 4))
        for k in range(8)
    ]
    m.ST_SIDES = pyo.Set(initialize=range(len(octagon)))
    optimise = data.options.storage == "optimise"
    m.st_circle = pyo.Constraint(
        m.ST,
        m.T,
        m.ST_SIDES,
        rule=lambda m, s, t, k: (
            (
                octagon[k][0] * (m.ch[s, t] - m.dis[s, t]) + octagon[k][1] * m.q_st[s, t]
                <= units[s].s_mva * math.cos(math.pi / 8)
            )
            if optimise
            else pyo.Constraint.Skip
        ),
    )
    for s, u in enumerate(units):
        for t in range(data.n_periods):
            injections.add_p(u.bus_pos, t, m.dis[s, t] - m.ch[s, t])
            injections.add_q(u.bus_pos, t, m.q_st[s, t])
            if not optimise:
                prof = max(min(float(u.profile_mw[t]), u.p_max_mw), -u.p_max_mw)
                m.ch[s, t].fix(max(prof, 0.0))
                m.dis[s, t].fix(max(-prof, 0.0))
                q_max = math.sqrt(max(u.s_mva**2 - prof**2, 0.0))
                m.q_st[s, t].setlb(-q_max)
                m.q_st[s, t].setub(q_max)
    if data.options.storage == "profile":
        m.soc_final.deactivate()
        for s in m.ST:
            for t in m.T:
                m.soc[s, t].setlb(None)
                m.soc[s, t].setub(None)


def add_flex_loads(m: pyo.ConcreteModel, data: MarketData, injections: Injections) -> None:
    """Flexible loads (EV chargers, heat pumps): p ∈ [p_min, p_max] each period and
    Σ p · Δt ≥ energy need over the window (scaled to the window's share of a day)."""
    flex = data.flex
    dt = data.period_hours
    share = min(1.0, data.n_periods * dt / 24.0)
    m.FX = pyo.Set(initialize=range(len(flex)))
    m.p_flex = pyo.Var(m.FX, m.T, bounds=lambda m, f, t: (flex[f].p_min_mw, flex[f].p_max_mw))
    m.flex_energy = pyo.Constraint(
        m.FX,
        rule=lambda m, f: (
            sum(m.p_flex[f, t] for t in m.T) * dt
            >= min(flex[f].energy_mwh * share, flex[f].p_max_mw * data.n_periods * dt)
        ),
    )
    for f, fl in enumerate(flex):
        for t in range(data.n_periods):
            injections.add_p(fl.bus_pos, t, -m.p_flex[f, t])


def add_elastic(m: pyo.ConcreteModel, data: MarketData, injections: Injections) -> None:
    """Load shedding and curtailment at every bus, priced at the price cap, and the voltage
    slacks' penalty. Fixed at zero unless the clearing runs elastic (or diagnoses
    infeasibility)."""
    dt = data.period_hours
    cap = data.params.price_cap_eur_per_mwh
    m.shed = pyo.Var(m.B, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.spill = pyo.Var(m.B, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    for b in m.B:
        for t in m.T:
            injections.add_p(b, t, m.shed[b, t] - m.spill[b, t])
    volt_penalty = 100.0 * cap
    m.elastic_penalty = pyo.Expression(
        expr=cap * dt * sum(m.shed[b, t] + m.spill[b, t] for b in m.B for t in m.T)
        + volt_penalty * dt * sum(m.vs_hi[c] + m.vs_lo[c] for c in m.vs_hi)
    )


def set_elastic(m: pyo.ConcreteModel, on: bool) -> None:
    """Free (``on``) or fix at zero the elastic variables."""
    for var in (m.shed, m.spill, m.vs_hi, m.vs_lo):
        for c in var:
            if on:
                var[c].unfix()
            else:
                var[c].fix(0.0)
