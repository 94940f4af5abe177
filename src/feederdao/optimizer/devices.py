"""Controllable devices: PV inverters, storage, flexible loads, and the elastic slacks.

Device capabilities P² + Q² ≤ S² use the inscribed polygon of
:mod:`feederdao.optimizer.polygon` (``ClearingOptions.polygon_sides`` sides), so every setpoint
the clearing issues is one the converter can deliver.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from feederdao.optimizer.data import MarketData
from feederdao.optimizer.lp import INF, Cols, FloatArray, IntArray, LinearProgram, Rows, Terms
from feederdao.optimizer.market import PvTies
from feederdao.optimizer.network import Injections
from feederdao.optimizer.polygon import Polygon, polygon


@dataclass(frozen=True)
class Inverters:
    """Reactive power of the PV inverters, split ``q = q_up − q_dn`` ([t, inverter]) so a
    small cost on both keeps inverters idle unless Q helps. ``capability`` holds the rows of
    the (inverter, period) groups whose P follows their offers (``groups``: indices into the
    offer ties)."""

    q_up: Cols
    q_dn: Cols
    capability: Rows | None
    groups: IntArray


def _follows(data: MarketData, ties: PvTies) -> IntArray:
    """The tie groups whose inverter's P follows its offers (its owner bids that period)."""
    rep = [inv.represented for inv in data.inverters]
    ok = np.array([bool(rep[i][t]) for i, t in zip(ties.inverter, ties.period, strict=True)])
    return np.flatnonzero(ok) if ok.size else np.zeros(0, dtype=np.int64)


def _pv_upper(data: MarketData, ties: PvTies, groups: IntArray, m_poly: int) -> FloatArray:
    """Right-hand sides of the capability rows: the polygon's sides, then the two
    power-factor lines, with P = available − Σ offered + Σ accepted."""
    invs = data.inverters
    gi, gt = ties.inverter[groups], ties.period[groups]
    offered = np.zeros(ties.inverter.size)
    tied = ties.group >= 0
    np.add.at(offered, ties.group[tied], data.blocks.quantity[tied])
    avail = np.array([invs[i].available_mw[t] for i, t in zip(gi, gt, strict=True)])
    const = avail - offered[groups]
    s = np.array([invs[i].s_mva for i in gi])
    tan = np.array([invs[i].tan_phi for i in gi])
    half = polygon(data.options.polygon_sides, "inscribed").half()
    upper = np.empty((groups.size, m_poly + 2))
    upper[:, :m_poly] = half.scale * s[:, None] - half.cos[None, :] * const[:, None]
    upper[:, m_poly:] = (tan * const)[:, None]
    return upper


