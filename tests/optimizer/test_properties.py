"""Market invariants on random books (hypothesis): complementary slackness against the bus
prices, money balances, welfare is never negative when doing nothing is feasible."""

import math

import pandapower as pp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feederdao.domain import Bid, GridParameters, Participant, PriceBlock, Side
from feederdao.domain.clearing import ClearingOptions, WholesalePrices
from feederdao.grid_model import build_view
from feederdao.optimizer.clearing import clear
from tests.optimizer.feeders import empty_profiles

TOL = 1e-4


def feeder(rating_mva: float) -> object:
    net = pp.create_empty_network(sn_mva=1.0)
    b = [pp.create_bus(net, vn_kv=0.4, name=f"B{i}") for i in range(3)]
    pp.create_ext_grid(net, b[0])
    i_ka = rating_mva / (0.4 * math.sqrt(3))
    for f, t in ((0, 1), (1, 2)):
        pp.create_line_from_parameters(
            net,
            b[f],
            b[t],
            length_km=0.3,
            r_ohm_per_km=0.2,
            x_ohm_per_km=0.08,
            c_nf_per_km=0.0,
            max_i_ka=i_ka,
        )
    # an idle local plant: bids at the buses may exceed what the lines carry
    pp.create_sgen(net, b[2], p_mw=0.0, sn_mva=0.5, type="CHP")
    return net


block = st.tuples(st.floats(0.0, 300.0), st.floats(0.001, 0.05))
bid = st.tuples(
    st.sampled_from([1, 2]),
    st.sampled_from(["buy", "sell"]),
    st.integers(0, 1),
    st.lists(block, min_size=1, max_size=3),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    books=st.lists(bid, min_size=1, max_size=8),
    rating=st.floats(0.01, 0.2),
    imp=st.floats(20.0, 200.0),
    spread=st.floats(0.0, 60.0),
    fee=st.floats(0.0, 20.0),
)
def test_market_invariants(
    books: list[tuple[int, str, int, list[tuple[float, float]]]],
    rating: float,
    imp: float,
    spread: float,
    fee: float,
) -> None:
    view = build_view(feeder(rating))
    bids = [
        Bid(
            f"b{i}",
            f"p{bus}",
            bus,
            period,
            Side(side),
            tuple(PriceBlock(round(p, 2), round(q, 4)) for p, q in blocks),
        )
        for i, (bus, side, period, blocks) in enumerate(books)
    ]
    params = GridParameters(v_min_pu=0.9, v_max_pu=1.1, network_fee_eur_per_mwh=fee)
    result = clear(
        view,
        empty_profiles(view, 2),
        bids,
        [Participant("p1", 1), Participant("p2", 2)],
        params,
        WholesalePrices.flat(2, imp, imp - spread),
        ClearingOptions(ac_check=False),
    )
    lam = result.prices.dlmp
    for b in bids:
        price_at_bus = lam[b.period, view.bus_position(b.bus)]
        for k, blk in enumerate(b.blocks):
            x = result.accepted_mw[b.bid_id][k]
            if b.side == Side.BUY:
                if x > 1e-7:
                    assert blk.price_eur_per_mwh >= price_at_bus + fee - TOL
                if x < blk.quantity_mw - 1e-7:
                    assert blk.price_eur_per_mwh <= price_at_bus + fee + TOL
            else:
                if x > 1e-7:
                    assert blk.price_eur_per_mwh <= price_at_bus + TOL
                if x < blk.quantity_mw - 1e-7:
                    assert blk.price_eur_per_mwh >= price_at_bus - TOL
    s = result.settlement
    # every participant pays its accepted energy at its own bus price, worked out here anew
    expected: dict[str, float] = {}
    for b in bids:
        sign = 1.0 if b.side == Side.BUY else -1.0
        mwh = sum(result.accepted_mw[b.bid_id]) * 0.25
        price_at_bus = lam[b.period, view.bus_position(b.bus)]
        expected[b.participant_id] = expected.get(b.participant_id, 0.0) + sign * mwh * price_at_bus
    for row in s.rows:
        assert abs(row.energy_payment_eur - expected[row.participant_id]) < 1e-6
    # what participants pay, less the wholesale bill, is the DSO's non-negative surplus
    assert abs(sum(expected.values()) - s.wholesale_cost_eur - s.merchandising_surplus_eur) < 1e-6
    assert s.budget_balanced, s.merchandising_surplus_eur
    bought = sum(r.bought_mwh for r in s.rows)
    assert abs(s.fees_eur - fee * bought) < 1e-9
    assert result.welfare_eur >= -1e-6
