"""Operating limits: the voltage band (as column bounds), branch thermal polygons (rows), and the
ratings they are measured against.

Voltage limits are bounds on the voltage columns (|V|² on a radial feeder, the magnitude change
on a meshed one), so they add no rows; a bound's reduced cost is the voltage part of the DLMP.
Each bus's band is the governed one, narrowed by the bus's own ``min_vm_pu``/``max_vm_pu``
where the network sets them (a tighter limit of the network model is never loosened by a vote).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from feederdao.domain.network import NetworkView
from feederdao.optimizer.data import MarketData
from feederdao.optimizer.lp import INF, Cols, FloatArray, IntArray, LinearProgram, Rows, Terms
from feederdao.optimizer.polygon import Polygon, polygon


def branch_limit_mva(view: NetworkView, data: MarketData) -> FloatArray:
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


def allowed_loading_percent(view: NetworkView, data: MarketData) -> FloatArray:
    """The loading (percent of rating, as pandapower reports it) each branch may reach: the
    limit of :func:`branch_limit_mva` over the rating; inf where the branch has no rating."""
    limit = branch_limit_mva(view, data)
    rating = np.array([br.rating_mva or np.inf for br in view.branches])
    out = np.full(limit.shape, np.inf)
    rated = np.isfinite(limit)
    np.divide(limit * 100.0, rating, out=out, where=rated)
    return out


def voltage_band(view: NetworkView, data: MarketData) -> tuple[FloatArray, FloatArray]:
    """Lower and upper voltage limit (pu) of every bus: the governed band, narrowed by the
    bus's own limits."""
    p = data.params
    lo = np.array([max(p.v_min_pu, b.min_vm_pu or 0.0) for b in view.buses])
    hi = np.array([min(p.v_max_pu, b.max_vm_pu or np.inf) for b in view.buses])
    return lo, hi


@dataclass(frozen=True)
class FlowMap:
    """Branch flows as affine maps of the columns: ``p[t, k] = p0[t, k] + P[t·K + k] · x``
    (likewise ``q``). On a radial feeder ``P`` picks the flow column; on a meshed one it is
    the flow Jacobian."""

    p0: FloatArray
    q0: FloatArray
    p: sp.csr_matrix
    q: sp.csr_matrix


@dataclass(frozen=True)
class ThermalRows:
    """One batch of polygon rows: branch-periods ``keys`` ([n, 2] of (k, t)) and the constant
    part ``offset`` ([n, sides]) of their flows."""

    rows: Rows
    keys: IntArray
    offset: FloatArray


@dataclass
class Thermal:
    """Thermal limits and the polygon rows written so far.

    ``s_eff[t, k]`` is the rating each branch-period is held to (the limit, tightened where an
    AC check found an overload); rows are written lazily, only where a branch comes near it.
    """

    limit: FloatArray  # [K] MVA
    s_eff: FloatArray  # [T, K] MVA
    eligible: npt.NDArray[np.bool_]  # [T, K]: could reach its limit at all
    shape: Polygon
    batches: list[ThermalRows] = field(default_factory=list)
    written: set[tuple[int, int]] = field(default_factory=set)

    @property
    def modelled(self) -> npt.NDArray[np.bool_]:
        """[T, K]: branch-periods with rows."""
        out = np.zeros(self.eligible.shape, dtype=bool)
        for b in self.batches:
            out[b.keys[:, 1], b.keys[:, 0]] = True
        return out

    def apply(self, lp: LinearProgram) -> None:
        """Write the current ratings into the rows' upper bounds."""
        for b in self.batches:
            k, t = b.keys[:, 0], b.keys[:, 1]
            lp.set_row_bounds(b.rows, upper=self.s_eff[t, k][:, None] * self.shape.scale - b.offset)

    def duals(self, row_dual: FloatArray) -> FloatArray:
        """[T, K, 3]: Σ_s y·cos θ_s, Σ_s y·sin θ_s and Σ_s y of every branch-period."""
        out = np.zeros((*self.eligible.shape, 3))
        for b in self.batches:
            y = b.rows.of(row_dual)
            k, t = b.keys[:, 0], b.keys[:, 1]
            out[t, k, 0] = y @ self.shape.cos
            out[t, k, 1] = y @ self.shape.sin
            out[t, k, 2] = y.sum(axis=1)
        return out


