"""LinDistFlow on a radial feeder: branch flows, squared voltages, voltage drop, losses and the
nodal balances whose duals are the DLMPs.

Columns ``p[t, k]``/``q[t, k]`` (MW/Mvar) enter branch ``k`` at its from (parent) bus;
``v[t, b]`` is |V|² in pu². Active losses ``loss_p[t, k] ≥ 0`` follow a line through the
last AC operating point (:func:`loss_plane`), as an equality:

    loss_p − slack − c_p · p = c_0        (c_0 holds the no-load part the AC check found)

so losses are bounded from both sides: the LP can neither dump energy into them nor make
them vanish, and their marginal value enters the prices. Far from the AC point the line can
fall below zero; ``loss_p ≥ 0`` then needs ``slack``, priced at the price cap, so the LP never
creates energy out of a line; the engine does not stop while a lifted line's slope, priced at
the cap, moves a price beyond the loss price tolerance, nor while the AC flow loses more there
than the tolerance (the line pinned at its zero crossing). The rows
are replaced (never piled up) at every new operating point. Reactive losses are the last AC
check's, as constants on the right-hand side of the reactive balance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from feederdao.domain.network import NetworkView
from feederdao.optimizer.data import MarketData
from feederdao.optimizer.lp import INF, Cols, FloatArray, IntArray, LinearProgram, Rows, Terms
from feederdao.optimizer.topology import Topology


class Injections:
    """Flexible injections (MW, Mvar; consumption negative) at (period, bus row), collected
    from the market and device families before the balances are written."""

    def __init__(self, n_periods: int, n_buses: int) -> None:
        self.shape = (n_periods, n_buses)
        self.p = Terms(n_periods * n_buses)
        self.q = Terms(n_periods * n_buses)

    def row(self, period: npt.ArrayLike, bus: npt.ArrayLike) -> IntArray:
        return np.asarray(period, dtype=np.int64) * self.shape[1] + np.asarray(bus, np.int64)

    def add_p(
        self,
        period: npt.ArrayLike,
        bus: npt.ArrayLike,
        cols: npt.ArrayLike,
        coef: npt.ArrayLike = 1.0,
    ) -> None:
        self.p.add(self.row(period, bus), cols, coef)

    def add_q(
        self,
        period: npt.ArrayLike,
        bus: npt.ArrayLike,
        cols: npt.ArrayLike,
        coef: npt.ArrayLike = 1.0,
    ) -> None:
        self.q.add(self.row(period, bus), cols, coef)


@dataclass(frozen=True)
class Flows:
    """The radial network's columns: branch flows and squared voltages."""

    p: Cols
    q: Cols
    v: Cols


@dataclass(frozen=True)
class Substation:
    """Import, export (MW) and reactive supply (Mvar) at each slack: ``[t, slack]``."""

    imp: Cols
    exp: Cols
    q: Cols


@dataclass(frozen=True)
class Losses:
    """Active losses per branch and period (MW), the slack that keeps them non-negative where
    the loss line falls below zero, and the rows that tie them to the flows."""

    p: Cols
    slack: Cols
    rows: Rows


@dataclass(frozen=True)
class Balance:
    """Active and reactive balance rows ``[t, bus]``; auxiliary internal buses of a meshed
    power-flow model (open line ends) have rows of their own."""

    p: Rows
    q: Rows
    aux_p: Rows | None = None
    aux_q: Rows | None = None


def add_flows(lp: LinearProgram, view: NetworkView, data: MarketData) -> Flows:
    """Branch flows (free) and squared voltages (bounded by the voltage limits)."""
    n_t, n_k, n_b = data.n_periods, len(view.branches), len(view.buses)
    return Flows(
        p=lp.add_cols("p", (n_t, n_k)),
        q=lp.add_cols("q", (n_t, n_k)),
        v=lp.add_cols("v", (n_t, n_b), 0.0),
    )


def add_voltage_drop(lp: LinearProgram, view: NetworkView, topo: Topology, flows: Flows) -> Rows:
    """v[to] − v[from] / ratio² + 2 (r p + x q) / base = 0 for every branch and period.

    The duals carry the voltage limits' prices up the feeder."""
    n_t, n_k = flows.p.shape
    rows = np.arange(n_t * n_k).reshape(n_t, n_k)
    v = flows.v.idx
    base = view.base_mva
    terms = (
        Terms(n_t * n_k)
        .add(rows, v[:, topo.to_pos], 1.0)
        .add(rows, v[:, topo.from_pos], -1.0 / topo.ratio**2)
        .add(rows, flows.p.idx, 2.0 * topo.r_pu / base)
        .add(rows, flows.q.idx, 2.0 * topo.x_pu / base)
    )
    return lp.add_rows("voltage_drop", (n_t, n_k), terms, 0.0, 0.0)


def add_losses(lp: LinearProgram, data: MarketData, flows: Flows) -> Losses:
    """Loss columns, tied to the flows by rows that :func:`relinearise_losses` writes at each
    AC operating point (before the first one: no losses)."""
    n_t, n_k = flows.p.shape
    loss = lp.add_cols("loss_p", (n_t, n_k), 0.0)
    cap = data.params.price_cap_eur_per_mwh * data.period_hours
    slack = lp.add_cols("loss_slack", (n_t, n_k), 0.0, INF, cap)
    rows = np.arange(n_t * n_k)
    terms = Terms(n_t * n_k).add(rows, loss.idx.ravel(), 1.0).add(rows, slack.idx.ravel(), -1.0)
    return Losses(loss, slack, lp.add_rows("loss", (n_t, n_k), terms, 0.0, 0.0))


