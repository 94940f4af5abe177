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
    """One batch of thermal rows: branch-periods ``keys`` ([n, 2] of (k, t)), each row's
    normal (``cos``, ``sin``: [n, sides]) and the constant part ``offset`` ([n, sides]) of
    their flows. A polygon batch has the polygon's sides; a batch of cuts one side each."""

    rows: Rows
    keys: IntArray
    cos: FloatArray
    sin: FloatArray
    offset: FloatArray


@dataclass
class Thermal:
    """Thermal limits and the rows written so far.

    ``s_eff[t, k]`` is the rating each branch-period is held to (the limit, re-rated where an
    AC check found the loading pandapower measures off it); polygon rows are written lazily,
    only where a branch comes near it. Where a row binds, each AC check adds the circle's
    tangent at the AC flow's angle ``atan2(q, p)`` as a cut (kept, never replaced: every cut
    holds the circle, and together they close in on it): the polygon alone lets a flow on its
    side normal to the P axis carry up to ``tan(π/n)`` of its rating as reactive power at no
    cost, which AC then finds taking capacity the active power needed.
    """

    limit: FloatArray  # [K] MVA
    s_eff: FloatArray  # [T, K] MVA
    eligible: npt.NDArray[np.bool_]  # [T, K]: could reach its limit at all
    shape: Polygon
    batches: list[ThermalRows] = field(default_factory=list)
    written: set[tuple[int, int]] = field(default_factory=set)
    cuts_written: int = 0

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
        for b in self.batches:  # a branch-period's polygon and its cuts add up
            y = b.rows.of(row_dual)
            k, t = b.keys[:, 0], b.keys[:, 1]
            parts = np.stack([(y * b.cos).sum(axis=1), (y * b.sin).sum(axis=1), y.sum(axis=1)])
            np.add.at(out, (t, k), parts.T)
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
    shape = polygon(n_sides, "circumscribed")
    return Thermal(limit, s_eff, eligible, shape)


def _polygon_terms(
    flows: FlowMap, t: IntArray, k: IntArray, theta: FloatArray, n_k: int
) -> tuple[Terms, FloatArray, FloatArray, FloatArray]:
    """Rows ``cos θ_is · p_i + sin θ_is · q_i`` of the branch-periods ``(t_i, k_i)``: their
    terms, normals and constant parts ([n, sides] each)."""
    cos, sin = np.cos(theta), np.sin(theta)
    n, m = theta.shape
    flat = t * n_k + k
    pm, qm = flows.p[flat].tocoo(), flows.q[flat].tocoo()
    rows = np.arange(n * m).reshape(n, m)
    terms = Terms(n * m)
    terms.add(rows[pm.row, :], pm.col[:, None], pm.data[:, None] * cos[pm.row, :])
    terms.add(rows[qm.row, :], qm.col[:, None], qm.data[:, None] * sin[qm.row, :])
    offset = cos * flows.p0[t, k][:, None] + sin * flows.q0[t, k][:, None]
    return terms, cos, sin, offset


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
    theta = np.broadcast_to(np.arctan2(th.shape.sin, th.shape.cos), (len(new), th.shape.sides))
    _write(lp, th, flows, arr, theta, "thermal")
    th.written.update(new)
    return len(new)


def add_thermal_cuts(lp: LinearProgram, th: Thermal, flows: FlowMap, cuts: FloatArray) -> int:
    """Write the cuts ``cos φ · p + sin φ · q ≤ S`` of ``cuts`` ([n, 3] of (k, t, φ)) not yet
    written (a model keeps the first ``cuts_written``); return how many were new."""
    new = cuts[th.cuts_written :]
    if not len(new):
        return 0
    arr = new[:, :2].astype(np.int64)
    _write(lp, th, flows, arr, new[:, 2:3], "thermal_cut")
    th.cuts_written = len(cuts)
    return len(new)


def _write(
    lp: LinearProgram, th: Thermal, flows: FlowMap, keys: IntArray, theta: FloatArray, name: str
) -> None:
    k, t = keys[:, 0], keys[:, 1]
    terms, cos, sin, offset = _polygon_terms(flows, t, k, theta, th.eligible.shape[1])
    upper = th.s_eff[t, k][:, None] * th.shape.scale - offset
    fam = lp.add_rows(f"{name}_{len(th.batches)}", cos.shape, terms, -np.inf, upper)
    th.batches.append(ThermalRows(fam, keys, cos, sin, offset))


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
