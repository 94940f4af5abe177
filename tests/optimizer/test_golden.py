"""Golden prices on feeders small enough to work out by hand (lossless LP, no AC check)."""

import math

import numpy as np
import pytest

from feederdao.domain import Bid, GridParameters, PriceBlock, Side
from feederdao.domain.clearing import ClearingOptions, WholesalePrices
from feederdao.optimizer.clearing import clear
from tests.optimizer.feeders import empty_profiles, participants, two_bus

LP_ONLY = ClearingOptions(ac_check=False)
WIDE = GridParameters(v_min_pu=0.8, v_max_pu=1.2)


def buy(bid_id: str, who: str, bus: int, price: float, mw: float) -> Bid:
    return Bid(bid_id, who, bus, 0, Side.BUY, (PriceBlock(price, mw),))


def sell(bid_id: str, who: str, bus: int, price: float, mw: float) -> Bid:
    return Bid(bid_id, who, bus, 0, Side.SELL, (PriceBlock(price, mw),))


def test_uncongested_one_price_equal_to_the_marginal_offer() -> None:
    _, view = two_bus()
    bids = [buy("b", "h", 1, 200.0, 0.01), sell("s", "pv", 1, 30.0, 0.02)]
    r = clear(
        view,
        empty_profiles(view),
        bids,
        participants(("h", 1), ("pv", 1)),
        WIDE,
        WholesalePrices.flat(1, 100.0, 20.0),
        LP_ONLY,
    )
    # the buyer takes 0.01 MW; the seller sells 0.01 of its 0.02 MW (exporting at 20 < 30 does
    # not pay), so the seller is marginal and sets one price everywhere
    assert r.accepted_mw["b"] == pytest.approx((0.01,))
    assert r.accepted_mw["s"] == pytest.approx((0.01,))
    np.testing.assert_allclose(r.prices.dlmp, 30.0, atol=1e-6)
    np.testing.assert_allclose(r.prices.congestion, 0.0, atol=1e-6)
    np.testing.assert_allclose(r.prices.voltage, 0.0, atol=1e-6)
    # welfare: 0.01 MW · (200 − 30) EUR/MWh · 0.25 h
    assert r.welfare_eur == pytest.approx(0.01 * 170 * 0.25)
    assert r.settlement.merchandising_surplus_eur == pytest.approx(0.0, abs=1e-9)


def test_congested_line_splits_prices_and_rent_is_flow_times_spread() -> None:
    # line rating 0.1 MVA: i = 0.1 / (0.4 · √3) kA
    _, view = two_bus(max_i_ka=0.1 / (0.4 * math.sqrt(3)), generator_mva=0.5)
    bids = [buy("b", "h", 1, 200.0, 0.2), sell("s", "g", 1, 150.0, 0.5)]
    r = clear(
        view,
        empty_profiles(view),
        bids,
        participants(("h", 1), ("g", 1)),
        WIDE,
        WholesalePrices.flat(1, 50.0, 10.0),
        LP_ONLY,
    )
    # 0.1 MW arrives over the full line at 50, the other 0.1 MW comes from the local seller
    assert r.accepted_mw["b"] == pytest.approx((0.2,))
    assert r.accepted_mw["s"] == pytest.approx((0.1,))
    assert r.lp_branch_p_mw[0, 0] == pytest.approx(0.1)
    s, a = r.prices.dlmp[0]
    assert s == pytest.approx(50.0) and a == pytest.approx(150.0)
    assert r.prices.energy[0, 1] == pytest.approx(50.0)
    assert r.prices.congestion[0, 1] == pytest.approx(100.0)
    assert r.prices.voltage[0, 1] == pytest.approx(0.0, abs=1e-6)
    rent = 0.1 * (a - s) * 0.25  # flow × price difference × period
    assert r.settlement.congestion_rent_eur == pytest.approx(rent)
    assert r.settlement.merchandising_surplus_eur == pytest.approx(rent)
    assert any("thermal limit" in b for b in r.binding)


def test_voltage_limit_binds_and_the_voltage_component_appears() -> None:
    # r = 0.2 Ω = 1.25 pu; exporting p MW raises v₁ = 1 + 2·1.25·p (LinDistFlow, |V|²)
    _, view = two_bus()
    params = GridParameters(v_min_pu=0.9, v_max_pu=1.05)
    bids = [sell("s", "pv", 1, 0.0, 0.1)]
    r = clear(
        view,
        empty_profiles(view),
        bids,
        participants(("pv", 1)),
        params,
        WholesalePrices.flat(1, 100.0, 20.0),
        LP_ONLY,
    )
    p_max = (1.05**2 - 1.0) / (2 * 1.25)
    assert r.accepted_mw["s"] == pytest.approx((p_max,))
    assert r.lp_vm_pu[0, 1] == pytest.approx(1.05)
    # the slack exports at 20; the curtailed seller is marginal at 0 at its bus
    assert r.prices.dlmp[0, 0] == pytest.approx(20.0)
    assert r.prices.dlmp[0, 1] == pytest.approx(0.0, abs=1e-6)
    assert r.prices.voltage[0, 1] == pytest.approx(-20.0)
    assert r.prices.congestion[0, 1] == pytest.approx(0.0, abs=1e-6)
    assert any("upper voltage limit" in b for b in r.binding)
