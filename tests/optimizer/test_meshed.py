"""Meshed feeders clear on the AC expansion, never as a tree."""

from collections.abc import Sequence
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
from feederdao.workflows.clearing import Market, open_market
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


def _comm_market(periods: int) -> tuple[Market, list[Bid]]:
    market = open_market("1-MV-comm--2-no_sw", periods=periods, start=datetime(2016, 6, 21, 10))
    other = generate_bids(market.network.view, market.registry, market.profiles, seed=1)
    book = [
        Bid(b.bid_id, b.participant_id, b.bus, b.period, b.side, o.blocks, b.device_id)
        for b, o in zip(market.bids, other, strict=False)
    ]
    return market, book


def _comm_engine(market: Market, bids: Sequence[Bid]) -> ClearingEngine:
    return ClearingEngine(
        market.network.view,
        market.profiles,
        bids,
        tuple(market.registry.values()),
        GridParameters(),
        WholesalePrices.day_shape(market.profiles.n_periods, 40),
        ClearingOptions(storage="profile"),
    )


def test_a_meshed_re_clear_that_did_not_converge_starts_where_its_best_program_was_linearised() -> (
    None
):
    """1-MV-comm--2-no_sw's loop stops at "no-improvement" after its first program, linearised
    at the profiles, gave the best dispatch. A re-clear of a new book starts where that program
    was linearised, not at the result's AC point (from there its loss error was three times a
    fresh clearing's on 96 periods, and it went round a cycle to the iteration limit): it ends
    where a fresh clearing of the new book ends."""
    market, book = _comm_market(8)
    ac = AcEvaluator(market.network.loaded.net, market.network.view)
    engine = _comm_engine(market, market.bids)
    first = engine.run(ac)
    assert first.ac_check.stopped == "no-improvement"
    again = engine.rebid(book, ac)
    fresh = _comm_engine(market, book).run(ac)
    assert again.ac_check.iterations == fresh.ac_check.iterations
    assert again.ac_check.loss_error_mw == pytest.approx(fresh.ac_check.loss_error_mw, rel=1e-6)
    assert again.welfare_eur == pytest.approx(fresh.welfare_eur, rel=1e-9)


def test_a_loop_going_round_a_cycle_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """An AC loop back at the merit of an earlier step that was not its best goes round a
    cycle: it stops there ("no-improvement") with its best dispatch, instead of alternating
    to the iteration limit."""
    from feederdao.optimizer import clearing as engine_module

    merits = iter([1.0, 2.0, 1.5, 2.0, 1.5, 2.0, 1.5, 2.0])
    monkeypatch.setattr(engine_module, "_merit", lambda *args: next(merits))
    market, _ = _comm_market(4)
    result = _comm_engine(market, market.bids).run(
        AcEvaluator(market.network.loaded.net, market.network.view)
    )
    assert (result.ac_check.iterations, result.ac_check.stopped) == (4, "no-improvement")