def add_pv_inverters(
    lp: LinearProgram, data: MarketData, x: Cols, ties: PvTies, injections: Injections
) -> Inverters:
    """Reactive power of each PV inverter within its capability.

    Where the inverter's P is fixed (its available power, or its owner is not in the market
    that period) the circle P² + Q² ≤ S² and the power-factor limit |Q| ≤ tan φ · P are bounds
    on Q. Where its P follows its offers (P = available − unsold offered quantity) they are rows:
    the half-polygon for P ≥ 0 and the two power-factor lines.
    """
    invs = data.inverters
    n_t, n_i = data.n_periods, len(invs)
    dt = data.period_hours
    eps = data.options.reactive_cost_eur_per_mvarh
    avail = np.array([inv.available_mw for inv in invs], dtype=float).T.reshape(n_t, n_i)
    s = np.array([inv.s_mva for inv in invs], dtype=float)
    tan = np.array([inv.tan_phi for inv in invs], dtype=float)
    groups = _follows(data, ties)
    follows = np.zeros((n_t, n_i), dtype=bool)
    follows[ties.period[groups], ties.inverter[groups]] = True
    q_max = np.minimum(tan[None, :] * avail, np.sqrt(np.maximum(s[None, :] ** 2 - avail**2, 0.0)))
    q_max = np.where(follows, s[None, :], q_max)
    q_up = lp.add_cols("q_pv_up", (n_t, n_i), 0.0, q_max, dt * eps)
    q_dn = lp.add_cols("q_pv_dn", (n_t, n_i), 0.0, q_max, dt * eps)
    t = np.arange(n_t)[:, None]
    bus = np.array([inv.bus_pos for inv in invs], dtype=np.int64)[None, :]
    injections.add_q(t, bus, q_up.idx, 1.0)
    injections.add_q(t, bus, q_dn.idx, -1.0)
    if not groups.size:
        return Inverters(q_up, q_dn, None, groups)
    gi, gt = ties.inverter[groups], ties.period[groups]
    row_of_group = np.full(ties.inverter.size, -1, dtype=np.int64)
    row_of_group[groups] = np.arange(groups.size)
    half = polygon(data.options.polygon_sides, "inscribed").half()
    m = half.sides + 2  # the polygon's sides, then Q ≤ tan φ P and −Q ≤ tan φ P
    n = groups.size
    rows = np.arange(n * m).reshape(n, m)
    tied = ties.group >= 0
    blocks = np.flatnonzero(tied & (row_of_group[np.maximum(ties.group, 0)] >= 0))
    r_of_block = row_of_group[ties.group[blocks]]
    terms = Terms(n * m)
    # polygon: cos·Σx + sin·(q_up − q_dn) ≤ scale·S − cos·const
    terms.add(rows[r_of_block, : half.sides], x.idx[blocks][:, None], half.cos[None, :])
    terms.add(rows[:, : half.sides], q_up.idx[gt, gi][:, None], half.sin[None, :])
    terms.add(rows[:, : half.sides], q_dn.idx[gt, gi][:, None], -half.sin[None, :])
    # power factor: ±(q_up − q_dn) − tan φ · Σx ≤ tan φ · const
    tg = tan[gi]
    for j, sign in ((half.sides, 1.0), (half.sides + 1, -1.0)):
        terms.add(rows[r_of_block, j], x.idx[blocks], -tg[r_of_block])
        terms.add(rows[:, j], q_up.idx[gt, gi], sign)
        terms.add(rows[:, j], q_dn.idx[gt, gi], -sign)
    upper = _pv_upper(data, ties, groups, half.sides)
    cap = lp.add_rows("pv_capability", (n, m), terms, -INF, upper)
    return Inverters(q_up, q_dn, cap, groups)


def update_pv_offers(lp: LinearProgram, data: MarketData, inv: Inverters, ties: PvTies) -> None:
    """New offered quantities (a re-bid of the same shape): new right-hand sides."""
    if inv.capability is not None:
        sides = polygon(data.options.polygon_sides, "inscribed").half().sides
        lp.set_row_bounds(inv.capability, upper=_pv_upper(data, ties, inv.groups, sides))


@dataclass
class Capability:
    """The storage converters' P–Q polygons (folded, :meth:`Polygon.folded`), written only
    for the (period, unit) pairs in ``written``: where a solve's (P, Q) left them."""

    shape: Polygon
    s_mva: FloatArray  # [unit]
    written: set[tuple[int, int]] = field(default_factory=set)
    families: int = 0  # row families written so far (each batch of rows is one)

    def outside(
        self, p_mw: FloatArray, q_mvar: FloatArray, tol: float = 1e-6
    ) -> set[tuple[int, int]]:
        """(period, unit) pairs without rows whose (P, Q) ``[t, unit]`` lies outside."""
        if not p_mw.size:
            return set()
        poly = self.shape
        reach = np.abs(p_mw)[:, :, None] * poly.cos + np.abs(q_mvar)[:, :, None] * poly.sin
        out = (reach > poly.scale * self.s_mva[None, :, None] + tol).any(axis=2)
        pairs = {(int(t), int(s)) for t, s in zip(*np.nonzero(out), strict=True)}
        return pairs - self.written


@dataclass(frozen=True)
class Storage:
    """Charge, discharge (MW) and reactive power (Mvar, ``q_up − q_dn``, each with the small
    reactive cost) of each unit ``[t, unit]``; state of charge (MWh) when storage is
    optimised."""

    ch: Cols
    dis: Cols
    q_up: Cols
    q_dn: Cols
    soc: Cols | None
    capability: Capability | None = None


