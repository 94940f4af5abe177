"""Meshed feeders clear on the AC expansion, never as a tree."""

from datetime import datetime

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from feederdao.domain import Bid, GridParameters, Participant, PriceBlock, Side
from feederdao.domain.clearing import ClearingOptions, WholesalePrices
from feederdao.errors import NetworkDataError
from feederdao.grid_model import (
    AcEvaluator,
    ParticipantRegistry,
    build_profiles,
    build_view,
    generate_bids,
)
from feederdao.grid_model.loader import LoadedNetwork
from feederdao.optimizer.clearing import ClearingEngine
from tests.optimizer.feeders import empty_profiles


def test_cigre_mv_with_closed_rings_clears_within_limits() -> None:
    net = pn.create_cigre_network_mv(with_der="pv_wind")
    net.switch["closed"] = True  # close the three ring switches
    view = build_view(net, "cigre_mv_rings")
    assert view.topology == "meshed"
    loaded = LoadedNetwork("cigre_mv_rings", "builtin", net)
    profiles = build_profiles(loaded, view, datetime(2016, 6, 21, 10), 8)
    registry = ParticipantRegistry.from_network(view, profiles)
    bids = generate_bids(view, registry, profiles, seed=1)
    params = GridParameters(v_min_pu=0.97, v_max_pu=1.02)
    engine = ClearingEngine(view, profiles, bids, tuple(registry.values()), params)
    result = engine.run(AcEvaluator(net, view))
    assert result.ac_check.feasible, result.ac_check.violations
    assert result.ac_vm_pu is not None
    assert result.ac_vm_pu[:, 1:].max() <= 1.02 + 0.001
    assert any("upper voltage limit" in b for b in result.binding)
    p = result.prices
    np.testing.assert_allclose(p.energy + p.loss + p.congestion + p.voltage, p.dlmp, atol=1e-6)
    assert np.abs(p.voltage).max() > 1.0
    assert np.abs(p.loss).max() > 0.05  # marginal losses are priced on a mesh


def test_congested_loop_flow_follows_impedances() -> None:
    """Triangle S–A–B: a buyer at B is fed over S–B and S–A–B; limiting S–B caps the import
    at B through the loop, so B's price rises above the substation's."""
    net = pp.create_empty_network(sn_mva=1.0)
    s, a, b = (pp.create_bus(net, vn_kv=0.4, name=n) for n in "SAB")
    pp.create_ext_grid(net, s)
    kw = {"r_ohm_per_km": 0.2, "x_ohm_per_km": 0.08, "c_nf_per_km": 0.0}
    pp.create_line_from_parameters(net, s, a, length_km=0.2, max_i_ka=1.0, **kw)
    pp.create_line_from_parameters(net, a, b, length_km=0.2, max_i_ka=1.0, **kw)
    pp.create_line_from_parameters(net, s, b, length_km=0.2, max_i_ka=0.15, **kw)
    view = build_view(net, "triangle")
    assert view.topology == "meshed"
    bids = [
        Bid("buy", "pb", b, 0, Side.BUY, (PriceBlock(300.0, 0.2),)),
        Bid("local", "pb", b, 0, Side.SELL, (PriceBlock(200.0, 0.2),)),
    ]
    engine = ClearingEngine(
        view,
        empty_profiles(view),
        bids,
        [Participant("pb", b)],
        GridParameters(),
        WholesalePrices.flat(1, 50.0, 10.0),
        ClearingOptions(),
    )
    result = engine.run(AcEvaluator(net, view))
    assert result.ac_check.feasible, result.ac_check.violations
    sb = result.branch_ids.index("line:2")
    assert result.ac_loading_percent is not None
    assert result.ac_loading_percent[0, sb] <= 100.5
    assert result.ac_loading_percent[0, sb] > 95  # the short S–B line is what binds
    assert result.prices.dlmp[0, 2] > result.prices.dlmp[0, 0] + 10
    assert result.prices.congestion[0, 2] > 10
    assert result.accepted_mw["buy"] == pytest.approx((0.2,), abs=1e-6)


def test_meshed_needs_an_ac_evaluator() -> None:
    net = pn.create_cigre_network_mv()
    net.switch["closed"] = True
    view = build_view(net)
    engine = ClearingEngine(
        view, empty_profiles(view), [], [], GridParameters(), WholesalePrices.flat(1, 50.0, 10.0)
    )
    with pytest.raises(NetworkDataError, match="meshed.*never treated as radial"):
        engine.run(None)
