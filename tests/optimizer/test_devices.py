"""Storage and flexible loads on a two-bus feeder with hand-checkable prices."""

from typing import Any

import numpy as np
import pandapower as pp
import pytest

from feederdao.domain import GridParameters, Participant, ParticipantDevice
from feederdao.domain.clearing import ClearingOptions, WholesalePrices
from feederdao.domain.network import DeviceKind, NetworkView
from feederdao.errors import FeederDaoError
from feederdao.grid_model import build_view
from feederdao.optimizer.clearing import clear
from tests.optimizer.feeders import empty_profiles

LP = ClearingOptions(ac_check=False)
WIDE = GridParameters(v_min_pu=0.8, v_max_pu=1.2)


def _feeder_with_storage() -> tuple[Any, NetworkView]:
    net = pp.create_empty_network(sn_mva=1.0)
    s, a = pp.create_bus(net, vn_kv=0.4, name="S"), pp.create_bus(net, vn_kv=0.4, name="A")
    pp.create_ext_grid(net, s)
    pp.create_line_from_parameters(
        net, s, a, length_km=0.1, r_ohm_per_km=0.2, x_ohm_per_km=0.08, c_nf_per_km=0, max_i_ka=1.0
    )
    pp.create_storage(net, a, p_mw=0.0, max_e_mwh=0.04, sn_mva=0.02, name="battery")
    return net, build_view(net, "storage")


def _battery() -> ParticipantDevice:
    """20 kW, 40 kWh, half full, 10–90 %, 90 % efficient each way."""
    return ParticipantDevice(
        "storage:0",
        DeviceKind.STORAGE,
        -0.02,
        0.02,
        s_mva=0.02,
        e_mwh=0.04,
        soc_init_percent=50.0,
        soc_min_percent=10.0,
        soc_max_percent=90.0,
        eta_charge=0.9,
        eta_discharge=0.9,
    )


def test_storage_buys_cheap_and_sells_dear_within_its_limits() -> None:
    _, view = _feeder_with_storage()
    battery = _battery()
    prices = np.array([40.0, 40.0, 200.0, 200.0])
    result = clear(
        view,
        empty_profiles(view, 4),
        [],
        [Participant("owner", 1, (battery,))],
        WIDE,
        WholesalePrices(prices, prices),
        LP,
    )
    p = np.array([s.p_mw for s in result.setpoints if s.device_id == "storage:0"])
    # charge at full power while cheap (0.02 MW · 0.25 h · 0.9 = 4.5 kWh stored per period),
    # then discharge while dear, but only back to the initial state of charge (final ≥ initial)
    assert p[:2] == pytest.approx([0.02, 0.02])
    assert (p[2:] < 0).all()
    soc = 0.02 + 2 * 0.02 * 0.25 * 0.9 + p[2:].sum() * 0.25 / 0.9
    assert soc == pytest.approx(0.02, abs=1e-9)
    row = next(r for r in result.settlement.rows if r.participant_id == "owner")
    assert row.energy_payment_eur < 0  # arbitrage earns money


@pytest.mark.parametrize(
    ("end", "final_mwh"),
    [
        ("at-least-start", 0.02),  # sells only what it bought beyond its start
        ("equal-start", 0.02),
        ("free", 0.004),  # sells down to its minimum (10 % of 0.04 MWh)
    ],
)
def test_the_storage_end_rule_decides_what_the_window_may_sell(end: str, final_mwh: float) -> None:
    _, view = _feeder_with_storage()
    battery = _battery()
    # dear all along: the battery only ever sells
    prices = np.full(8, 200.0)
    result = clear(
        view,
        empty_profiles(view, 8),
        [],
        [Participant("owner", 1, (battery,))],
        WIDE,
        WholesalePrices(prices, prices),
        ClearingOptions(ac_check=False, storage_end=end),  # type: ignore[arg-type]
    )
    soc = result.storage_soc_mwh["storage:0"]
    assert soc[-1] == pytest.approx(final_mwh, abs=1e-9)
    assert min(soc) >= 0.004 - 1e-9


def test_a_storage_end_rule_not_known_is_refused() -> None:
    with pytest.raises(FeederDaoError, match="storage_end must be one of at-least-start, "):
        ClearingOptions(storage_end="empty")  # type: ignore[arg-type]


def test_flexible_load_meets_its_energy_need_in_the_cheapest_periods() -> None:
    net = pp.create_empty_network(sn_mva=1.0)
    s, a = pp.create_bus(net, vn_kv=0.4), pp.create_bus(net, vn_kv=0.4)
    pp.create_ext_grid(net, s)
    pp.create_line_from_parameters(
        net, s, a, length_km=0.1, r_ohm_per_km=0.2, x_ohm_per_km=0.08, c_nf_per_km=0, max_i_ka=1.0
    )
    view = build_view(net)
    ev = ParticipantDevice("ev:1", DeviceKind.FLEX_LOAD, 0.0, 0.011, e_mwh=0.011 * 96 * 0.25 / 4)
    prices = np.array([90.0, 30.0, 60.0, 120.0])
    result = clear(
        view,
        empty_profiles(view, 4),
        [],
        [Participant("driver", a, (ev,))],
        WIDE,
        WholesalePrices(prices, prices * 0.5),
        LP,
    )
    p = np.array([s.p_mw for s in result.setpoints if s.device_id == "ev:1"])
    # a day's need is 0.066 MWh; over a 1-hour window that is one period at full power,
    # taken in the cheapest one
    assert p == pytest.approx([0.0, 0.011, 0.0, 0.0])
