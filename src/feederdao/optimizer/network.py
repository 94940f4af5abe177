"""LinDistFlow: branch flows, squared voltages, voltage drop and nodal balances.

Flows ``p[k, t]``/``q[k, t]`` (MW/Mvar) enter branch ``k`` at its from (parent) bus;
``v[b, t]`` is |V|² in pu². Active losses ``loss_p[k, t] ≥ 0`` are bounded below by tangent
planes of ``r (p² + q²) / (base · v)`` added at every AC operating point (an outer
approximation that tightens as the AC checks accumulate); reactive losses are taken from the
last AC check as constants.
"""

from __future__ import annotations

from typing import Any

import pyomo.environ as pyo

from feederdao.domain.network import NetworkView
from feederdao.optimizer.data import MarketData
from feederdao.optimizer.topology import Topology


class Injections:
    """Flexible injections (MW, Mvar; consumption negative) per (bus row, period), collected
    from the market and device families before the balances are written."""

    def __init__(self) -> None:
        self.p: dict[tuple[int, int], list[Any]] = {}
        self.q: dict[tuple[int, int], list[Any]] = {}

    def add_p(self, b: int, t: int, term: Any) -> None:
        self.p.setdefault((b, t), []).append(term)

    def add_q(self, b: int, t: int, term: Any) -> None:
        self.q.setdefault((b, t), []).append(term)


def add_flows_and_voltages(m: pyo.ConcreteModel, view: NetworkView, data: MarketData) -> None:
    """Branch flows, squared voltages and the loss-linearisation parameters."""
    m.p = pyo.Var(m.K, m.T, initialize=0.0)
    m.q = pyo.Var(m.K, m.T, initialize=0.0)
    m.v = pyo.Var(m.B, m.T, initialize=1.0)
    m.loss_p = pyo.Var(m.K, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.loss_q = pyo.Param(m.K, m.T, mutable=True, initialize=0.0)
    m.loss_cuts = pyo.ConstraintList()


def add_voltage_drop(
    m: pyo.ConcreteModel, view: NetworkView, data: MarketData, topo: Topology
) -> None:
    """v[to] = v[from] / ratio² − 2 (r p + x q) / base for every branch and period.

    The duals of these rows carry the voltage limits' prices up the feeder.
    """
    base = view.base_mva
    fp, tp, r, x, ratio = topo.from_pos, topo.to_pos, topo.r_pu, topo.x_pu, topo.ratio

    def rule(m: pyo.ConcreteModel, k: int, t: int) -> pyo.Expression:
        return (
            m.v[int(tp[k]), t]
            - m.v[int(fp[k]), t] / float(ratio[k]) ** 2
            + 2.0 * (float(r[k]) * m.p[k, t] + float(x[k]) * m.q[k, t]) / base
            == 0.0
        )

    m.voltage_drop = pyo.Constraint(m.K, m.T, rule=rule)


def add_slack_voltage(m: pyo.ConcreteModel, view: NetworkView, topo: Topology) -> None:
    """v[slack, t] = vm_slack² (the substation holds its voltage)."""
    m.S = pyo.Set(initialize=range(len(view.slacks)))
    m.slack_vm2 = pyo.Param(
        m.S,
        mutable=True,
        initialize={s: view.slacks[s].vm_pu ** 2 for s in range(len(view.slacks))},
    )
    m.slack_voltage = pyo.Constraint(
        m.S, m.T, rule=lambda m, s, t: m.v[int(topo.slack_pos[s]), t] == m.slack_vm2[s]
    )


def add_nodal_balance(
    m: pyo.ConcreteModel,
    view: NetworkView,
    data: MarketData,
    topo: Topology,
    injections: Injections,
) -> None:
    """Active and reactive balance at every bus and period, with fixed consumption on the
    right-hand side.

    ``balance_p[b, t]``: inflow (after losses) − outflow + substation import − flexible
    consumption + flexible injection = inflexible consumption. Its dual (EUR per MW-period,
    divided by the period length) is the bus's DLMP. ``balance_q`` likewise prices reactive
    power.
    """
    n_b = len(view.buses)
    into: list[list[int]] = [[] for _ in range(n_b)]
    out_of: list[list[int]] = [[] for _ in range(n_b)]
    for k in range(len(view.branches)):
        into[int(topo.to_pos[k])].append(k)
        out_of[int(topo.from_pos[k])].append(k)
    slack_at = {int(pos): s for s, pos in enumerate(topo.slack_pos)}
    m.fixed_p = pyo.Param(
        m.B, m.T, mutable=True, initialize=lambda m, b, t: float(data.fixed_p_mw[t, b])
    )
    m.fixed_q = pyo.Param(
        m.B, m.T, mutable=True, initialize=lambda m, b, t: float(data.fixed_q_mvar[t, b])
    )
    m.imp = pyo.Var(m.S, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.exp = pyo.Var(m.S, m.T, domain=pyo.NonNegativeReals, initialize=0.0)
    m.q_slack = pyo.Var(m.S, m.T, initialize=0.0)

    def p_rule(m: pyo.ConcreteModel, b: int, t: int) -> pyo.Expression:
        expr = sum(m.p[k, t] - m.loss_p[k, t] for k in into[b]) - sum(m.p[k, t] for k in out_of[b])
        if b in slack_at:
            expr += m.imp[slack_at[b], t] - m.exp[slack_at[b], t]
        expr += sum(injections.p.get((b, t), ()))
        return expr == m.fixed_p[b, t]

    def q_rule(m: pyo.ConcreteModel, b: int, t: int) -> pyo.Expression:
        expr = sum(m.q[k, t] for k in into[b]) - sum(m.q[k, t] for k in out_of[b])
        if b in slack_at:
            expr += m.q_slack[slack_at[b], t]
        expr += sum(injections.q.get((b, t), ()))
        return expr == m.fixed_q[b, t] + sum(m.loss_q[k, t] for k in into[b])

    m.balance_p = pyo.Constraint(m.B, m.T, rule=p_rule)
    m.balance_q = pyo.Constraint(m.B, m.T, rule=q_rule)
