"""The network of a meshed feeder: the AC power flow equations expanded around an AC operating
point (first order in voltage angles and magnitudes), so a mesh is never treated as a tree.
Losses are part of the expansion; the program is rebuilt at each new operating point.

Columns are the angle and magnitude changes ``dva``/``dvm`` ``[t, i]`` of every internal bus of
the power-flow model but the substations. Row ``i`` of the active balance:

    −Σ_j (∂P_i/∂θ_j · dva_j + ∂P_i/∂|V|_j · dvm_j) + flexible injections (+ import − export)
        = inflexible consumption_i + P_i(operating point)

so its dual is again the DLMP. Branch flows and bus voltages are affine in the changes: the
flows through the flow Jacobian (:class:`~feederdao.optimizer.limits.FlowMap`), |V| =
|V|₀ + dvm (the voltage limits are bounds on ``dvm``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from feederdao.domain.network import NetworkView
from feederdao.domain.powerflow import Linearisation
from feederdao.optimizer.data import MarketData
from feederdao.optimizer.limits import FlowMap
from feederdao.optimizer.lp import Cols, FloatArray, IntArray, LinearProgram, Terms
from feederdao.optimizer.network import Balance, Injections, Substation


@dataclass(frozen=True)
class MeshedNetwork:
    """Voltage-change columns over the non-substation internal buses ``ns``, the balance rows
    and the flows as affine maps of the columns."""

    lin: Linearisation
    ns: IntArray  # internal rows that are not substations, in column order
    dva: Cols
    dvm: Cols
    balance: Balance
    flows: FlowMap
    aux_rows: IntArray  # internal rows without a view bus (open line ends)


def _jac_terms(
    terms: Terms,
    mats: list[sp.csr_matrix],
    rows_of: IntArray,
    offset_rows: int,
    cols: Cols,
    ns_pos: IntArray,
    sign: float,
) -> None:
    """Add ``sign · M[t][rows_of, ns]`` of every period to the rows ``offset_rows·t + r``: the
    periods' matrices stacked, their rows taken in one step."""
    if not mats or not rows_of.size:
        return
    n, k = mats[0].shape[0], rows_of.size
    pick = (np.arange(len(mats))[:, None] * n + rows_of[None, :]).ravel()
    sub = sp.vstack(mats, format="csr")[pick].tocoo()
    t, r = np.divmod(sub.row.astype(np.int64), k)
    keep = ns_pos[sub.col] >= 0
    terms.add(
        offset_rows * t[keep] + r[keep],
        cols.idx[t[keep], ns_pos[sub.col[keep]]],
        sign * sub.data[keep],
    )


