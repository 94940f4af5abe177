"""The engine itself: losses bounded from both sides, negative prices, the loss part of the price
on its own, the solver's cold retry, warm re-solves, re-clears and next days, decomposition by
period, what the result says about islands and the AC loop, curtailable renewables, the polygon, and
Pyomo extensions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from io import StringIO
from typing import Literal

import numpy as np
import pandapower as pp
import pyomo.environ as pyo
import pytest
from rich.console import Console

from feederdao.domain import Bid, GridParameters, PriceBlock, Side
from feederdao.domain.clearing import ClearingOptions, ClearingResult, WholesalePrices
from feederdao.domain.network import NetworkView
from feederdao.grid_model import AcEvaluator, build_view
from feederdao.optimizer import clearing as engine_module
from feederdao.optimizer.clearing import ClearingEngine, clear
from feederdao.optimizer.data import prepare
from feederdao.optimizer.extension import ClearingExtension, ExtensionError
from feederdao.optimizer.highs import Basis, HighsSolver, Solution
from feederdao.optimizer.lp import INF, LinearProgram, RowBlock, Terms
from feederdao.optimizer.model import ClearingModel, Extension, build
from feederdao.optimizer.network import relinearise_losses
from feederdao.optimizer.polygon import polygon
from feederdao.optimizer.topology import topology
from feederdao.workflows.clearing import clear_market, open_market, run_clearing
from feederdao.workflows.network import open_network
from feederdao.workflows.study import clear_day
from tests.optimizer.feeders import empty_profiles, participants, two_bus

WIDE = GridParameters(v_min_pu=0.8, v_max_pu=1.2)


def sell(bid_id: str, who: str, price: float, mw: float, device: str | None = None) -> Bid:
    return Bid(bid_id, who, 1, 0, Side.SELL, (PriceBlock(price, mw),), device)


def buy(bid_id: str, who: str, price: float, mw: float) -> Bid:
    return Bid(bid_id, who, 1, 0, Side.BUY, (PriceBlock(price, mw),))


def clear_two_bus(
    view: NetworkView, bids: Sequence[Bid] = (), extensions: Sequence[Extension] = ()
) -> ClearingResult:
    """One period of ``two_bus``'s market, household ``h`` at bus 1, no AC check."""
    return clear(
        view,
        empty_profiles(view),
        list(bids),
        participants(("h", 1)),
        WIDE,
        WholesalePrices.flat(1, 50.0, 10.0),
        ClearingOptions(ac_check=False),
        extensions=list(extensions),
    )


def test_negative_prices_come_out_as_they_are() -> None:
    """A subsidised plant offering at −40 EUR/MWh behind a full line: the price at its bus is its
    offer. Losses can absorb nothing beyond what the AC flow loses, so nothing floors it."""
    net, view = two_bus(max_i_ka=0.05 / (0.4 * math.sqrt(3)), x_ohm=0.08, generator_mva=0.2)
    r = clear(
        view,
        empty_profiles(view),
        [sell("s", "g", -40.0, 0.2)],
        participants(("g", 1)),
        WIDE,
        WholesalePrices.flat(1, 60.0, 20.0),
        ClearingOptions(),
        AcEvaluator(net, view),
    )
    assert r.ac_check.feasible, r.ac_check
    assert 0.0 < r.accepted_mw["s"][0] < 0.2  # curtailed by the line, not by the price
    assert r.prices.dlmp[0, 1] == pytest.approx(-40.0, abs=1e-6)
    assert r.prices.congestion[0, 1] < -50.0
    # the linear losses are the AC ones, not an energy sink
    assert r.ac_losses_mw is not None
    assert abs(r.ac_check.loss_error_mw) < 1e-4


def lossy_buyer() -> tuple[ClearingEngine, AcEvaluator]:
    """One period of ``two_bus`` (x = 0.08 Ω) with a 50 kW buyer at bus 1, AC-checked: its
    engine and AC evaluator."""
    net, view = two_bus(x_ohm=0.08)
    engine = ClearingEngine(
        view,
        empty_profiles(view),
        [buy("b", "h", 500.0, 0.05)],
        participants(("h", 1)),
        WIDE,
        WholesalePrices.flat(1, 50.0, 10.0),
        ClearingOptions(),
    )
    return engine, AcEvaluator(net, view)


def test_the_loss_part_of_the_price_is_the_marginal_loss_at_the_receiving_end() -> None:
    """Uncongested, inside the voltage band: the price at the far bus is the substation's plus
    the branch's marginal losses bought there, c_p · λ₁, with c_p = 2 L / p from the AC flow."""
    engine, ac = lossy_buyer()
    r = engine.run(ac)
    assert r.ac_check.feasible and r.ac_check.stopped == "converged"
    lam0, lam1 = r.prices.dlmp[0]
    assert lam0 == pytest.approx(50.0)
    assert r.ac_losses_mw is not None
    loss_mw, flow_mw = float(r.ac_losses_mw[0]), float(r.lp_branch_p_mw[0, 0])
    marginal = 2 * loss_mw / flow_mw  # a·p² → d/dp = 2a·p = 2L/p
    assert r.prices.loss[0, 1] == pytest.approx(marginal * lam1, rel=0.02)
    assert lam1 == pytest.approx(lam0 / (1 - marginal), rel=1e-3)
    p = r.prices
    np.testing.assert_allclose(p.energy + p.loss + p.congestion + p.voltage, p.dlmp, atol=1e-6)
    np.testing.assert_allclose(p.congestion, 0.0, atol=1e-9)
    np.testing.assert_allclose(p.voltage, 0.0, atol=1e-9)