def thermal(
    view: NetworkView, data: MarketData, flow_bound: FloatArray | None, n_sides: int
) -> Thermal:
    """The thermal limits, and which branch-periods are eligible for rows: rated branches
    whose flow could reach 90 % of the limit (``flow_bound``: an upper bound on |S| per period
    and branch; None: every rated branch)."""
    limit = branch_limit_mva(view, data)
    n_t, n_k = data.n_periods, len(view.branches)
    bound = np.full((n_t, n_k), np.inf) if flow_bound is None else flow_bound
    eligible = np.isfinite(limit)[None, :] & (bound > limit[None, :] * 0.9)
    s_eff = np.broadcast_to(limit, (n_t, n_k)).copy()
    return Thermal(limit, s_eff, eligible, polygon(n_sides, "circumscribed"))


def add_thermal_rows(
    lp: LinearProgram, th: Thermal, flows: FlowMap, keys: Iterable[tuple[int, int]]
) -> int:
    """Write the polygon rows ``cos θ_s · p + sin θ_s · q ≤ S`` of the eligible branch-periods
    ``keys`` (k, t) not yet written; return how many were new. The duals are the congestion
    part of the DLMP."""
    new = sorted({(int(k), int(t)) for k, t in keys if th.eligible[t, k]} - th.written)
    if not new:
        return 0
    arr = np.array(new, dtype=np.int64).reshape(-1, 2)
    k, t = arr[:, 0], arr[:, 1]
    flat = t * th.eligible.shape[1] + k
    poly = th.shape
    n, m = len(new), poly.sides
    # row (i, s) = cos_s · P[flat_i] + sin_s · Q[flat_i]
    pm, qm = flows.p[flat].tocoo(), flows.q[flat].tocoo()
    rows = np.arange(n * m).reshape(n, m)
    terms = Terms(n * m)
    terms.add(rows[pm.row, :], pm.col[:, None], pm.data[:, None] * poly.cos[None, :])
    terms.add(rows[qm.row, :], qm.col[:, None], qm.data[:, None] * poly.sin[None, :])
    offset = (
        poly.cos[None, :] * flows.p0[t, k][:, None] + poly.sin[None, :] * flows.q0[t, k][:, None]
    )
    upper = th.s_eff[t, k][:, None] * poly.scale - offset
    fam = lp.add_rows(f"thermal_{len(th.batches)}", (n, m), terms, -np.inf, upper)
    th.batches.append(ThermalRows(fam, arr, offset))
    th.written.update(new)
    return n


