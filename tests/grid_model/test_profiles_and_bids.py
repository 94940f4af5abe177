import itertools
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from feederdao.domain import Bid, GridParameters, Participant, PriceBlock, Side
from feederdao.domain.bidrules import BidRules
from feederdao.errors import BidValidationError, ParticipantError, ProfileError
from feederdao.grid_model import (
    ParticipantRegistry,
    build_profiles,
    build_view,
    generate_bids,
    read_bids,
    write_bids,
)
from feederdao.grid_model.profiles import PROFILE_CLOCK
from tests.conftest import SUMMER_DAY, loaded
from tests.grid_model.feeders import three_bus


def test_simbench_profiles_window(lv_rural_day) -> None:  # type: ignore[no-untyped-def]
    opened, _, profiles = lv_rural_day
    assert profiles.source == "simbench"
    assert profiles.p_mw.shape == (96, len(opened.view.devices))
    pv = [profiles.column(d.device_id) for d in opened.view.devices if d.kind == "pv"]
    midnight, noon = profiles.p_mw[0, pv].sum(), profiles.p_mw[52, pv].sum()
    assert midnight == 0.0 and noon > 0.05  # midsummer noon on a PV-heavy feeder
    assert profiles.timestamps()[4] == datetime(2016, 6, 21, 1, 0, tzinfo=PROFILE_CLOCK)
    with pytest.raises(ValueError):
        profiles.p_mw[0, 0] = 1.0  # read-only
    for k, device_id in enumerate(profiles.device_ids):
        assert profiles.column(device_id) == profiles.find(device_id) == k
    assert profiles.find("load:no-such") is None
    with pytest.raises(ProfileError, match="'load:no-such' has no profile"):
        profiles.column("load:no-such")


def test_standard_shapes_for_networks_without_profiles() -> None:
    net = three_bus()
    view = build_view(net)
    profiles = build_profiles(loaded(net), view, SUMMER_DAY, 96)
    assert profiles.source == "standard-shapes"
    pv = profiles.p_mw[:, profiles.column("sgen:0")]
    assert pv[0] == 0.0 and pv.max() == pytest.approx(0.05, rel=0.01)  # peaks near nameplate
    load = profiles.p_mw[:, profiles.column("load:0")]
    assert load.argmax() // 4 in (18, 19, 20)  # evening peak


def test_profile_start_must_be_on_a_step() -> None:
    net = three_bus()
    with pytest.raises(ProfileError, match="15-minute"):
        build_profiles(loaded(net), build_view(net), datetime(2016, 6, 21, 0, 7), 4)


def test_bid_generator_is_seeded_and_realistic(lv_rural_day) -> None:  # type: ignore[no-untyped-def]
    opened, registry, profiles = lv_rural_day
    a = generate_bids(opened.view, registry, profiles, seed=7)
    assert a == generate_bids(opened.view, registry, profiles, seed=7)
    assert a != generate_bids(opened.view, registry, profiles, seed=8)
    BidRules.of(opened.view, GridParameters(), 96).check(a, registry)
    sells = [b for b in a if b.side == Side.SELL]
    buys = [b for b in a if b.side == Side.BUY]
    assert sells and buys
    # offers are PV surplus: only when the sun shines, tied to the participant's PV device
    assert all(16 <= b.period <= 84 for b in sells)
    assert all(b.device_id and b.device_id.startswith("sgen:") for b in sells)
    # willingness to pay is above every asking price on average
    wtp = np.mean([bl.price_eur_per_mwh for b in buys for bl in b.blocks])
    ask = np.mean([bl.price_eur_per_mwh for b in sells for bl in b.blocks])
    assert wtp > ask
    # a participant's buy at t covers exactly its net deficit
    part = registry[buys[0].participant_id]
    t = buys[0].period
    cols = [profiles.column(d.device_id) for d in part.devices]
    kinds = [d.kind for d in part.devices]
    net_load = sum(
        profiles.p_mw[t, c] * (1 if k == "load" else -1 if k == "pv" else 0)
        for c, k in zip(cols, kinds, strict=True)
    )
    assert buys[0].total_mw == pytest.approx(net_load, abs=1e-5)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_bid_files_round_trip(tmp_path: Path, suffix: str, lv_rural_day) -> None:  # type: ignore[no-untyped-def]
    opened, registry, profiles = lv_rural_day
    bids = generate_bids(opened.view, registry, profiles, seed=1)[:50]
    path = tmp_path / f"bids{suffix}"
    write_bids(bids, path)
    assert read_bids(path) == bids