def test_a_lifted_loss_line_counts_by_the_price_it_makes() -> None:
    """Where a loss line falls below zero, the loss slack lifts it and its row's dual is the
    slack's price (the cap) instead of the receiving end's: the branch's slope then prices its
    losses at the cap. The loop goes on while that moves a price beyond the loss price
    tolerance, and stops when it does not: a line lifted on a branch whose slope is nearly
    zero moves no price (one such line, lifted by 0.2 W, had kept a day of 1-MV-semiurb--2-sw
    going to its iteration limit)."""
    engine, ac = lossy_buyer()
    assert engine.run(ac).ac_check.stopped == "converged"
    model = engine.model
    assert model is not None
    d = model.solve()
    assert d is not None and d.loss_dual is not None
    flow = ac(*engine_module.bus_consumption(engine.data, d))
    assert engine._marginal(model, d, flow)
    cap = engine.data.params.price_cap_eur_per_mwh * engine.data.period_hours
    lifted = replace(d, loss_dual=np.full_like(d.loss_dual, -cap))
    # the slope the loop converged on, now priced at the cap
    assert not engine._marginal(model, lifted, flow)
    # the same line on a branch that carries a millionth of the flow, its slope with it
    tiny = 1e-6
    small = replace(lifted, loss_factor=d.loss_factor * tiny)
    small_flow = replace(flow, branch_p_from_mw=flow.branch_p_from_mw * tiny)
    assert engine._marginal(model, small, small_flow)


def test_the_price_parts_add_up_on_a_real_feeder() -> None:
    """Every part is computed from its own duals (none is a residual): their sum is the DLMP."""
    market = open_market("case33bw", periods=4, seed=1)
    r = clear_market(market, GridParameters(v_min_pu=0.95, v_max_pu=1.05))
    p = r.prices
    np.testing.assert_allclose(p.energy + p.loss + p.congestion + p.voltage, p.dlmp, atol=1e-6)
    assert p.loss[:, 1:].max() > 0.1  # case33bw loses several percent: its loss part shows


def test_a_binding_rating_is_met_as_pandapower_measures_it_with_tangent_cuts() -> None:
    """An exporting noon of 1-LV-rural1--2-sw: the transformer binds at 1.025 pu and more. Held
    to its MVA the loading stopped at 97.9 %, and the polygon's side normal to the P axis let
    the flow carry reactive power at no cost; re-rated and cut at the AC angle, the loading
    ends within tolerance of the limit, and the congestion part, from polygon and cuts
    together, still adds up to the DLMP."""
    engine, ac = held_engine("1-LV-rural1--2-sw", 4, datetime(2016, 6, 21, 12))
    r = engine.run(ac)
    assert r.ac_check.feasible and r.ac_check.stopped == "converged"
    assert engine.model is not None
    th = engine.model.thermal
    trafo = r.branch_ids.index("trafo:0")
    cuts = [b for b in th.batches if b.cos.shape[1] == 1]
    assert cuts and all((b.keys[:, 0] == trafo).all() for b in cuts)
    assert r.ac_loading_percent is not None
    loading = r.ac_loading_percent[:, trafo]
    tol = ClearingOptions().loading_tolerance_percent
    assert (loading >= 100.0 - tol).all() and (loading <= 100.0 + tol).all()
    assert (th.s_eff[:, trafo] > th.limit[trafo]).all()  # the MVA at 1.025 pu and more
    p = r.prices
    assert np.abs(p.congestion).max() > 1.0
    np.testing.assert_allclose(p.energy + p.loss + p.congestion + p.voltage, p.dlmp, atol=1e-6)


def test_a_solve_that_stops_short_is_retried_from_scratch() -> None:
    _, view = two_bus()
    data = prepare(
        view,
        empty_profiles(view, 3),
        [buy("b", "h", 200.0, 0.01)],
        participants(("h", 1)),
        WIDE,
        WholesalePrices.flat(3, 50.0, 10.0),
        ClearingOptions(ac_check=False),
    )
    model = build(view, data, topology(view))
    solver = HighsSolver(model.lp, threads=1)
    model.solver = solver
    # HiGHS stops after 0 iterations: "iteration limit", not an optimum
    solver._parts[1].highs.setOptionValue("presolve", "off")
    solver._parts[1].highs.setOptionValue("simplex_iteration_limit", 0)
    d = model.solve()
    assert d is not None
    assert d.accepted_mw == pytest.approx([0.01])
    assert d.retried and "period 1" in d.retried[0] and "from scratch" in d.retried[0]