def add_linearised_network(
    lp: LinearProgram,
    view: NetworkView,
    data: MarketData,
    lin: Linearisation,
    sub: Substation,
    injections: Injections,
) -> MeshedNetwork:
    """Voltage-change columns, the expanded balances and the flow maps (see the module
    docstring)."""
    n_t, n_b, n = data.n_periods, len(view.buses), lin.n_internal
    slack = np.asarray(lin.slack_rows, dtype=np.int64)
    ns = np.setdiff1d(np.arange(n), slack)
    ns_pos = np.full(n, -1, dtype=np.int64)
    ns_pos[ns] = np.arange(ns.size)
    dva = lp.add_cols("dva", (n_t, ns.size))
    dvm = lp.add_cols("dvm", (n_t, ns.size))
    rows = np.asarray(lin.bus_rows, dtype=np.int64)
    aux = np.setdiff1d(np.arange(n), rows)
    jac = [tuple(sp.csr_matrix(m) for m in j) for j in lin.jacobian]

    def balance(kind: str, rows_of: IntArray, base: Terms) -> Terms:
        a, v = (0, 1) if kind == "p" else (2, 3)
        _jac_terms(base, [j[a] for j in jac], rows_of, rows_of.size, dva, ns_pos, -1.0)
        _jac_terms(base, [j[v] for j in jac], rows_of, rows_of.size, dvm, ns_pos, -1.0)
        return base

    t = np.arange(n_t)[:, None]
    slack_view = np.array([view.bus_position(s.bus) for s in view.slacks], dtype=np.int64)
    slack_row = t * n_b + slack_view[None, :]
    tp = balance("p", rows, injections.p)
    tp.add(slack_row, sub.imp.idx, 1.0).add(slack_row, sub.exp.idx, -1.0)
    tq = balance("q", rows, injections.q)
    tq.add(slack_row, sub.q.idx, 1.0)
    rhs_p = data.fixed_p_mw + lin.p0_mw[:, rows]
    rhs_q = data.fixed_q_mvar + lin.q0_mvar[:, rows]
    bal_p = lp.add_rows("balance_p", (n_t, n_b), tp, rhs_p, rhs_p)
    bal_q = lp.add_rows("balance_q", (n_t, n_b), tq, rhs_q, rhs_q)
    aux_p = aux_q = None
    if aux.size:
        ta = balance("p", aux, Terms(n_t * aux.size))
        ra = lin.p0_mw[:, aux]
        aux_p = lp.add_rows("balance_aux_p", (n_t, aux.size), ta, ra, ra)
        tb = balance("q", aux, Terms(n_t * aux.size))
        rb = lin.q0_mvar[:, aux]
        aux_q = lp.add_rows("balance_aux_q", (n_t, aux.size), tb, rb, rb)
    flows = _flow_map(lp.n_cols, lin, dva, dvm, ns_pos, len(view.branches))
    return MeshedNetwork(
        lin, ns, dva, dvm, Balance(bal_p, bal_q, aux_p, aux_q), flows, aux.astype(np.int64)
    )


def _flow_map(
    n_cols: int, lin: Linearisation, dva: Cols, dvm: Cols, ns_pos: IntArray, n_k: int
) -> FlowMap:
    n_t = len(lin.flow_jacobian)
    mats = []
    for kind in (0, 2):  # P then Q: (∂/∂θ, ∂/∂|V|) pairs at 0, 1 and 2, 3
        terms = Terms(n_t * n_k)
        for at, cols in ((kind, dva), (kind + 1, dvm)) if n_t else ():
            # the periods' [K × n] matrices stacked: row t·K + k is branch k in period t
            sub = sp.vstack([fj[at] for fj in lin.flow_jacobian], format="csr").tocoo()
            t = sub.row.astype(np.int64) // n_k
            keep = ns_pos[sub.col] >= 0
            terms.add(sub.row[keep], cols.idx[t[keep], ns_pos[sub.col[keep]]], sub.data[keep])
        mats.append(terms.csr(n_cols))
    return FlowMap(lin.flow_p0_mw, lin.flow_q0_mvar, mats[0], mats[1])


def voltage_offsets(net: MeshedNetwork, view: NetworkView) -> tuple[FloatArray, IntArray]:
    """|V|₀ ``[t, bus]`` at the operating point and the ``dvm`` column position of each view
    bus (-1 for a substation)."""
    rows = np.asarray(net.lin.bus_rows, dtype=np.int64)
    pos = np.full(net.lin.n_internal, -1, dtype=np.int64)
    pos[net.ns] = np.arange(net.ns.size)
    del view
    return net.lin.vm0_pu[:, rows], pos[rows]


def lp_losses(net: MeshedNetwork, dva: FloatArray, dvm: FloatArray) -> FloatArray:
    """Losses of the expanded model per period: the sum of all linearised injections."""
    lin = net.lin
    out = np.empty(dva.shape[0])
    for t, (jpa, jpv, _, _) in enumerate(lin.jacobian):
        xa = np.zeros(lin.n_internal)
        xv = np.zeros(lin.n_internal)
        xa[net.ns], xv[net.ns] = dva[t], dvm[t]
        out[t] = lin.p0_mw[t].sum() + (jpa @ xa).sum() + (jpv @ xv).sum()
    return out