def loss_plane(
    view: NetworkView,
    topo: Topology,
    p0: FloatArray,
    vm0: FloatArray,
    ac_loss: FloatArray,
    p_before: FloatArray | None = None,
    pinned: npt.NDArray[np.bool_] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """The loss line (c_0, c_p) ``[t, k]`` through an AC point: active flow ``p0`` at
    the from bus, |V| there ``vm0``, and the AC losses ``ac_loss``.

    The slope is that of the series losses a·p² (a = r / (base · |V|²)): given the step
    before's flow ``p_before``, the secant a·(p0 + p_before) through both points — exact at
    each, so a dispatch that swings between two states sees the losses of both as they are and
    settles, and the tangent (the marginal loss factor 2·a·p0) once the flow is steady; with no
    step before, or where the flow more than halved since (heading for zero), the chord to
    zero flow a·p0, so the line never promises negative losses on the way there; likewise where
    the last solve was ``pinned`` where its line crossed zero (no loss where the AC flow has
    some). The reactive
    part of the losses is held at the AC point (no slope in Q): reactive power costs almost
    nothing to move, and a slope there would invite the linear model to trade it for losses
    that do not exist."""
    v0 = np.maximum(vm0, 0.5) ** 2
    a = topo.r_pu[None, :] / (view.base_mva * v0)
    if p_before is None:
        ref = np.zeros_like(p0)
    else:
        # more than halved: heading for zero, where a tangent-like line would fall below zero
        shrinking = (np.sign(p_before) == np.sign(p0)) & (np.abs(p0) < 0.5 * np.abs(p_before))
        ref = np.where(shrinking, 0.0, p_before)
    if pinned is not None:
        # the last solve sat where the line crossed zero: the chord lets it reach zero flow
        ref = np.where(pinned, 0.0, ref)
    cp = a * (p0 + ref)
    c0 = ac_loss - cp * p0
    return c0, cp


def relinearise_losses(
    lp: LinearProgram,
    flows: Flows,
    losses: Losses,
    plane: tuple[FloatArray, FloatArray],
) -> None:
    """Replace the loss rows by ``loss_p − slack − c_p p = c_0``."""
    c0, cp = plane
    n_t, n_k = flows.p.shape
    rows = np.arange(n_t * n_k)
    terms = (
        Terms(n_t * n_k)
        .add(rows, losses.p.idx.ravel(), 1.0)
        .add(rows, losses.slack.idx.ravel(), -1.0)
        .add(rows, flows.p.idx.ravel(), -cp.ravel())
    )
    lp.replace_rows(losses.rows, terms, c0, c0)


def add_substation(lp: LinearProgram, view: NetworkView, data: MarketData) -> Substation:
    """Import and export at every slack within the ext_grid's limits where it sets them, priced
    at the wholesale prices; reactive supply free."""
    n_t, n_s = data.n_periods, len(view.slacks)
    dt = data.period_hours
    w = data.wholesale
    imp_max = np.array(
        [np.inf if s.max_import_mw is None else max(s.max_import_mw, 0.0) for s in view.slacks]
    )
    exp_max = np.array(
        [np.inf if s.max_export_mw is None else max(s.max_export_mw, 0.0) for s in view.slacks]
    )
    return Substation(
        imp=lp.add_cols(
            "import", (n_t, n_s), 0.0, imp_max[None, :], dt * w.import_eur_per_mwh[:, None]
        ),
        exp=lp.add_cols(
            "export", (n_t, n_s), 0.0, exp_max[None, :], -dt * w.export_eur_per_mwh[:, None]
        ),
        q=lp.add_cols("q_slack", (n_t, n_s)),
    )


def add_nodal_balance(
    lp: LinearProgram,
    view: NetworkView,
    data: MarketData,
    topo: Topology,
    flows: Flows,
    losses: Losses,
    sub: Substation,
    injections: Injections,
) -> Balance:
    """Active and reactive balance at every bus and period, inflexible consumption on the
    right-hand side.

    ``balance_p[t, b]``: inflow less its losses − outflow + import − export + flexible
    injections = inflexible consumption. Its dual (EUR per MW and period; divided by the
    period's hours) is the bus's DLMP. ``balance_q`` likewise prices reactive power; its
    right-hand side adds the reactive losses of the branches feeding the bus
    (:func:`set_reactive_losses`)."""
    n_t, n_b, n_k = data.n_periods, len(view.buses), len(view.branches)
    t = np.arange(n_t)[:, None]
    into = t * n_b + topo.to_pos[None, :]
    out = t * n_b + topo.from_pos[None, :]
    slack = t * n_b + topo.slack_pos[None, :]
    tp = (
        injections.p.add(into, flows.p.idx, 1.0)
        .add(into, losses.p.idx, -1.0)
        .add(out, flows.p.idx, -1.0)
        .add(slack, sub.imp.idx, 1.0)
        .add(slack, sub.exp.idx, -1.0)
    )
    tq = (
        injections.q.add(into, flows.q.idx, 1.0)
        .add(out, flows.q.idx, -1.0)
        .add(slack, sub.q.idx, 1.0)
    )
    del n_k
    return Balance(
        p=lp.add_rows("balance_p", (n_t, n_b), tp, data.fixed_p_mw, data.fixed_p_mw),
        q=lp.add_rows("balance_q", (n_t, n_b), tq, data.fixed_q_mvar, data.fixed_q_mvar),
    )


def set_reactive_losses(
    lp: LinearProgram, balance: Balance, data: MarketData, topo: Topology, q_loss: FloatArray
) -> None:
    """Reactive balance right-hand side: inflexible consumption plus the reactive losses
    ``q_loss[t, k]`` of the branches feeding each bus."""
    rhs = data.fixed_q_mvar.copy()
    np.add.at(rhs.T, topo.to_pos, q_loss.T)
    lp.set_row_bounds(balance.q, rhs, rhs)