def test_the_expansion_is_matpowers_dsbus_dv_and_dsbr_dv_in_every_period() -> None:
    """The periods' derivatives, computed at once on the admittance entries, are MATPOWER's
    dSbus_dV and dSbr_dV of each period's voltages, as sparse products (the form they had)."""
    import scipy.sparse as sp

    net = pn.create_cigre_network_mv(with_der="pv_wind")
    net.switch["closed"] = True
    view = build_view(net, "cigre_mv_rings")
    ac = AcEvaluator(net, view)
    rng = np.random.default_rng(4)
    p = rng.normal(0.2, 0.5, (3, len(view.buses)))
    q = rng.normal(0.0, 0.2, (3, len(view.buses)))
    lin = ac.linearise(p, q)
    assert ac._m_same.any() and (~ac._m_same).any()  # flows read at from ends and at to ends
    s = np.repeat(ac._s_base[:, None], 3, axis=1).astype(complex)
    np.add.at(s, ac._bus_row, -(p.T + 1j * q.T) / ac._base_mva)
    v_all, converged = ac._solve(s)
    assert converged.all()
    y, base = ac._ybus, ac._base_mva
    for t in range(3):
        v = v_all[:, t]
        dv, dvn, ibus = sp.diags(v), sp.diags(v / np.abs(v)), y @ v
        ds_dvm = dv @ np.conj(y @ dvn) + sp.diags(np.conj(ibus)) @ dvn
        ds_dva = 1j * dv @ np.conj(sp.diags(ibus) - y @ dv)
        want = (ds_dva.real, ds_dvm.real, ds_dva.imag, ds_dvm.imag)
        for got, ref in zip(lin.jacobian[t], want, strict=True):
            assert abs(got - ref * base).max() < 1e-9 * base
        np.testing.assert_allclose(lin.p0_mw[t], (v * np.conj(ibus)).real * base, atol=1e-9)
        # the flow entering each view branch at its from bus: a member's from or to end
        n_m, n = ac._m_rows.size, y.shape[0]
        per_branch = [
            sp.csr_matrix((keep.astype(float), (ac._m_owner, np.arange(n_m))))
            for keep in (ac._m_same, ~ac._m_same)
        ]
        d_va = d_vm = s_in = 0
        for pick, y_end, ends in zip(
            per_branch, (ac._yf, ac._yt), (ac._m_from_bus, ac._m_to_bus), strict=True
        ):
            y_m = y_end[ac._m_rows]
            i_br = y_m @ v
            c = sp.csr_matrix((np.ones(n_m), (np.arange(n_m), ends)), shape=(n_m, n))
            va = 1j * (sp.diags(np.conj(i_br)) @ c @ dv - sp.diags(v[ends]) @ np.conj(y_m @ dv))
            vm = sp.diags(v[ends]) @ np.conj(y_m @ dvn) + sp.diags(np.conj(i_br)) @ c @ dvn
            d_va, d_vm = d_va + pick @ va, d_vm + pick @ vm
            s_in = s_in + pick @ (v[ends] * np.conj(i_br))
        np.testing.assert_allclose(lin.flow_p0_mw[t], s_in.real * base, atol=1e-9)
        np.testing.assert_allclose(lin.flow_q0_mvar[t], s_in.imag * base, atol=1e-9)
        want = (d_va.real, d_vm.real, d_va.imag, d_vm.imag)
        for got, ref in zip(lin.flow_jacobian[t], want, strict=True):
            assert abs(got - ref * base).max() < 1e-9 * base


def test_a_meshed_re_clear_starts_at_the_best_programs_point_when_it_was_not_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop's second program is its best here (the merits are set): the re-clear starts
    where that program was linearised, with the capability rows its solve wrote."""
    from feederdao.optimizer import clearing as engine_module

    merits = iter([1.0, 0.5, 0.9, 0.9])
    monkeypatch.setattr(engine_module, "_merit", lambda *args: next(merits))
    built: list[engine_module.OperatingPoint] = []
    model = ClearingEngine._model

    def recording(self: ClearingEngine, point: engine_module.OperatingPoint, *a, **k):  # type: ignore[no-untyped-def]
        built.append(point)
        return model(self, point, *a, **k)

    monkeypatch.setattr(ClearingEngine, "_model", recording)
    market, _ = _comm_market(4)
    engine = _comm_engine(market, market.bids)
    result = engine.run(AcEvaluator(market.network.loaded.net, market.network.view))
    assert (result.ac_check.iterations, result.ac_check.stopped) == (4, "no-improvement")
    assert len(built) == 4 and built[1].consumption is not None
    assert engine.point.consumption is not None
    for got, want in zip(engine.point.consumption, built[1].consumption, strict=True):
        np.testing.assert_array_equal(got, want)
    first = built[0].consumption
    assert first is not None and not np.array_equal(first[0], built[1].consumption[0])