def _setup() -> tuple[object, ParticipantRegistry]:
    view = build_view(three_bus())
    return view, ParticipantRegistry.from_network(view)


def test_bid_at_unknown_bus_is_named() -> None:
    view, registry = _setup()
    bid = Bid("b1", "bus1", 99, 0, Side.BUY, (PriceBlock(100, 0.01),))
    with pytest.raises(BidValidationError, match="bid 'b1' bus: bus 99 does not exist"):
        BidRules.of(view, GridParameters(), 4).check([bid], registry)  # type: ignore[arg-type]


def test_negative_quantity_and_nan_price() -> None:
    with pytest.raises(
        BidValidationError, match=r"bid 'b2' blocks\[0\].quantity_mw: quantity -0.01 MW must be pos"
    ):
        Bid("b2", "bus1", 1, 0, Side.BUY, (PriceBlock(100, -0.01),))
    with pytest.raises(
        BidValidationError, match=r"bid 'b3' blocks\[1\].price_eur_per_mwh: price nan"
    ):
        Bid("b3", "bus1", 1, 0, Side.BUY, (PriceBlock(1, 0.01), PriceBlock(math.nan, 0.01)))


def test_bad_rows_in_a_csv_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bids.csv"
    path.write_text(
        "bid_id,participant_id,bus,period,side,price_eur_per_mwh,quantity_mw\n"
        "a,bus1,1,0,buy,100,0.01\n"
        "b,bus1,1,0,buy,NaN,0.01\n"
    )
    with pytest.raises(BidValidationError, match="line 3.*price_eur_per_mwh 'NaN'"):
        read_bids(path)
    path.write_text("bid_id,participant_id,bus\nx,y,1\n")
    with pytest.raises(BidValidationError, match="missing column"):
        read_bids(path)


def test_disconnected_participant_is_refused() -> None:
    import pandapower as pp

    net = three_bus()
    pp.create_switch(net, bus=1, element=1, et="l", closed=False)
    view = build_view(net)
    with pytest.raises(ParticipantError, match="bus 2, which is disconnected"):
        ParticipantRegistry(view, [Participant("p", 2)])
    registry = ParticipantRegistry(view, [Participant("p", 1)])
    bid = Bid("b", "p", 2, 0, Side.BUY, (PriceBlock(100, 0.01),))
    with pytest.raises(BidValidationError, match="bus 2 is disconnected"):
        BidRules.of(view, GridParameters(), 4).check([bid], registry)


def test_all_problems_reported_together() -> None:
    view, registry = _setup()
    bids = [
        Bid("x", "ghost", 1, 0, Side.BUY, (PriceBlock(100, 0.01),)),
        Bid("y", "bus1", 2, 0, Side.BUY, (PriceBlock(100, 0.01),)),
        Bid("z", "bus1", 1, 9, Side.SELL, (PriceBlock(10, 0.01),), device_id="sgen:0"),
    ]
    with pytest.raises(BidValidationError) as err:
        BidRules.of(view, GridParameters(), 4).check(bids, registry)  # type: ignore[arg-type]
    msg = str(err.value)
    assert "4 invalid bid(s)" in msg
    assert "'ghost' is not registered" in msg
    assert "participant 'bus1' is at bus 1, not bus 2" in msg
    assert "period 9 is outside the window's 4 period(s)" in msg
    assert "device 'sgen:0' does not belong to 'bus1'" in msg


