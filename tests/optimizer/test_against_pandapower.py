"""The AC-checked dispatch respects every limit on real feeders; infeasibility is explained."""

from datetime import datetime

import numpy as np
import pytest

from feederdao.domain import Bid, GridParameters, PriceBlock, Side
from feederdao.domain.clearing import ClearingOptions, WholesalePrices
from feederdao.errors import InfeasibleClearingError
from feederdao.grid_model import AcEvaluator
from feederdao.optimizer.clearing import ClearingEngine, clear
from feederdao.workflows.clearing import clear_market, open_market
from tests.optimizer.feeders import empty_profiles, participants, two_bus


def _assert_within_limits(result, params: GridParameters) -> None:  # type: ignore[no-untyped-def]
    assert result.ac_check.performed
    assert result.ac_check.feasible, result.ac_check.violations
    vm = result.ac_vm_pu[:, 1:]  # the substation bus holds its own set-point
    assert vm.max() <= params.v_max_pu + 0.001
    assert vm.min() >= params.v_min_pu - 0.001
    assert result.ac_loading_percent.max() <= 100.5


def test_lv_rural_pv_heavy_voltage_rise_binds() -> None:
    market = open_market("1-LV-rural1--2-sw", periods=96, seed=3)
    params = GridParameters(v_min_pu=0.95, v_max_pu=1.05)
    result = clear_market(market, params)
    _assert_within_limits(result, params)
    assert any("upper voltage limit" in b for b in result.binding)
    # the voltage part of the price shows the rise, and PV inverters absorb reactive power
    assert result.prices.voltage.min() < -0.01
    assert min(s.q_mvar for s in result.setpoints if s.device_id.startswith("sgen")) < -1e-3
    assert result.settlement.budget_balanced
    # the linear model's corrected voltages against the AC power flow at the final dispatch
    # (where the last step moved the dispatch, its correction is one step old)
    assert result.ac_check.max_voltage_error_pu < 0.005


def test_case33bw_undervoltage_binds() -> None:
    # the evening peak: case33bw's far end sags below 0.95 pu at nominal load
    market = open_market("case33bw", periods=8, start=datetime(2016, 6, 21, 18), seed=1)
    params = GridParameters(v_min_pu=0.95, v_max_pu=1.05)
    result = clear_market(market, params)
    _assert_within_limits(result, params)
    assert any("lower voltage limit" in b for b in result.binding)
    assert result.prices.voltage.max() > 1.0  # consumption at the far end is dearer
    far = result.bus_indices.index(17)
    assert (result.prices.dlmp[:, far] > result.prices.dlmp[:, 0]).all()


def test_infeasible_clearing_names_where_and_elastic_result_prices_it() -> None:
    net, view = two_bus()
    # an inflexible 0.5 MW load at the end of a 0.17 MVA line cannot be served
    import pandapower as pp

    pp.create_load(net, 1, p_mw=0.5, name="big")
    from feederdao.grid_model import build_view

    view = build_view(net, "overloaded")
    prof = empty_profiles(view)
    prof = type(prof)(prof.start, 15, prof.device_ids, np.array([[0.5]]), np.array([[0.0]]), "t")
    wholesale = WholesalePrices.flat(1, 60.0, 20.0)
    with pytest.raises(InfeasibleClearingError) as err:
        clear(view, prof, [], [], GridParameters(), wholesale, ClearingOptions(ac_check=False))
    assert "load shed at A" in str(err.value)
    assert err.value.shortfalls
    result = clear(
        view,
        prof,
        [],
        [],
        GridParameters(),
        wholesale,
        ClearingOptions(ac_check=False, elastic=True),
    )
    assert result.status == "elastic"
    assert result.shortfalls and "load shed at A" in result.shortfalls[0]
    assert result.prices.dlmp[0, 1] == pytest.approx(GridParameters().price_cap_eur_per_mwh)


def test_reclearing_reuses_the_model() -> None:
    net, view = two_bus(x_ohm=0.08)
    book = [Bid("b", "h", 1, 0, Side.BUY, (PriceBlock(200.0, 0.01),))]
    engine = ClearingEngine(
        view,
        empty_profiles(view),
        book,
        participants(("h", 1)),
        GridParameters(),
        WholesalePrices.flat(1, 50.0, 10.0),
        ClearingOptions(),
    )
    ac = AcEvaluator(net, view)
    first = engine.run(ac)
    assert engine.model is not None
    model, solver = engine.model, engine.model.solver
    second = engine.rebid([Bid("b2", "h", 1, 0, Side.BUY, (PriceBlock(40.0, 0.02),))], ac)
    # the same program and the same HiGHS instances: only bounds and costs were pushed
    assert engine.model is model and engine.model.solver is solver
    assert first.accepted_mw["b"] == pytest.approx((0.01,))
    assert second.accepted_mw["b2"] == pytest.approx((0.0,))  # 40 < 50 import price
    assert second.stats.n_variables == first.stats.n_variables


@pytest.mark.parametrize(
    ("code", "hour", "seed"),
    [
        ("case33bw", 18, 2),  # an undervoltage evening
        # an exporting noon: the transformer's rating binds at 1.025 pu, a current the LP's MVA
        # must be re-rated to (held to the MVA: 97.9 % loading, 2.4 % below runopp's welfare)
        ("1-LV-rural1--2-sw", 12, 0),
    ],
)
def test_objective_close_to_runopp(code: str, hour: int, seed: int) -> None:
    from bench.peers import ac_objective, pandapower_opf

    from feederdao.domain.clearing import WholesalePrices as WP

    market = open_market(code, periods=4, start=datetime(2016, 6, 21, hour), seed=seed)
    day = WP.day_shape(4, start_period=hour * 4)
    prices = WP(day.import_eur_per_mwh, day.import_eur_per_mwh)  # one ext_grid cost
    view = market.network.view
    engine = ClearingEngine(
        view,
        market.profiles,
        market.bids,
        tuple(market.registry.values()),
        GridParameters(),
        prices,
        ClearingOptions(storage="profile"),
    )
    result = engine.run(AcEvaluator(market.network.loaded.net, view))
    assert result.ac_check.feasible
    peer = pandapower_opf(engine, market.network.loaded.net)
    assert peer.converged == 4
    ours = ac_objective(engine, result)
    assert ours == pytest.approx(peer.objective_eur, rel=0.005)