def add_capability_rows(lp: LinearProgram, st: Storage, keys: Iterable[tuple[int, int]]) -> int:
    """``cos θ · (ch + dis) + sin θ · (q_up + q_dn) ≤ scale · S`` for the (period, unit)
    ``keys`` without rows yet; return how many were new."""
    cap = st.capability
    if cap is None:
        return 0
    new = sorted(set(keys) - cap.written)
    if not new:
        return 0
    arr = np.array(new, dtype=np.int64).reshape(-1, 2)
    t, u = arr[:, 0], arr[:, 1]
    poly = cap.shape
    n, m = len(new), poly.sides
    rows = np.arange(n * m).reshape(n, m)
    terms = Terms(n * m)
    for cols, coef in (
        (st.ch, poly.cos),
        (st.dis, poly.cos),
        (st.q_up, poly.sin),
        (st.q_dn, poly.sin),
    ):
        terms.add(rows, cols.idx[t, u][:, None], coef[None, :])
    upper = np.broadcast_to((poly.scale * cap.s_mva[u])[:, None], (n, m))
    lp.add_rows(f"storage_capability_{cap.families}", (n, m), terms, -INF, upper)
    cap.families += 1
    cap.written.update(new)
    return n


def add_storage(lp: LinearProgram, data: MarketData, injections: Injections) -> Storage:
    """Storage: charge/discharge power, state of charge and reactive capability.

    Optimised: soc[t] = soc[t−1] + (η_c · ch[t] − dis[t] / η_d) · Δt within [soc_min, soc_max],
    the final state at least the initial one (``storage_end``: or equal to it, or free),
    ch + dis ≤ P_max (one converter: charging and discharging share the period), and
    (ch − dis, Q) inside the converter's polygon, written folded (:meth:`Polygon.folded`: a
    quarter of the rows for the same polygon) and only where a solve left it
    (:func:`add_capability_rows`): most units never use the reactive power that would take them
    there, and the full set of rows made the program several times slower to solve. Held at its
    profile: charge and discharge are fixed and Q is bounded by the circle; no state of charge,
    so the periods stay independent.
    """
    units = data.storage
    n_t, n_s = data.n_periods, len(units)
    dt = data.period_hours
    p_max = np.array([u.p_max_mw for u in units])
    s_max = np.array([u.s_mva for u in units])
    t = np.arange(n_t)[:, None]
    bus = np.array([u.bus_pos for u in units], dtype=np.int64)[None, :]
    optimise = data.options.storage == "optimise"
    q_cost = dt * data.options.reactive_cost_eur_per_mvarh
    if optimise:
        ch = lp.add_cols("ch", (n_t, n_s), 0.0, p_max[None, :])
        dis = lp.add_cols("dis", (n_t, n_s), 0.0, p_max[None, :])
        q_max = np.broadcast_to(s_max[None, :], (n_t, n_s))
    else:
        prof = np.array([u.profile_mw for u in units], dtype=float).T.reshape(n_t, n_s)
        prof = np.clip(prof, -p_max[None, :], p_max[None, :])
        q_max = np.sqrt(np.maximum(s_max[None, :] ** 2 - prof**2, 0.0))
        ch = lp.add_cols("ch", (n_t, n_s), np.maximum(prof, 0), np.maximum(prof, 0))
        dis = lp.add_cols("dis", (n_t, n_s), np.maximum(-prof, 0), np.maximum(-prof, 0))
    q_up = lp.add_cols("q_st_up", (n_t, n_s), 0.0, q_max, q_cost)
    q_dn = lp.add_cols("q_st_dn", (n_t, n_s), 0.0, q_max, q_cost)
    injections.add_p(t, bus, dis.idx, 1.0)
    injections.add_p(t, bus, ch.idx, -1.0)
    injections.add_q(t, bus, q_up.idx, 1.0)
    injections.add_q(t, bus, q_dn.idx, -1.0)
    if not optimise or not n_s:
        return Storage(ch, dis, q_up, q_dn, None)
    soc_min = np.array([u.soc_min_mwh for u in units])
    soc_max = np.array([u.soc_max_mwh for u in units])
    soc0 = np.array([u.soc_init_mwh for u in units])
    eta_c = np.array([u.eta_charge for u in units])
    eta_d = np.array([u.eta_discharge for u in units])
    soc = lp.add_cols("soc", (n_t, n_s), soc_min[None, :], soc_max[None, :])
    rows = np.arange(n_t * n_s).reshape(n_t, n_s)
    terms = (
        Terms(n_t * n_s)
        .add(rows, soc.idx, 1.0)
        .add(rows[1:], soc.idx[:-1], -1.0)
        .add(rows, ch.idx, -eta_c[None, :] * dt)
        .add(rows, dis.idx, dt / eta_d[None, :])
    )
    rhs = np.zeros((n_t, n_s))
    rhs[0] = soc0
    lp.add_rows("soc_balance", (n_t, n_s), terms, rhs, rhs)
    end = data.options.storage_end
    if end != "free":
        final = Terms(n_s).add(np.arange(n_s), soc.idx[-1], 1.0)
        lp.add_rows("soc_final", (n_s,), final, soc0, soc0 if end == "equal-start" else INF)
    one = Terms(n_t * n_s).add(rows, ch.idx, 1.0).add(rows, dis.idx, 1.0)
    lp.add_rows("converter", (n_t, n_s), one, -INF, p_max[None, :])
    cap = Capability(polygon(data.options.polygon_sides, "inscribed").folded(), s_max)
    return Storage(ch, dis, q_up, q_dn, soc, cap)