def test_participant_claiming_a_device_elsewhere() -> None:
    view, registry = _setup()
    dev = registry["bus2"].devices[0]
    with pytest.raises(ParticipantError, match="claims device 'load:1', which is at bus 2"):
        ParticipantRegistry(view, [Participant("p", 1, (dev,))])  # type: ignore[arg-type]


def test_simbench_window_equals_simbench_absolute_values(lv_rural) -> None:  # type: ignore[no-untyped-def]
    import simbench

    profiles = build_profiles(lv_rural.loaded, lv_rural.view, datetime(2016, 3, 1, 6), 12)
    full = simbench.get_absolute_values(lv_rural.loaded.net, profiles_instead_of_study_cases=True)
    first = (datetime(2016, 3, 1, 6) - datetime(2016, 1, 1)).days * 96 + 24
    for k, dev in enumerate(lv_rural.view.devices):
        table = {"load": "load", "storage": "storage"}.get(str(dev.kind), "sgen")
        expected = full[(table, "p_mw")][dev.element].to_numpy()[first : first + 12]
        np.testing.assert_allclose(profiles.p_mw[:, k], expected, rtol=1e-12)
        if table == "load":
            expected_q = full[("load", "q_mvar")][dev.element].to_numpy()[first : first + 12]
            np.testing.assert_allclose(profiles.q_mvar[:, k], expected_q, rtol=1e-12)


def test_profiles_are_read_on_their_own_clock(lv_rural) -> None:  # type: ignore[no-untyped-def]
    """SimBench labels its rows in German local time (CET/CEST): a window starts at the row
    labelled with its start, whether given as local wall-clock time or as a UTC instant."""
    from datetime import UTC

    labels = lv_rural.loaded.net.profiles["load"]["time"].astype(str).tolist()
    load = next(d for d in lv_rural.view.devices if d.kind == "load")
    row = labels.index("21.06.2016 12:00")
    table = lv_rural.loaded.net.load
    name = table.loc[load.element, "profile"]
    expected = (
        lv_rural.loaded.net.profiles["load"][name + "_pload"].to_numpy()[row]
        * table.loc[load.element, "p_mw"]
    )
    local = build_profiles(lv_rural.loaded, lv_rural.view, datetime(2016, 6, 21, 12), 1)
    instant = build_profiles(
        lv_rural.loaded, lv_rural.view, datetime(2016, 6, 21, 10, tzinfo=UTC), 1
    )
    k = local.column(load.device_id)
    assert local.p_mw[0, k] == pytest.approx(expected)
    assert instant.p_mw[0, k] == pytest.approx(expected)
    assert local.start == instant.start  # the same instant: 12:00 CEST is 10:00 UTC
    # the spring gap does not exist on that clock; another year is mapped onto 2016 and said so
    with pytest.raises(ProfileError, match="does not exist on the profiles' clock"):
        build_profiles(lv_rural.loaded, lv_rural.view, datetime(2016, 3, 27, 2, 30), 1)
    later = build_profiles(lv_rural.loaded, lv_rural.view, datetime(2019, 6, 21, 12), 1)
    assert later.p_mw[0, k] == pytest.approx(expected)
    assert "read at 2016-06-21 12:00" in later.notes[0]
    # a window across the autumn change keeps 15 minutes between its periods
    night = build_profiles(lv_rural.loaded, lv_rural.view, datetime(2016, 10, 30, 1, 0), 12)
    stamps = [s.astimezone(UTC) for s in night.timestamps()]
    assert all((b - a).total_seconds() == 900 for a, b in itertools.pairwise(stamps))
    stamps = night.timestamps()
    assert stamps[4].utcoffset() != stamps[-1].utcoffset()