@dataclass(frozen=True)
class VoltageLimits:
    """The voltage band on the voltage columns of the non-substation buses.

    ``cols[t, pos[b]]`` is bus ``b``'s voltage column (-1: a substation, whose voltage is held)
    — |V|² on a radial feeder (``squared``), the change of |V| on a meshed one. Without elastic
    slacks the band is the columns' bounds; with them (``elastic``) it is rows
    ``v − vs_hi ≤ upper`` and ``v + vs_lo ≥ lower`` whose slacks carry a penalty.
    """

    cols: Cols
    pos: IntArray
    squared: bool
    lower_pu: FloatArray  # [B]
    upper_pu: FloatArray  # [B]
    elastic: tuple[Rows, Rows, Cols, Cols] | None = None
    #: buses a voltage-controlled generator holds at its set-point (outside the band's rows)
    held: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    held_pu: FloatArray = field(default_factory=lambda: np.zeros(0))

    @property
    def banded(self) -> IntArray:
        """Buses whose voltage the band limits (neither a substation nor held)."""
        buses = np.flatnonzero(self.pos >= 0)
        return buses[~np.isin(buses, self.held)]

    def bounds(self, offset: FloatArray) -> tuple[FloatArray, FloatArray]:
        """[t, bus] lower and upper bound of the voltage columns given the offset (radial:
        the AC-minus-linear error of |V|²; meshed: |V| at the operating point)."""
        lo, hi = self.lower_pu[None, :], self.upper_pu[None, :]
        if self.squared:
            return lo**2 - offset, hi**2 - offset
        return lo - offset, hi - offset

    def apply(self, lp: LinearProgram, offset: FloatArray) -> None:
        lo, hi = self.bounds(offset)
        n_t = offset.shape[0]
        if self.held.size:
            at = self.cols.idx[:, self.pos[self.held]]
            target = self.held_pu[None, :] ** 2 if self.squared else self.held_pu[None, :]
            lp.col_lower[at] = lp.col_upper[at] = target - offset[:, self.held]
        buses = self.banded
        idx = self.cols.idx[:, self.pos[buses]]
        if self.elastic is None:
            lp.col_lower[idx] = lo[:, buses]
            lp.col_upper[idx] = hi[:, buses]
            return
        up, down, _, _ = self.elastic
        lp.col_lower[idx] = -INF
        lp.col_upper[idx] = INF
        lp.set_row_bounds(up, upper=hi[:, buses].reshape(n_t, -1))
        lp.set_row_bounds(down, lower=lo[:, buses].reshape(n_t, -1))

    def duals(self, cols_dual: FloatArray, row_dual: FloatArray) -> FloatArray:
        """[t, bus]: the voltage limits' duals (∂objective/∂bound; 0 at substations)."""
        n_t = self.cols.shape[0]
        out = np.zeros((n_t, self.pos.size))
        buses = self.banded
        if self.elastic is None:
            out[:, buses] = self.cols.of(cols_dual)[:, self.pos[buses]]
        else:
            up, down, _, _ = self.elastic
            out[:, buses] = up.of(row_dual) + down.of(row_dual)
        return out

    def slack(self, primal: FloatArray) -> FloatArray:
        """[t, bus]: how far the elastic slacks relaxed the band (0 without them)."""
        out = np.zeros((self.cols.shape[0], self.pos.size))
        if self.elastic is not None:
            _, _, hi, lo = self.elastic
            out[:, self.banded] = hi.of(primal) + lo.of(primal)
        return out


def add_voltage_limits(
    lp: LinearProgram,
    view: NetworkView,
    data: MarketData,
    cols: Cols,
    pos: IntArray,
    squared: bool,
    elastic: bool,
) -> VoltageLimits:
    """The voltage band of every non-substation bus (its own limits where tighter); with
    ``elastic`` the band may be relaxed at a penalty of 100 × the price cap per pu and hour."""
    lower, upper = voltage_band(view, data)
    held = np.array([g.bus_pos for g in data.generators], dtype=np.int64)
    held_pu = np.array([g.vm_pu for g in data.generators], dtype=float)
    keep = pos[held] >= 0 if held.size else np.zeros(0, dtype=bool)
    held, held_pu = held[keep], held_pu[keep]  # a generator at a substation: the substation holds
    if not elastic:
        return VoltageLimits(cols, pos, squared, lower, upper, None, held, held_pu)
    n_t = data.n_periods
    buses = np.flatnonzero(pos >= 0)
    buses = buses[~np.isin(buses, held)]
    n = buses.size
    penalty = 100.0 * data.params.price_cap_eur_per_mwh * data.period_hours
    vs_hi = lp.add_cols("vs_hi", (n_t, n), 0.0, INF, penalty)
    vs_lo = lp.add_cols("vs_lo", (n_t, n), 0.0, INF, penalty)
    rows = np.arange(n_t * n).reshape(n_t, n)
    v = cols.idx[:, pos[buses]]
    up = lp.add_rows("v_upper", (n_t, n), Terms(n_t * n).add(rows, v).add(rows, vs_hi.idx, -1.0))
    down = lp.add_rows("v_lower", (n_t, n), Terms(n_t * n).add(rows, v).add(rows, vs_lo.idx, 1.0))
    return VoltageLimits(cols, pos, squared, lower, upper, (up, down, vs_hi, vs_lo), held, held_pu)


def flow_bounds(data: MarketData, path: sp.csr_matrix) -> FloatArray:
    """An upper bound on |S| of each branch per period ([T, K]) on a radial feeder: everything
    downstream consuming or injecting at once (``path``: the bus × branch path incidence).
    Branches that cannot reach their limit get no thermal rows."""
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
    return np.asarray((path.T @ swing.T).T) * 1.2 + 1e-6
