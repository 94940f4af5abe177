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

from feederdao.domain.clearing import Prices
from feederdao.domain.network import NetworkView
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
