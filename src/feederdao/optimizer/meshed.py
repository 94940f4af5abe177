"""The network for meshed feeders: the AC power flow equations expanded around an AC operating
point (first-order Taylor in voltage angles and magnitudes), so a mesh is never treated as a
tree. Losses are part of the expansion; the model is rebuilt at each new operating point.

Variables are the angle and magnitude changes ``dva``/``dvm`` of every internal bus but the
substations. Row ``i`` of ``balance_p``:

    −Σ_j (∂P_i/∂θ_j·dva_j + ∂P_i/∂|V|_j·dvm_j) + flexible injections (+ import − export)
        = inflexible consumption_i + P_i(operating point)

so its dual is again the DLMP. Branch flows ``p``/``q`` and bus voltages ``vm`` are linear
expressions of the changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp

from feederdao.domain.network import NetworkView
from feederdao.domain.powerflow import Linearisation
from feederdao.optimizer.data import MarketData
from feederdao.optimizer.network import Injections


def _row_terms(mat: Any, row: int) -> tuple[np.ndarray, np.ndarray]:
    start, end = mat.indptr[row], mat.indptr[row + 1]
    return mat.indices[start:end], mat.data[start:end]


def add_linearised_flows(
    m: pyo.ConcreteModel, view: NetworkView, data: MarketData, lin: Linearisation
) -> None:
    """Voltage-change variables and the flow and voltage expressions."""
    n = lin.n_internal
    slack_rows = {int(r) for r in lin.slack_rows}
    m.NS = pyo.Set(initialize=[i for i in range(n) if i not in slack_rows])
    m.dva = pyo.Var(m.NS, m.T, initialize=0.0)
    m.dvm = pyo.Var(m.NS, m.T, initialize=0.0)
    m.lin_expr = _linear_builder(m, slack_rows)
    linear = m.lin_expr
    flow = [tuple(sp.csr_matrix(x) for x in fj) for fj in lin.flow_jacobian]
    m.p = pyo.Expression(
        m.K,
        m.T,
        rule=lambda m, k, t: float(lin.flow_p0_mw[t, k]) + linear(flow[t][0], flow[t][1], k, t),
    )
    m.q = pyo.Expression(
        m.K,
        m.T,
        rule=lambda m, k, t: float(lin.flow_q0_mvar[t, k]) + linear(flow[t][2], flow[t][3], k, t),
    )

    def vm(m: pyo.ConcreteModel, b: int, t: int) -> Any:
        row = int(lin.bus_rows[b])
        base = float(lin.vm0_pu[t, row])
        return base if row in slack_rows else base + m.dvm[row, t]

    m.vm = pyo.Expression(m.B, m.T, rule=vm)
    m.v = pyo.Expression(m.B, m.T, rule=lambda m, b, t: m.vm[b, t] ** 2)  # reporting only

    m.S = pyo.Set(initialize=range(len(view.slacks)))
    m.imp = pyo.Var(m.S, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.exp = pyo.Var(m.S, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.q_slack = pyo.Var(m.S, m.T, initialize=0.0)
    m.fixed_p = pyo.Param(
        m.B, m.T, mutable=True, initialize=lambda m, b, t: float(data.fixed_p_mw[t, b])
    )
    m.fixed_q = pyo.Param(
        m.B, m.T, mutable=True, initialize=lambda m, b, t: float(data.fixed_q_mvar[t, b])
    )


def add_linearised_balance(
    m: pyo.ConcreteModel,
    view: NetworkView,
    lin: Linearisation,
    injections: Injections,
) -> None:
    """Active and reactive balance at every internal bus (see the module docstring)."""
    n = lin.n_internal
    linear = m.lin_expr
    jac = [tuple(sp.csr_matrix(x) for x in j) for j in lin.jacobian]
    slack_at = {int(lin.bus_rows[view.bus_position(s.bus)]): k for k, s in enumerate(view.slacks)}
    view_of_row = {int(r): b for b, r in enumerate(lin.bus_rows)}
    aux_rows = [i for i in range(n) if i not in view_of_row]

    def balance(kind: str, row: int, t: int, b: int | None) -> Any:
        ja, jv = (jac[t][0], jac[t][1]) if kind == "p" else (jac[t][2], jac[t][3])
        expr = -linear(ja, jv, row, t)
        if row in slack_at:
            s = slack_at[row]
            expr += (m.imp[s, t] - m.exp[s, t]) if kind == "p" else m.q_slack[s, t]
        if b is not None:
            terms = injections.p if kind == "p" else injections.q
            expr += sum(terms.get((b, t), ()))
            fixed = m.fixed_p[b, t] if kind == "p" else m.fixed_q[b, t]
        else:
            fixed = 0.0
        point = lin.p0_mw[t, row] if kind == "p" else lin.q0_mvar[t, row]
        return expr == fixed + float(point)

    m.balance_p = pyo.Constraint(
        m.B, m.T, rule=lambda m, b, t: balance("p", int(lin.bus_rows[b]), t, b)
    )
    m.balance_q = pyo.Constraint(
        m.B, m.T, rule=lambda m, b, t: balance("q", int(lin.bus_rows[b]), t, b)
    )
    m.AUX = pyo.Set(initialize=aux_rows)
    m.balance_aux_p = pyo.Constraint(m.AUX, m.T, rule=lambda m, i, t: balance("p", i, t, None))
    m.balance_aux_q = pyo.Constraint(m.AUX, m.T, rule=lambda m, i, t: balance("q", i, t, None))


def _linear_builder(m: pyo.ConcreteModel, slack_rows: set[int]) -> Any:
    def linear(mat_a: Any, mat_v: Any, row: int, t: int) -> Any:
        expr: Any = 0.0
        for mat, var in ((mat_a, m.dva), (mat_v, m.dvm)):
            cols, vals = _row_terms(mat, row)
            expr += sum(
                float(a) * var[int(c), t]
                for c, a in zip(cols, vals, strict=True)
                if int(c) not in slack_rows
            )
        return expr

    return linear


def add_voltage_limits_meshed(
    m: pyo.ConcreteModel, view: NetworkView, data: MarketData, lin: Linearisation
) -> None:
    """v_min ≤ |V| ≤ v_max (pu) at every non-substation bus; elastic slacks as for radial."""
    p = data.params
    slack_rows = {int(r) for r in lin.slack_rows}
    m.BV = pyo.Set(
        initialize=[b for b in range(len(view.buses)) if int(lin.bus_rows[b]) not in slack_rows]
    )
    m.vs_hi = pyo.Var(m.BV, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.vs_lo = pyo.Var(m.BV, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.v_upper = pyo.Constraint(
        m.BV, m.T, rule=lambda m, b, t: m.vm[b, t] - m.vs_hi[b, t] <= p.v_max_pu
    )
    m.v_lower = pyo.Constraint(
        m.BV, m.T, rule=lambda m, b, t: m.vm[b, t] + m.vs_lo[b, t] >= p.v_min_pu
    )
