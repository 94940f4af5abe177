"""DLMPs from the duals, split into energy, loss, congestion and voltage parts.

Radial feeder. With ``y`` = ∂objective/∂right-hand side of every row (HiGHS's row duals) and
the flow column ``p_k`` free, stationarity in ``p_k`` and in its loss column gives, branch by
branch from the from (parent) bus to the to (child) bus,

    λ_to = λ_from + c_p,k · ℓ_k − (2 r_k / base) · μ_k − Σ_s cos θ_s · y_ks

with ``c_p,k`` the branch's loss factor (the slope of its loss line), ``ℓ_k`` the dual of its
loss row (the receiving end's price while the branch loses anything: the loss column is then
between its bounds), ``μ_k`` the dual of its voltage-drop row and ``y_ks`` those of its thermal
polygon rows. Summed along the path from the substation to bus ``j``, every part is computed
from its own duals:

* energy: the substation's price λ_0;
* loss: Σ_path c_p,k · ℓ_k — each branch's marginal losses bought at its receiving end;
* voltage: −Σ_path (2 r_k / base) μ_k — the voltage band's price carried up the feeder;
* congestion: −Σ_path Σ_s cos θ_s y_ks.

They add up to the DLMP exactly when the duals are consistent, which the tests check. Reactive
prices are the reactive balance duals.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from feederdao.domain.clearing import Prices
from feederdao.domain.network import NetworkView
from feederdao.domain.powerflow import Linearisation
from feederdao.optimizer.lp import FloatArray
from feederdao.optimizer.model import Dispatch
from feederdao.optimizer.topology import Topology


def decompose(
    view: NetworkView,
    topo: Topology,
    d: Dispatch,
    loss_factor: FloatArray,
    voltage_drop_dual: FloatArray,
    loss_dual: FloatArray,
    period_hours: float,
) -> Prices:
    """DLMP parts (EUR/MWh) ``[t, bus]`` on a radial feeder (see the module docstring);
    ``loss_factor[t, k]`` is c_p of each branch, ``voltage_drop_dual[t, k]`` μ and
    ``loss_dual[t, k]`` ℓ."""
    dt = period_hours
    lam = d.balance_p / dt
    A = topo.path  # [bus, branch]: branch k on the path to bus j
    per_branch_loss = loss_factor * loss_dual / dt  # [t, k]
    per_branch_volt = -(2.0 * topo.r_pu[None, :] / view.base_mva) * voltage_drop_dual / dt
    per_branch_cong = -d.thermal[:, :, 0] / dt

    def along(x: FloatArray) -> FloatArray:  # Σ over each bus's path
        return np.asarray((A @ x.T).T)

    return Prices(
        dlmp=np.asarray(lam),
        energy=np.asarray(lam[:, topo.root_of]),
        loss=along(per_branch_loss),
        congestion=along(per_branch_cong),
        voltage=along(per_branch_volt),
        reactive=np.asarray(d.balance_q / dt),
    )


def decompose_meshed(
    view: NetworkView, lin: Linearisation, d: Dispatch, period_hours: float
) -> Prices:
    """DLMP parts on a meshed feeder from the duals of the expanded AC model.

    Stationarity in the angle and magnitude changes ``x`` of the non-substation buses gives
    ``Jᵀ λ = Fᵀ y + Eᵀ w`` (J the power-flow Jacobian, F the flow Jacobian under the polygon
    directions, E selecting |V|, w the voltage limits' duals). Splitting λ into the substation
    rows (known: their duals) and the rest and solving with Jᵀ per period, the part driven by
    the substation price is energy plus marginal losses, the part driven by ``y`` congestion,
    by ``w`` voltage.
    """
    dt = period_hours
    n = lin.n_internal
    slack = np.asarray(lin.slack_rows)
    ns = np.setdiff1d(np.arange(n), slack)
    n_t = d.balance_p.shape[0]
    n_b = len(view.buses)
    rows = np.asarray(lin.bus_rows)
    aux = np.setdiff1d(np.arange(n), rows)
    energy = np.zeros((n_t, n_b))
    loss = np.zeros((n_t, n_b))
    congestion = np.zeros((n_t, n_b))
    voltage = np.zeros((n_t, n_b))
    idx = np.full(n, -1, dtype=np.int64)
    idx[ns] = np.arange(ns.size)
    cols = np.concatenate([ns, n + ns])
    row_s = np.concatenate([slack, n + slack])
    for t in range(n_t):
        jpa, jpv, jqa, jqv = lin.jacobian[t]
        jac = sp.bmat([[jpa, jpv], [jqa, jqv]]).tocsr()  # rows: P then Q; cols: θ then |V|
        j_ns = jac[cols][:, cols].tocsc()
        j_s = jac[row_s][:, cols]
        lam_p = np.zeros(n)
        lam_q = np.zeros(n)
        lam_p[rows] = d.balance_p[t]
        lam_q[rows] = d.balance_q[t]
        if aux.size and d.aux_p is not None and d.aux_q is not None:
            lam_p[aux] = d.aux_p[t]
            lam_q[aux] = d.aux_q[t]
        lam_s = np.concatenate([lam_p[slack], lam_q[slack]])
        fpa, fpv, fqa, fqv = lin.flow_jacobian[t]
        c, s_ = d.thermal[t, :, 0], d.thermal[t, :, 1]
        cong_rhs = np.concatenate([fpa.T @ c + fqa.T @ s_, fpv.T @ c + fqv.T @ s_])[cols]
        w = np.zeros(n)
        w[rows] = d.voltage[t]
        volt_rhs = np.concatenate([np.zeros(n), w])[cols]
        solve = spla.splu(j_ns.T.tocsc()).solve
        # the balance rows carry −J: −J_nsᵀ λ_ns − J_sᵀ λ_s + congestion + voltage terms = 0
        from_slack = solve(-(j_s.T @ lam_s))
        from_cong = solve(cong_rhs)
        from_volt = solve(volt_rhs)
        base = float(np.mean(lam_p[slack]))
        k = idx[rows]
        inside = k >= 0
        energy[t] = np.where(inside, base, lam_p[rows]) / dt
        kk = np.maximum(k, 0)
        loss[t] = np.where(inside, from_slack[kk] - base, 0.0) / dt
        congestion[t] = np.where(inside, from_cong[kk], 0.0) / dt
        voltage[t] = np.where(inside, from_volt[kk], 0.0) / dt
    return Prices(
        dlmp=np.asarray(d.balance_p / dt),
        energy=energy,
        loss=loss,
        congestion=congestion,
        voltage=voltage,
        reactive=np.asarray(d.balance_q / dt),
    )