def add_flex_loads(lp: LinearProgram, data: MarketData, injections: Injections) -> Cols:
    """Flexible loads (EV chargers, heat pumps): p ∈ [p_min, p_max] each period and
    Σ p · Δt ≥ energy need over the window (scaled to the window's share of a day)."""
    flex = data.flex
    n_t, n_f = data.n_periods, len(flex)
    dt = data.period_hours
    share = min(1.0, n_t * dt / 24.0)
    lo = np.array([f.p_min_mw for f in flex])
    hi = np.array([f.p_max_mw for f in flex])
    p = lp.add_cols("p_flex", (n_t, n_f), lo[None, :], hi[None, :])
    bus = np.array([f.bus_pos for f in flex], dtype=np.int64)[None, :]
    injections.add_p(np.arange(n_t)[:, None], bus, p.idx, -1.0)
    if n_f:
        need = np.array([min(f.energy_mwh * share, f.p_max_mw * n_t * dt) for f in flex])
        terms = Terms(n_f).add(np.arange(n_f)[None, :], p.idx, dt)
        lp.add_rows("flex_energy", (n_f,), terms, need, INF)
    return p


def add_generators(lp: LinearProgram, data: MarketData, injections: Injections) -> Cols:
    """Reactive power (Mvar, free) of each voltage-controlled generator ``[t, generator]``: it
    holds its bus's voltage (:class:`~feederdao.optimizer.limits.VoltageLimits` fixes that
    voltage), with whatever reactive power it takes, as pandapower's power flow does."""
    gens = data.generators
    q = lp.add_cols("q_gen", (data.n_periods, len(gens)))
    bus = np.array([g.bus_pos for g in gens], dtype=np.int64)[None, :]
    injections.add_q(np.arange(data.n_periods)[:, None], bus, q.idx, 1.0)
    return q


@dataclass(frozen=True)
class Elastic:
    """Load shedding and curtailment ``[t, bus]`` (MW), priced at the price cap."""

    shed: Cols
    spill: Cols


def add_elastic(
    lp: LinearProgram, data: MarketData, n_buses: int, injections: Injections
) -> Elastic:
    """Load shedding and curtailment at every bus, priced at the price cap. Only built when a
    clearing runs elastic (or diagnoses an infeasibility)."""
    n_t = data.n_periods
    cost = data.params.price_cap_eur_per_mwh * data.period_hours
    shed = lp.add_cols("shed", (n_t, n_buses), 0.0, INF, cost)
    spill = lp.add_cols("spill", (n_t, n_buses), 0.0, INF, cost)
    t = np.arange(n_t)[:, None]
    b = np.arange(n_buses)[None, :]
    injections.add_p(t, b, shed.idx, 1.0)
    injections.add_p(t, b, spill.idx, -1.0)
    return Elastic(shed, spill)
