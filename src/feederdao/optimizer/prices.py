"""DLMPs from the duals, split into energy, congestion, voltage and loss parts.

With ``y = ∂(objective)/∂(right-hand side)`` for every row, stationarity of the LP in the flow
and voltage variables of a radial feeder gives, for bus ``j`` below substation ``0``:

    λ_j = λ_0 − Σ_{k∈path(j)} Σ_s y_ks·cos θ_s
              + (2/base) Σ_{k∈path(j)} r_k Σ_{i below k} (u_i + l_i)  + (loss terms)

where ``y_ks`` are the thermal polygon duals and ``u_i``/``l_i`` the upper/lower voltage duals.
The first sum is the congestion part, the second the voltage part; the energy part is the
substation's price, and the loss part is what remains (marginal losses and transformer ratios).
Reactive prices come from the reactive balance duals likewise.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from feederdao.domain.clearing import Prices
from feederdao.domain.network import NetworkView
from feederdao.domain.powerflow import Linearisation
from feederdao.optimizer.model import Solution
from feederdao.optimizer.topology import Topology


def decompose(view: NetworkView, topo: Topology, sol: Solution, period_hours: float) -> Prices:
    """DLMP parts (EUR/MWh) per period and bus from one solution's duals."""
    dt = period_hours
    A = topo.path  # [bus, branch]
    dlmp = sol.dual_p / dt
    energy = dlmp[:, topo.root_of]
    congestion = -(A @ sol.dual_thermal[:, :, 0].T).T / dt
    w = sol.dual_v_upper + sol.dual_v_lower  # [T, bus]
    below = (A.T @ w.T).T  # [T, branch]: Σ over buses below each branch
    voltage = (2.0 / view.base_mva) * (A @ (topo.r_pu[:, None] * below.T)).T / dt
    loss = dlmp - energy - congestion - voltage
    reactive = sol.dual_q / dt
    return Prices(
        dlmp=np.asarray(dlmp),
        energy=np.asarray(energy),
        loss=np.asarray(loss),
        congestion=np.asarray(congestion),
        voltage=np.asarray(voltage),
        reactive=np.asarray(reactive),
    )


def decompose_meshed(
    view: NetworkView, lin: Linearisation, sol: Solution, period_hours: float
) -> Prices:
    """DLMP parts on a meshed feeder from the duals of the expanded AC model.

    Stationarity in the angle and magnitude changes ``x`` of the non-substation buses gives
    ``Jᵀ λ = Fᵀ y + Eᵀ (u + l)`` (J the power-flow Jacobian, F the flow Jacobian under the
    polygon directions, E selecting |V|). Splitting λ into the substation rows (known: their
    duals) and the rest and solving with Jᵀ per period, the part driven by the substation price
    is energy plus marginal losses, the part driven by ``y`` congestion, by ``u + l`` voltage.
    """
    dt = period_hours
    n = lin.n_internal
    slack = np.asarray(lin.slack_rows)
    ns = np.setdiff1d(np.arange(n), slack)
    n_t = sol.dual_p.shape[0]
    n_b = len(view.buses)
    rows = np.asarray(lin.bus_rows)
    aux = np.asarray(sol.extra.get("aux_rows", []), dtype=np.int64)
    energy = np.zeros((n_t, n_b))
    loss = np.zeros((n_t, n_b))
    congestion = np.zeros((n_t, n_b))
    voltage = np.zeros((n_t, n_b))
    for t in range(n_t):
        jpa, jpv, jqa, jqv = lin.jacobian[t]
        jac = sp.bmat([[jpa, jpv], [jqa, jqv]]).tocsr()  # rows: P then Q; cols: θ then |V|
        cols = np.concatenate([ns, n + ns])
        row_ns = np.concatenate([ns, n + ns])
        row_s = np.concatenate([slack, n + slack])
        j_ns = jac[row_ns][:, cols].tocsc()
        j_s = jac[row_s][:, cols]
        lam_p = np.zeros(n)
        lam_q = np.zeros(n)
        lam_p[rows] = sol.dual_p[t]
        lam_q[rows] = sol.dual_q[t]
        if len(aux):
            lam_p[aux] = sol.extra["dual_aux_p"][t]
            lam_q[aux] = sol.extra["dual_aux_q"][t]
        # the balance rows carry −J; their duals enter as −Jᵀλ
        lam_s = np.concatenate([lam_p[slack], lam_q[slack]])
        fpa, fpv, fqa, fqv = lin.flow_jacobian[t]
        c, s_ = sol.dual_thermal[t, :, 0], sol.dual_thermal[t, :, 1]
        cong_rhs = np.concatenate([fpa.T @ c + fqa.T @ s_, fpv.T @ c + fqv.T @ s_])[cols]
        w = np.zeros(n)
        w[rows] = sol.dual_v_upper[t] + sol.dual_v_lower[t]
        volt_rhs = np.concatenate([np.zeros(n), w])[cols]
        solve = spla.splu(j_ns.T.tocsc()).solve
        # −J_nsᵀ λ_ns − J_sᵀ λ_s + congestion + voltage terms = 0
        from_slack = solve(-(j_s.T @ lam_s))
        from_cong = solve(cong_rhs)
        from_volt = solve(volt_rhs)
        idx = {int(r): k for k, r in enumerate(ns)}
        base = float(np.mean(lam_p[slack]))
        for b in range(n_b):
            r = int(rows[b])
            if r not in idx:
                energy[t, b] = lam_p[r] / dt
                continue
            k = idx[r]
            energy[t, b] = base / dt
            loss[t, b] = (from_slack[k] - base) / dt
            congestion[t, b] = from_cong[k] / dt
            voltage[t, b] = from_volt[k] / dt
    dlmp = sol.dual_p / dt
    return Prices(
        dlmp=np.asarray(dlmp),
        energy=energy,
        loss=loss,
        congestion=congestion,
        voltage=voltage,
        reactive=np.asarray(sol.dual_q / dt),
    )
