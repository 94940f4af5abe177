"""Operating limits: bus voltage band, branch thermal polygons, substation import/export."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pyomo.environ as pyo

from feederdao.domain.network import NetworkView
from feederdao.optimizer.data import MarketData
from feederdao.optimizer.topology import Topology


def polygon_directions(n_sides: int) -> list[tuple[float, float]]:
    """Unit normals (cos θ, sin θ) of a regular polygon circumscribing the unit circle."""

    def clean(x: float) -> float:
        return 0.0 if abs(x) < 1e-12 else x  # exact zeros, not 6e-17, on the axes

    return [
        (clean(math.cos(2 * math.pi * s / n_sides)), clean(math.sin(2 * math.pi * s / n_sides)))
        for s in range(n_sides)
    ]


def branch_limit_mva(view: NetworkView, data: MarketData) -> np.ndarray:
    """Apparent-power limit per branch (inf: no rating): rating × loading limit, less the
    reserve margin. The tighter of the governance parameter and the element's own
    ``max_loading_percent`` applies."""
    p = data.params
    keep = 1.0 - p.reserve_margin_percent / 100.0
    out = np.full(len(view.branches), np.inf)
    for k, br in enumerate(view.branches):
        if br.rating_mva is None:
            continue
        gov = p.max_line_loading_percent if br.kind == "line" else p.max_trafo_loading_percent
        out[k] = br.rating_mva * min(gov, br.max_loading_percent) / 100.0 * keep
    return out


def allowed_loading_percent(view: NetworkView, data: MarketData) -> np.ndarray:
    """The loading (percent of rating, as pandapower reports it) each branch may reach: the
    limit of :func:`branch_limit_mva` over the rating; inf where the branch has no rating."""
    limit = branch_limit_mva(view, data)
    rating = np.array([br.rating_mva or np.inf for br in view.branches])
    return np.asarray(np.where(np.isfinite(limit), limit / rating * 100.0, np.inf))


def add_voltage_limits(
    m: pyo.ConcreteModel, view: NetworkView, data: MarketData, topo: Topology
) -> None:
    """v_min² ≤ v[b, t] + voff[b, t] ≤ v_max² at every non-substation bus.

    ``voff`` is the AC-minus-linear error of |V|² at the last AC check (0 before it), so the
    limits hold on the AC voltage. The duals are the voltage part of the DLMP; elastic slacks
    ``vs_hi``/``vs_lo`` are fixed at 0 unless the clearing runs elastic.
    """
    p = data.params
    slack = {int(s) for s in topo.slack_pos}
    m.BV = pyo.Set(initialize=[b for b in range(len(view.buses)) if b not in slack])
    m.voff = pyo.Param(m.B, m.T, mutable=True, initialize=0.0)
    m.vmax2 = pyo.Param(mutable=True, initialize=p.v_max_pu**2)
    m.vmin2 = pyo.Param(mutable=True, initialize=p.v_min_pu**2)
    m.vs_hi = pyo.Var(m.BV, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.vs_lo = pyo.Var(m.BV, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.v_upper = pyo.Constraint(
        m.BV, m.T, rule=lambda m, b, t: m.v[b, t] - m.vs_hi[b, t] <= m.vmax2 - m.voff[b, t]
    )
    m.v_lower = pyo.Constraint(
        m.BV, m.T, rule=lambda m, b, t: m.v[b, t] + m.vs_lo[b, t] >= m.vmin2 - m.voff[b, t]
    )


def flow_bounds(view: NetworkView, data: MarketData, topo: Topology) -> np.ndarray:
    """An upper bound on |S| of each branch per period ([T, K]): everything downstream
    consuming or injecting at once. Branches that cannot reach their limit get no rows."""
    d = data
    swing = np.abs(d.fixed_p_mw) + np.abs(d.fixed_q_mvar)
    bl = d.blocks
    np.add.at(swing, (bl.period, bl.bus_pos), bl.quantity)
    for inv in d.inverters:
        swing[:, inv.bus_pos] += inv.available_mw + inv.s_mva
    for st in d.storage:
        swing[:, st.bus_pos] += 2 * st.s_mva
    for f in d.flex:
        swing[:, f.bus_pos] += abs(f.p_max_mw) + abs(f.p_min_mw)
    # downstream sum through the path incidence: branch k carries what its subtree does
    return np.asarray((topo.path.T @ swing.T).T) * 1.2 + 1e-6


def add_thermal_limits(
    m: pyo.ConcreteModel,
    view: NetworkView,
    data: MarketData,
    bound: np.ndarray | None,
    lazy: bool,
) -> None:
    """cos θ_s · p[k, t] + sin θ_s · q[k, t] ≤ S_k,t for the sides of the polygon.

    Only branches that could reach their limit at all are eligible (``bound``: an upper bound
    on |S| per period and branch, None where unknown). With ``lazy`` rows are added by
    :func:`add_thermal_rows` where an AC check finds a branch near its limit; otherwise every
    eligible row is written now. The duals are the congestion part of the DLMP. ``s_eff`` starts
    at the limit and is tightened where the AC check finds an overload.
    """
    limit = branch_limit_mva(view, data)
    if bound is None:  # no tree to bound flows with: every rated branch is eligible
        bound = np.full((data.n_periods, len(view.branches)), np.inf)
    m.thermal_limit = limit
    m.thermal_eligible = np.isfinite(limit)[None, :] & (bound > limit[None, :] * 0.9)
    m.thermal_directions = polygon_directions(data.options.polygon_sides)
    m.thermal = pyo.Constraint(pyo.Any)
    m.s_eff = pyo.Param(pyo.Any, mutable=True, initialize={})
    m.thermal_rows = set()
    if not lazy:
        ts, ks = np.nonzero(m.thermal_eligible)
        add_thermal_rows(m, list(zip(ks.tolist(), ts.tolist(), strict=True)))


def add_thermal_rows(
    m: pyo.ConcreteModel, keys: Iterable[tuple[int, int]]
) -> tuple[list[object], list[object]]:
    """Write the polygon rows of branch-periods ``keys`` (eligible and not yet written);
    return the new constraints and parameters so a loaded solver can be told."""
    rows: list[object] = []
    params: list[object] = []
    for k, t in keys:
        if (k, t) in m.thermal_rows or not m.thermal_eligible[t, k]:
            continue
        m.thermal_rows.add((k, t))
        m.s_eff[k, t] = float(m.thermal_limit[k])
        params.append(m.s_eff[k, t])
        for s, (c, sn) in enumerate(m.thermal_directions):
            m.thermal[k, t, s] = c * m.p[k, t] + sn * m.q[k, t] <= m.s_eff[k, t]
            rows.append(m.thermal[k, t, s])
    return rows, params


def add_slack_limits(m: pyo.ConcreteModel, view: NetworkView) -> None:
    """Substation import/export within the ext_grid's limits, where the network sets them."""
    for s, slack in enumerate(view.slacks):
        for t in m.T:
            if slack.max_import_mw is not None:
                m.imp[s, t].setub(max(slack.max_import_mw, 0.0))
            if slack.max_export_mw is not None:
                m.exp[s, t].setub(max(slack.max_export_mw, 0.0))