def test_independent_periods_are_solved_apart_and_agree_with_the_whole() -> None:
    market = open_market("1-LV-rural1--2-sw", periods=8, seed=2)
    view = market.network.view
    parts = tuple(market.registry.values())
    held = ClearingOptions(storage="profile", ac_check=False)
    prices = WholesalePrices.flat(8, 100.0, 40.0)
    data = prepare(view, market.profiles, market.bids, parts, GridParameters(), prices, held)
    whole = build(view, data, topology(view))
    apart = build(view, data, topology(view))
    assert apart.lp.decomposable
    a = HighsSolver(apart.lp, threads=2).solve()
    w = HighsSolver(whole.lp, decompose=False).solve()
    assert a is not None and w is not None
    assert a.objective == pytest.approx(w.objective, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(a.row_dual, w.row_dual, atol=1e-6)
    r = ClearingEngine(view, market.profiles, market.bids, parts, options=held).run(None)
    assert r.stats.blocks == 8
    # storage optimised links the periods through its state of charge: one block
    optimised = ClearingEngine(
        view, market.profiles, market.bids, parts, options=ClearingOptions(ac_check=False)
    ).run(None)
    assert optimised.stats.blocks == 1


def test_a_program_linked_only_through_fixed_columns_splits_by_period() -> None:
    """A row that links periods holds whatever the solver does once all its columns are fixed
    (optimised storage held at a dispatch: its charge, discharge and state of charge): the
    program splits by period as one with no such row does, the fixed columns of no period
    read at their values and costed. A free column in the link, or fixed values the link does
    not hold at, keep it whole."""
    lp = LinearProgram(2)
    x = lp.add_cols("x", (2,), 0.0, 10.0, [1.0, 2.0])
    s = lp.add_cols("s", (2,), 3.0, 3.0, 0.5)  # fixed, one per period, linked
    k = lp.add_cols("k", (1,), 4.0, 4.0, 1.0, period=-1)  # fixed, of no period
    need = Terms(2).add(np.arange(2), x.idx, 1.0).add(np.arange(2), s.idx, 1.0)
    lp.add_rows("need", (2,), need, [5.0, 6.0], INF)  # x[t] + s[t] >= 5 + t
    link = Terms(1).add(0, s.idx[1], 1.0).add(0, s.idx[0], -1.0).add(0, k.idx[0], 1.0)
    lp.add_rows("link", (1,), link, 4.0, 4.0)  # s[1] - s[0] + k = 4: holds at 3, 3, 4
    assert not lp.decomposable and lp.separable
    split = HighsSolver(lp, threads=1)
    assert split.split and split.parts == 2
    a, w = split.solve(), HighsSolver(lp, decompose=False).solve()
    assert a is not None and w is not None
    # x = (2, 3): 2 + 6, s: 0.5 · 3 · 2, k: 4
    assert a.objective == pytest.approx(15.0) and w.objective == pytest.approx(15.0)
    np.testing.assert_allclose(a.primal, w.primal, atol=1e-9)
    np.testing.assert_allclose(a.row_dual[:2], w.row_dual[:2], atol=1e-9)
    assert a.row_dual[2] == 0.0  # the row left out prices nothing
    lp.set_cols(k, 3.0, 3.0)  # the link no longer holds at the fixed values
    assert not lp.separable
    lp.set_cols(k, 0.0, 10.0)  # a free column links the periods
    assert not lp.separable and not HighsSolver(lp, threads=1).split


def test_storage_held_at_its_dispatch_is_solved_period_by_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once its band has narrowed, optimised storage is held at its dispatch: nothing links
    the periods then and the window is solved as one small program per period, with the same
    optimum as the window (1-MV-semiurb--2-sw's July re-solves: 3.5-5.8 s as one 149k-row
    window, 0.5 s as 96 periods). The next window starts from the window's basis, and the
    storage let go makes the program one window again."""
    engine = rural1_lp(0)
    engine.run(None)
    model = engine.model
    assert model is not None and model.solver is not None
    d = model.solve()
    assert d is not None and d.soc_mwh is not None and model.solver.parts == 1
    band = engine._next_band(model, d)
    assert engine._next_hold(model, d) is None  # the first re-linearisation: a band
    engine.point = replace(engine.point, storage_band=band)
    # solved within its band: held when that solve was long, not when it was short, nor when
    # the window is small (this one: re-solved whole for less than loading its periods costs)
    long = engine_module.HOLD_ITERATIONS * d.soc_mwh.size
    assert engine._next_hold(model, replace(d, iterations=int(long) + 1)) is None
    monkeypatch.setattr(engine_module, "LARGE_WINDOW_ROWS", model.lp.n_rows - 1)
    assert engine._next_hold(model, replace(d, iterations=int(long))) is None
    hold = engine._next_hold(model, replace(d, iterations=int(long) + 1))
    assert hold is not None
    engine._apply_storage_band(model, band, hold)
    held = model.solve()
    assert held is not None and model.solver.split and model.solver.parts == 96
    assert held.soc_mwh is not None
    np.testing.assert_allclose(held.charge_mw, d.charge_mw, atol=1e-9)
    np.testing.assert_allclose(held.discharge_mw, d.discharge_mw, atol=1e-9)
    np.testing.assert_allclose(held.soc_mwh, d.soc_mwh, atol=1e-9)
    assert held.objective_eur == pytest.approx(d.objective_eur, rel=1e-7, abs=1e-6)
    # held, the storage is a price-taker: where its value set the price, others set it now
    # (the loop's last solve lets it go for that: test_a_storage_day_of_an_mv_feeder_...)
    assert not np.allclose(held.balance_p, d.balance_p, atol=1e-3)
    window = engine.basis()
    assert window is not None and window is model.window_basis
    engine._apply_storage_band(model, None)
    free = model.solve()
    assert free is not None and not model.solver.split and model.solver.parts == 1
    assert free.objective_eur == pytest.approx(d.objective_eur, rel=1e-7, abs=1e-6)


def test_storage_that_cannot_be_held_is_let_go_within_its_band() -> None:
    """A hold no solve can meet (here: states of charge its charge and discharge do not
    make) is let go, within its band, instead of failing the clearing."""
    engine = rural1_lp(0)
    engine.run(None)
    model = engine.model
    assert model is not None
    d = model.solve()
    assert d is not None and d.soc_mwh is not None
    band = engine._next_band(model, d)
    assert band is not None
    bad = (d.charge_mw, d.discharge_mw, d.soc_mwh + 0.5)
    engine.point = replace(engine.point, storage_band=band, storage_hold=bad)
    engine._apply_storage_band(model, band, bad)
    again, shortfalls, _ = engine._solve_once(model, engine_module._Timer())
    assert engine.point.storage_hold is None and not shortfalls
    net, width = band
    moved = again.charge_mw - again.discharge_mw
    assert (np.abs(moved - net) <= width + 1e-7).all()


def case33bw_engine(periods: int) -> tuple[ClearingEngine, AcEvaluator]:
    """A clearing of case33bw's generated book (seed 0) from 2016-06-21, storage held, with
    its AC evaluator."""
    return held_engine("case33bw", periods, datetime(2016, 6, 21))


def held_engine(code: str, periods: int, start: datetime) -> tuple[ClearingEngine, AcEvaluator]:
    """A clearing of ``code``'s generated book (seed 0) from ``start``, storage held, with
    its AC evaluator."""
    market = open_market(code, periods=periods, start=start, seed=0)
    view = market.network.view
    engine = ClearingEngine(
        view,
        market.profiles,
        market.bids,
        tuple(market.registry.values()),
        GridParameters(),
        WholesalePrices.day_shape(periods, start_period=start.hour * 4),
        ClearingOptions(storage="profile"),
    )
    return engine, AcEvaluator(market.network.loaded.net, view)


@pytest.mark.parametrize("in_place", [True, False], ids=["in-place", "deleted-and-added"])
@pytest.mark.parametrize("split", [True, False], ids=["per-period", "whole-window"])
def test_rows_re_linearised_keep_the_basis(
    split: bool, in_place: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The AC loop replaces the loss rows' coefficients at every step. Each HiGHS instance
    (one per period, or the whole window as with storage optimised) keeps its basis through
    that — new values, and a coefficient gone — whether the coefficients change in place or
    the rows are deleted and added again (HiGHS drops the basis when rows are deleted; a
    family whose rows changed in more coefficients than in place pays for goes that way): the
    re-solve starts from it, and reaches the same optimum as a fresh instance of the changed
    program."""
    went: list[bool] = []  # which way each re-linearisation went
    change = HighsSolver._change_coefficients

    def spied(self: HighsSolver, block: RowBlock) -> bool:
        went.append(change(self, block) if in_place else False)
        return went[-1]

    monkeypatch.setattr(HighsSolver, "_change_coefficients", spied)
    market = open_market("case33bw", periods=8, seed=0)
    view = market.network.view
    data = prepare(
        view,
        market.profiles,
        market.bids,
        tuple(market.registry.values()),
        GridParameters(),
        WholesalePrices.day_shape(8),
        ClearingOptions(storage="profile", ac_check=False),
    )
    model = build(view, data, topology(view))
    assert model.radial is not None
    tilt_loss_lines(model)  # lines with slopes, as after the first AC check
    solver = HighsSolver(model.lp, threads=1, decompose=split)
    assert solver.parts == (8 if split else 1)
    assert solver.solve() is not None
    cold = sum(p.highs.getInfo().simplex_iteration_count for p in solver._parts)
    for flat in (None, 3):
        tilt_loss_lines(model, flat)
        solver.sync()
        assert all(p.highs.getBasis().valid for p in solver._parts)
        again = solver.solve()
        assert again is not None
        warm = sum(p.highs.getInfo().simplex_iteration_count for p in solver._parts)
        assert cold > 100 and warm <= 0.1 * cold, (cold, warm, flat)
        fresh = HighsSolver(model.lp, threads=1, decompose=split).solve()
        assert fresh is not None
        assert again.objective == pytest.approx(fresh.objective, rel=1e-9, abs=1e-9)
    assert went == [in_place, in_place]


def tilt_loss_lines(model: ClearingModel, flat: int | None = None) -> None:
    """Re-linearise ``model``'s loss rows as the AC loop does: every line's slope 5 % and
    0.001 up (a program solved without AC starts with flat lines), or with ``flat`` that
    period's lines flat (their rows lose a coefficient)."""
    assert model.radial is not None
    losses = model.radial.losses
    block = model.lp.row_block(losses.rows)
    slope = model.loss_factor if model.loss_factor.size else np.zeros(losses.rows.shape)
    slope = slope * 1.05 + 1e-3
    if flat is not None:
        slope[flat] = 0.0
    model.loss_factor = slope
    relinearise_losses(
        model.lp, model.radial.flows, losses, (block.lower.reshape(losses.rows.shape), slope)
    )


def test_a_re_solve_prices_with_devex_unless_a_linked_window_was_re_linearised() -> None:
    """The dual steepest edge computes exact weights for the whole basis before its first
    iteration. A re-solve after new costs (or cuts, or bounds) starts near its optimum and
    prices with Devex, which needs no such set-up; so does a period's own program after a
    re-linearisation. A window whose periods the storage links moves far when its loss lines
    move, and keeps the steepest edge. Every re-solve ends at a fresh instance's optimum."""
    rng = np.random.default_rng(0)

    def strategies(solver: HighsSolver) -> set[int]:
        return {
            int(p.highs.getOptionValue("simplex_dual_edge_weight_strategy")[1])
            for p in solver._parts
        }

    def agrees(model: ClearingModel, solved: Solution | None) -> None:
        fresh = HighsSolver(model.lp, threads=1).solve()
        assert solved is not None and fresh is not None
        assert solved.objective == pytest.approx(fresh.objective, rel=1e-9, abs=1e-9)

    window = rural1_lp(0)
    window.run(None)
    held, _ = case33bw_engine(8)
    held.run(None)
    for engine, coupled in ((window, True), (held, False)):
        model = engine.model
        assert model is not None and model.solver is not None
        solver = model.solver
        assert {p.coupled for p in solver._parts} == {coupled}
        changed = rng.random(model.lp.n_cols) < 0.5
        model.lp.cost[changed] *= 1.05
        agrees(model, solver.solve())
        assert strategies(solver) == {1}
        tilt_loss_lines(model)
        agrees(model, solver.solve())
        assert strategies(solver) == ({-1} if coupled else {1})


def test_a_large_window_with_no_basis_starts_with_the_interior_point_method(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A whole window above the size limit with nothing to start from is first solved by the
    interior point method with crossover (its cleanup priced with Devex); the re-solves after
    it are the dual simplex's again from that basis. The optimum is the simplex's from nothing.
    (The size limit is lowered here so that a small feeder's window counts as large.)"""
    from feederdao.optimizer import highs as highs_module

    engine = rural1_lp(0)
    engine.run(None)
    model = engine.model
    assert model is not None
    monkeypatch.setattr(highs_module, "LARGE_WINDOW_ROWS", 0)
    solver = HighsSolver(model.lp, threads=1, decompose=False)
    (part,) = solver._parts
    first = solver.solve()
    assert first is not None and part.highs.getInfo().ipm_iteration_count > 0
    assert part.highs.getOptionValue("solver")[1] == "choose"
    simplex = HighsSolver(model.lp, threads=1, decompose=False)
    monkeypatch.setattr(highs_module, "LARGE_WINDOW_ROWS", 10**9)
    reference = simplex.solve()
    assert reference is not None and simplex._parts[0].highs.getInfo().ipm_iteration_count == 0
    assert first.objective == pytest.approx(reference.objective, rel=1e-9, abs=1e-9)
    model.lp.cost[: model.lp.n_cols // 2] *= 1.05
    again = solver.solve()
    assert again is not None and part.highs.getInfo().ipm_iteration_count == 0


def test_a_re_clear_of_the_same_book_starts_where_the_clearing_converged() -> None:
    """A re-clear starts from the program as the last clearing converged (its loss lines
    agree with the AC flows): the same book again is one solve, with the same prices."""
    engine, ac = case33bw_engine(8)
    first = engine.run(ac)
    assert first.ac_check.stopped == "converged" and first.stats.solves > 1
    again = engine.rebid(engine.bids, ac)
    assert again.ac_check.stopped == "converged" and again.stats.solves == 1
    np.testing.assert_allclose(again.prices.dlmp, first.prices.dlmp, atol=1e-6)


def test_the_storage_band_narrows_by_a_quarter_around_each_dispatch() -> None:
    """After a free solve each optimised unit may move a quarter of its converter's rating
    either way from its dispatch, and at every re-linearisation after a quarter of the last
    width (halved, 1-MV-semiurb--2-sw's 114 units took 6-8 iterations a day instead of 4-5)."""
    engine = rural1_lp(0)
    engine.run(None)
    model = engine.model
    assert model is not None
    d = model.solve()
    assert d is not None
    p_max = np.array([u.p_max_mw for u in engine.data.storage])
    band = engine._next_band(model, d)
    assert band is not None
    net, width = band
    np.testing.assert_allclose(net, d.charge_mw - d.discharge_mw)
    np.testing.assert_allclose(width, np.broadcast_to(0.25 * p_max, net.shape))
    engine.point = replace(engine.point, storage_band=band)
    again_band = engine._next_band(model, d)
    assert again_band is not None
    _, narrower = again_band
    np.testing.assert_allclose(narrower, 0.25 * width)
    # the next solve keeps each unit within its band, and within its converter
    engine._apply_storage_band(model, band)
    again = model.solve()
    assert again is not None
    moved = again.charge_mw - again.discharge_mw
    assert (np.abs(moved - net) <= width + 1e-7).all()
    assert (np.abs(moved) <= p_max[None, :] + 1e-7).all()


def window_splits(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each solve of a storage-optimised window (not the storage-held start's
    program) ran split by period, in order, from now on."""
    split: list[bool] = []
    solve = ClearingModel.solve

    def spied(self: ClearingModel) -> object:
        out = solve(self)
        assert self.solver is not None
        if self.storage.soc is not None:
            split.append(self.solver.split)
        return out

    monkeypatch.setattr(ClearingModel, "solve", spied)
    return split


def test_a_storage_day_of_an_mv_feeder_converges_in_a_few_iterations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1-MV-semiurb--2-sw's day of 2016-01-03 (book seed 2), its 114 units optimised: with the
    band halved and any lifted loss line holding the loop, it ran to the iteration limit (8),
    the last steps waiting on a line lifted by 0.2 W; it converges in at most six now. After
    its first band the storage is held (the window solved period by period), and the last
    solve lets it go within its band, as one window, for the prices."""
    split = window_splits(monkeypatch)
    day = clear_day(open_network("1-MV-semiurb--2-sw"), datetime(2016, 1, 3), 2)
    check = day.result.ac_check
    assert check.stopped == "converged" and check.iterations <= 6, check
    assert check.feasible and not check.violations
    assert any(split) and not split[0] and not split[-1], split


def test_a_loop_short_of_iterations_ends_on_a_window_not_on_held_storage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hold needs a held step and one more to let the storage go: with three iterations
    allowed, the day's band solve is not followed by a hold, and whatever the loop stops on
    is a solve of the whole window (held, the storage would be a price-taker in the result)."""
    split = window_splits(monkeypatch)
    options = ClearingOptions(max_iterations=3)
    day = clear_day(open_network("1-MV-semiurb--2-sw"), datetime(2016, 1, 3), 2, options=options)
    assert day.result.ac_check.iterations <= 3
    assert split and not any(split), split


def rural1_lp(day: int, warm: Basis | None = None) -> ClearingEngine:
    """The linear program alone (no AC check) of 1-LV-rural1--2-sw's day ``day`` from
    2016-06-21 (book seed ``day``), its five batteries optimised."""
    market = open_market(
        "1-LV-rural1--2-sw", periods=96, start=datetime(2016, 6, 21 + day), seed=day
    )
    return ClearingEngine(
        market.network.view,
        market.profiles,
        market.bids,
        tuple(market.registry.values()),
        GridParameters(),
        WholesalePrices.day_shape(96),
        ClearingOptions(ac_check=False),
        warm=warm,
    )


def test_a_day_starts_from_the_basis_of_the_day_before() -> None:
    """A study's next day is a new program of the same families (other profiles, other bids,
    other thermal rows). Started from the day before's basis, matched by family, its solve
    reaches the same optimum as from nothing, in far fewer simplex iterations."""
    engine = rural1_lp

    def iterations(e: ClearingEngine) -> int:
        assert e.model is not None and e.model.solver is not None
        return sum(p.highs.getInfo().simplex_iteration_count for p in e.model.solver._parts)

    before = engine(0)
    before.run(None)
    basis = before.basis()
    assert basis is not None
    cold, warm = engine(1), engine(1, basis)
    from_nothing, from_before = cold.run(None), warm.run(None)
    assert warm.model is not None and warm.model.solver is not None
    assert warm.model.solver.parts == 1 and warm.model.solver._parts[0].seeded
    assert from_before.welfare_eur == pytest.approx(from_nothing.welfare_eur, rel=1e-8)
    assert iterations(warm) < 0.25 * iterations(cold), (iterations(warm), iterations(cold))


def test_a_clearing_keeps_its_basis_only_when_asked() -> None:
    """Reading the basis back costs time, so ``run_clearing`` keeps it only with
    ``keep_basis``; a clearing started from it (``warm``) reaches the same optimum."""
    market = open_market("case33bw", periods=8, seed=3)
    options = ClearingOptions(ac_check=False)
    plain = run_clearing(market, options=options)
    kept = run_clearing(market, options=options, keep_basis=True)
    assert plain.basis is None
    assert kept.basis is not None and kept.basis.rows and kept.basis.cols
    again = run_clearing(market, options=options, warm=kept.basis)
    assert again.result.welfare_eur == pytest.approx(plain.result.welfare_eur, rel=1e-8)


def test_the_provenance_hash_follows_the_book_not_its_order() -> None:
    """A result's provenance hash names the book it cleared: the same bids in another order
    give the same hash; a block's price, a block's quantity, a bid's side, device or period
    each give another."""
    market = open_market("case33bw", periods=2, seed=1)
    view, bids = market.network.view, tuple(market.bids)

    def digest(book: tuple[Bid, ...]) -> str:
        return engine_module._provenance_hash(
            view, book, GridParameters(), WholesalePrices.day_shape(2), ClearingOptions()
        )

    first = bids[0]
    block, rest = first.blocks[0], first.blocks[1:]
    changed = [
        replace(
            first,
            blocks=(replace(block, price_eur_per_mwh=block.price_eur_per_mwh + 0.01), *rest),
        ),
        replace(first, blocks=(replace(block, quantity_mw=block.quantity_mw * 1.001), *rest)),
        replace(first, side=Side.SELL if first.side == Side.BUY else Side.BUY, device_id=None),
        replace(first, device_id="another"),
        replace(first, period=1 - first.period),
    ]
    base = digest(bids)
    assert digest(bids[::-1]) == base
    digests = {digest((bid, *bids[1:])) for bid in changed}
    assert base not in digests and len(digests) == len(changed)


def test_the_hashed_book_is_the_books_repr() -> None:
    """The hash reads the book as its repr, written out for speed: the same text, so a result
    stored before keeps its hash — for one-block and many-block bids, with and without a
    device."""
    market = open_market("1-LV-rural1--2-sw", periods=4, seed=0)
    bids = list(market.bids)
    one = bids[0]
    extra = [
        replace(one, bid_id="single", blocks=one.blocks[:1], device_id="sgen:0"),
        replace(one, bid_id="no device", device_id=None),
        replace(one, bid_id='it\'s "quoted"', blocks=(PriceBlock(-12.5, 1e-7),) * 3),
    ]
    book = bids + extra
    assert len({len(b.blocks) for b in book}) > 1 and any(b.device_id is None for b in book)
    assert engine_module._book_repr(book) == repr(book)


def test_a_large_storage_window_starts_from_the_storage_held_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large storage-optimised window with no basis to start from first solves the same
    program with the storage held (one small program per period) and starts from its basis:
    the same optimum as from nothing. (The size from which this is done is lowered here so that
    a small feeder's window counts as large.)"""
    small, large = rural1_lp(0), rural1_lp(0)
    from_nothing = small.run(None)
    assert small.model is not None and small.model.warm is None
    monkeypatch.setattr(engine_module, "LARGE_WINDOW_ROWS", 0)
    from_held = large.run(None)
    assert large.model is not None and large.model.solver is not None
    assert large.model.warm is not None and large.model.solver._parts[0].seeded
    assert from_held.welfare_eur == pytest.approx(from_nothing.welfare_eur, rel=1e-8)
    assert from_held.storage_soc_mwh  # the window optimised its storage: it was not held


def test_islands_are_named_in_the_result() -> None:
    net, _ = two_bus(x_ohm=0.08)
    lonely = pp.create_bus(net, vn_kv=0.4, name="island")
    pp.create_load(net, lonely, p_mw=0.01, name="stranded")
    view = build_view(net, "with-island")
    r = clear(
        view,
        empty_profiles(view),
        [buy("b", "h", 200.0, 0.01)],
        participants(("h", 1)),
        WIDE,
        WholesalePrices.flat(1, 50.0, 10.0),
    )
    assert any("island" in n and "left out" in n for n in r.notes), r.notes
    assert any("load:0" in n for n in r.notes), r.notes


def test_renewables_other_than_pv_offer_and_are_curtailed() -> None:
    """A wind farm's offer is tied to it like a PV inverter's; congestion curtails it."""
    net, _ = two_bus(max_i_ka=0.05 / (0.4 * math.sqrt(3)), x_ohm=0.08)
    pp.create_sgen(net, 1, p_mw=0.1, sn_mva=0.12, type="Wind_MV", name="wind")
    view = build_view(net, "wind")
    assert view.device("sgen:0").kind == "renewable"
    from feederdao.grid_model import ParticipantRegistry

    registry = ParticipantRegistry.from_network(view, empty_profiles(view))
    owner = next(p for p in registry.values() if p.has_device("sgen:0"))
    profiles = empty_profiles(view)
    profiles = replace(profiles, p_mw=np.array([[0.1]]), q_mvar=np.array([[0.0]]))
    r = clear(
        view,
        profiles,
        [Bid("w", owner.participant_id, 1, 0, Side.SELL, (PriceBlock(5.0, 0.1),), "sgen:0")],
        tuple(registry.values()),
        WIDE,
        WholesalePrices.flat(1, 60.0, 20.0),
        ClearingOptions(),
        AcEvaluator(net, view),
    )
    assert r.ac_check.feasible
    sold = r.accepted_mw["w"][0]
    assert 0.0 < sold < 0.06
    wind = next(s for s in r.setpoints if s.device_id == "sgen:0")
    assert wind.p_mw == pytest.approx(sold, abs=1e-9)  # the curtailed plant runs at what it sold


def test_an_iteration_that_cannot_improve_ends_the_loop() -> None:
    market = open_market("1-LV-rural2--1-sw", periods=96, seed=0)
    r = clear_market(market, GridParameters())
    assert r.ac_check.stopped in ("converged", "no-improvement")
    assert r.ac_check.iterations < 6


def test_the_summary_never_says_all_limits_met_when_losses_or_money_do_not_add_up() -> None:
    from feederdao.cli import render

    _, view = two_bus(x_ohm=0.08)
    net, _ = two_bus(x_ohm=0.08)
    r = clear(
        view,
        empty_profiles(view),
        [buy("b", "h", 200.0, 0.01)],
        participants(("h", 1)),
        WIDE,
        WholesalePrices.flat(1, 50.0, 10.0),
        ClearingOptions(),
        AcEvaluator(net, view),
    )

    def shown(result: object) -> str:
        out = StringIO()
        render.clearing_summary(Console(file=out, width=200), result)  # type: ignore[arg-type]
        return out.getvalue()

    assert "all limits met" in shown(r)
    off = replace(r, ac_check=replace(r.ac_check, losses_agree=False, loss_error_mw=0.5))
    assert "all limits met" not in shown(off) and "losses" in shown(off)
    broke = replace(r, settlement=replace(r.settlement, merchandising_surplus_eur=-100.0))
    assert "all limits met" not in shown(broke) and "budget" in shown(broke)


def test_the_polygon_is_inscribed_or_circumscribed_as_it_says() -> None:
    for n in (4, 8, 16):
        inner, outer = polygon(n, "inscribed"), polygon(n, "circumscribed")
        # vertices of the inscribed polygon lie on the unit circle, on the axes
        for x, y in ((1, 0), (0, 1), (-1, 0), (0, -1)):
            assert (inner.cos * x + inner.sin * y <= inner.scale + 1e-12).all()
            assert (inner.cos * x + inner.sin * y >= inner.scale - 1e-12).any()
        # the circumscribed one touches the circle at each side's middle and contains it
        theta = np.linspace(0, 2 * np.pi, 361)
        pts = np.stack([np.cos(theta), np.sin(theta)], axis=1)
        assert ((pts @ np.stack([outer.cos, outer.sin])) <= 1 + 1e-12).all()
        assert ((pts * 0.999 @ np.stack([inner.cos, inner.sin])) <= inner.scale).any(axis=1).all()


def test_the_folded_polygon_on_split_variables_is_the_polygon() -> None:
    rng = np.random.default_rng(0)
    pq = rng.uniform(-1.1, 1.1, size=(20_000, 2))
    for n in (4, 6, 8, 16):
        full, folded = polygon(n, "inscribed"), polygon(n, "inscribed").folded()
        assert folded.sides <= n // 4 + 1
        inside = (pq @ np.stack([full.cos, full.sin]) <= full.scale).all(axis=1)
        # one of each pair non-zero: p⁺ + p⁻ = |P|, q⁺ + q⁻ = |Q|
        rows = np.abs(pq) @ np.stack([folded.cos, folded.sin]) <= folded.scale
        if n % 4 == 0:
            assert (rows.all(axis=1) == inside).all()
        else:  # never looser than the polygon
            assert not (rows.all(axis=1) & ~inside).any()


def test_a_pyomo_extension_is_honoured_and_reads_its_duals() -> None:
    _, view = two_bus()
    seen: dict[str, object] = {}

    def cap_import(ext: ClearingExtension) -> None:
        imp = ext.var("import")
        m = ext.model
        m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        m.cap = pyo.Constraint(ext.periods, rule=lambda m, t: imp[t, 0] <= 0.004)
        seen["model"] = m

    r = clear_two_bus(view, [buy("b", "h", 200.0, 0.01)], [cap_import])
    assert r.accepted_mw["b"][0] == pytest.approx(0.004)
    m = seen["model"]
    assert pyo.value(m.clearing_import[0, 0]) == pytest.approx(0.004)  # type: ignore[attr-defined]
    # the cap is worth (200 − 50) EUR/MWh for a quarter hour: its dual
    assert m.dual[m.cap[0]] == pytest.approx(-(200.0 - 50.0) * 0.25)  # type: ignore[attr-defined]

    def bad(ext: ClearingExtension) -> None:
        v = ext.var("import")
        ext.model.sq = pyo.Constraint(expr=v[0, 0] * v[0, 0] <= 1)

    with pytest.raises(ExtensionError, match="not linear"):
        clear_two_bus(view, extensions=[bad])


def test_a_voltage_controlled_generator_holds_its_bus() -> None:
    """A pandapower ``gen``: fixed P, and |V| at its set-point with the reactive power that
    takes (LinDistFlow: v = vm², Q free); its bus leaves the band's rows."""
    net, _ = two_bus(x_ohm=0.08)
    pp.create_gen(net, 1, p_mw=0.02, vm_pu=1.02, name="machine")
    view = build_view(net, "with-gen")
    profiles = empty_profiles(view, 2)
    p = np.zeros((2, len(view.devices)))
    p[:, profiles.column("gen:0")] = 0.02
    r = clear(
        view,
        replace(profiles, p_mw=p, q_mvar=np.zeros_like(p)),
        [buy("b", "h", 200.0, 0.01)],
        participants(("h", 1)),
        GridParameters(v_min_pu=0.95, v_max_pu=1.05),
        WholesalePrices.flat(2, 50.0, 10.0),
        ClearingOptions(ac_check=False),
    )
    np.testing.assert_allclose(r.lp_vm_pu[:, 1], 1.02, atol=1e-9)
    # the machine's 20 kW cover the 10 kW bought; the rest is exported
    assert r.slack_import_mw[0] == pytest.approx(-0.01, abs=1e-6)


def test_a_day_of_case33bw_converges_with_marginal_loss_prices() -> None:
    """On case33bw the marginal offers swing between buses as the loss lines follow them, and
    the lines' slopes never settle on the tangents; the loop still stops ``converged``, and the
    loss part of the price is the marginal loss the AC power flow itself finds (a finite
    difference of the substation's import, outside the linear model)."""
    n = 96
    engine, ac = case33bw_engine(n)
    r = engine.run(ac)
    assert r.ac_check.feasible and r.ac_check.stopped == "converged"
    assert r.ac_check.iterations < ClearingOptions().max_iterations
    consumption = engine.point.consumption
    assert consumption is not None
    p, q = consumption
    prices = r.prices
    quiet = (np.abs(prices.congestion) < 1e-6) & (np.abs(prices.voltage) < 1e-6)
    far = int(np.argmax(prices.loss.max(axis=0)))
    periods = [t for t in range(0, n, 12) if quiet[t, far]]
    assert len(periods) >= 4
    delta = 1e-3
    base = ac(p[periods], q[periods]).slack_p_mw.sum(axis=1)
    bumped = p[periods].copy()
    bumped[:, far] += delta
    more = ac(bumped, q[periods]).slack_p_mw.sum(axis=1)
    marginal_loss = (more - base) / delta - 1.0  # MW lost per MW more consumed at the far bus
    energy = prices.energy[periods, far]
    np.testing.assert_allclose(
        prices.loss[periods, far], energy * marginal_loss, rtol=0.05, atol=0.05
    )


def test_optimised_storage_settles_and_earns_at_least_its_profile() -> None:
    """Optimised storage follows each new set of loss lines to other periods; the band around
    the last dispatch, narrowed at every re-linearisation, lets the loop settle (it ran into its
    iteration limit before), and the day's welfare is at least that of the storage held at its
    profile, which is one of the dispatches the optimisation could choose."""
    n = 96
    market = open_market("1-LV-rural1--2-sw", periods=n, start=datetime(2016, 6, 21), seed=0)

    def run(storage: Literal["optimise", "profile"]) -> ClearingResult:
        options = ClearingOptions(storage=storage)
        return clear_market(market, GridParameters(), options, WholesalePrices.day_shape(n))

    optimised, held = run("optimise"), run("profile")
    assert optimised.ac_check.feasible and optimised.ac_check.stopped == "converged"
    moved = [s for s in optimised.setpoints if s.device_id.startswith("storage:") and s.p_mw]
    assert moved
    assert optimised.welfare_eur >= held.welfare_eur - 1e-6
    # the state of charge the result reports is the one its setpoints lead to
    assert not held.storage_soc_mwh
    device = next(
        d for p in market.registry.values() for d in p.devices if d.device_id == moved[0].device_id
    )
    assert device.e_mwh
    p = np.array([s.p_mw for s in optimised.setpoints if s.device_id == device.device_id])
    step = (
        device.eta_charge * np.clip(p, 0, None) - np.clip(-p, 0, None) / device.eta_discharge
    ) * optimised.period_hours
    start = device.soc_init_percent / 100.0 * device.e_mwh
    np.testing.assert_allclose(
        optimised.storage_soc_mwh[device.device_id], start + np.cumsum(step), atol=1e-6
    )


def test_the_collector_pauses_for_a_clearing_and_runs_again_after_it() -> None:
    """The cyclic collector is paused while a clearing runs (its full passes over everything
    the process holds fell inside clearings) and runs again when the clearing returns, and
    when it fails; with two clearings in two threads, when the last of them returns."""
    import gc
    import threading

    _, view = two_bus()
    during: list[bool] = []

    def record(ext: ClearingExtension) -> None:
        during.append(gc.isenabled())

    assert gc.isenabled()
    r = clear_two_bus(view, [buy("b", "h", 200.0, 0.01)], [record])
    assert r.accepted_mw["b"][0] == pytest.approx(0.01)
    assert during == [False] and gc.isenabled()

    def fail(ext: ClearingExtension) -> None:
        raise ExtensionError("refused")

    with pytest.raises(ExtensionError, match="refused"):
        clear_two_bus(view, extensions=[fail])
    assert gc.isenabled()
    # two clearings at once, in two threads: the collector runs again after the last one
    inside, release = threading.Event(), threading.Event()

    def hold(ext: ClearingExtension) -> None:
        inside.set()
        assert release.wait(30)

    other = threading.Thread(target=clear_two_bus, args=(view,), kwargs={"extensions": [hold]})
    other.start()
    assert inside.wait(30)
    clear_two_bus(view)
    assert not gc.isenabled()  # the other clearing still runs
    release.set()
    other.join(30)
    assert not other.is_alive() and gc.isenabled()
    gc.disable()  # a caller that paused it keeps it paused
    try:
        clear_two_bus(view)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_coefficients_change_in_place_where_that_costs_less() -> None:
    """The measured cases the rule was set by: a 96-period day's loss lines (small per-period
    instances) and every re-linearisation that keeps the rows' coefficients go in place; the
    10,453-bus network's first one, where 10,452 coefficients appear in one instance of
    178,029, is deleted and added again."""
    from feederdao.optimizer.highs import _in_place_pays

    def pays(changed: list[int], moved: list[int], nnz: list[int], rows: int) -> bool:
        return _in_place_pays(
            np.array(changed, dtype=np.int64),
            np.array(moved, dtype=np.int64),
            np.array(nnz, dtype=np.int64),
            rows,
        )

    assert pays([119] * 96, [119] * 96, [3382] * 96, 11424)
    assert pays([10452], [0], [178029], 10452)
    assert not pays([10452], [10452], [178029], 10452)
    assert not pays([60 * 500], [0], [90000], 500)  # dense rows: each changed everywhere
    # a small family gaining coefficients in a large instance: adding it again moves the
    # instance's matrix twice, changing it in place once per coefficient
    assert not pays([50], [50], [178029], 50)
