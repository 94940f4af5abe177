"""The Python API an engineer reaches for first: ``import feederdao``."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import datetime

import numpy as np
import pandapower as pp
import pandas as pd
import pytest

import feederdao as fd
from feederdao.errors import BidValidationError, ParameterError
from tests.grid_model.feeders import three_bus

PARTS = ("energy", "loss", "congestion", "voltage")


@pytest.fixture(scope="module")
def case33() -> fd.Clearing:
    return fd.clear("case33bw", periods=4, start="2016-06-21T18:00", cache=False)


def test_import_feederdao_is_light_and_documented() -> None:
    code = (
        "import sys, feederdao; print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    for name in fd.__all__:
        obj = getattr(fd, name)
        assert (obj.__doc__ or "").strip(), name
    assert fd.clear.__annotations__  # typed


def test_prices_are_indexed_by_time_and_bus_with_units_and_parts(case33: fd.Clearing) -> None:
    prices = case33.prices
    assert prices.index.names == ["time", "bus"]
    times = prices.index.get_level_values("time")
    assert isinstance(times, pd.DatetimeIndex) and str(times.tz) == "Europe/Berlin"
    assert times[0].isoformat() == "2016-06-21T18:00:00+02:00"
    assert list(pd.unique(times)) == list(pd.date_range(times[0], periods=4, freq="15min"))
    assert list(prices.columns) == [
        "bus_id",
        "dlmp_eur_per_mwh",
        "energy_eur_per_mwh",
        "loss_eur_per_mwh",
        "congestion_eur_per_mwh",
        "voltage_eur_per_mwh",
        "reactive_eur_per_mvarh",
    ]
    assert len(prices) == 4 * 33
    parts = prices[[f"{p}_eur_per_mwh" for p in PARTS]].sum(axis=1)
    np.testing.assert_allclose(parts, prices["dlmp_eur_per_mwh"], atol=1e-9)
    far = prices.xs("bus 17", level="bus")
    assert (far["loss_eur_per_mwh"] > 0).all()  # the end of the feeder pays for losses
    np.testing.assert_allclose(
        prices["dlmp_eur_per_mwh"].to_numpy().reshape(4, 33), case33.result.prices.dlmp
    )


def test_voltages_loadings_dispatch_bids_settlement_periods(case33: fd.Clearing) -> None:
    v = case33.voltages
    assert v.index.names == ["time", "bus"] and {"vm_pu", "va_degree", "vm_lp_pu"} <= set(v)
    assert case33.result.ac_vm_pu is not None
    np.testing.assert_allclose(v["vm_pu"].to_numpy().reshape(4, 33), case33.result.ac_vm_pu)
    lo = case33.loadings
    assert lo.index.names == ["time", "branch"]
    assert {"branch_id", "loading_percent", "p_from_mw", "q_from_mvar", "pl_mw"} <= set(lo)
    assert lo["branch_id"].iloc[0] == "line:0"
    assert lo["loading_percent"].isna().all()  # case33bw gives no ratings: NaN, not 0 %
    d = case33.dispatch
    assert d.index.names == ["time", "device"] and {"device_id", "p_mw", "q_mvar"} <= set(d)
    assert len(d) == 4 * 32 and d["dispatched"].any()
    b = case33.bids
    assert b.index.names == ["time", "bid_id", "block"]
    assert {"price_eur_per_mwh", "quantity_mw", "accepted_mw", "dlmp_eur_per_mwh"} <= set(b)
    assert ((b["accepted_mw"] >= -1e-9) & (b["accepted_mw"] <= b["quantity_mw"] + 1e-9)).all()
    s = case33.settlement
    assert s.index.name == "participant" and "total_eur" in s
    bought = b[b["side"] == "buy"].groupby("participant")["accepted_mw"].sum() * 0.25
    bought = bought[bought > 0]  # the settlement lists who traded
    np.testing.assert_allclose(s.loc[bought.index, "bought_mwh"], bought, atol=1e-9)
    per = case33.periods
    assert per.index.name == "time" and len(per) == 4
    slack_vm = v.xs("bus 0", level="bus")["vm_pu"].to_numpy()
    # the band of the feeder's buses leaves out the substation's fixed set-point
    assert (per["vm_max_pu"].to_numpy() < slack_vm).all()


def test_xarray_dataset_and_short_reprs(case33: fd.Clearing) -> None:
    ds = case33.to_xarray()
    assert ds["dlmp_eur_per_mwh"].dims == ("time", "bus")
    assert ds["loading_percent"].dims == ("time", "branch")
    assert ds.sizes == {"time": 4, "bus": 33, "branch": 32}
    assert list(ds["bus"].values[:2]) == ["bus 0", "bus 1"]
    assert str(ds["time_local"].values[0]) == "2016-06-21T18:00:00+02:00"
    assert case33.result.ac_vm_pu is not None
    np.testing.assert_allclose(ds["vm_pu"].values, case33.result.ac_vm_pu)
    for obj in (case33, case33.result, case33.market):
        assert len(repr(obj)) < 300, repr(obj)
    assert repr(case33).startswith("<Clearing case33bw: 4 periods from 2016-06-21T18:00:00+02:00")


def test_a_pandapower_net_and_a_bid_dataframe_go_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    net = three_bus()
    before = json.loads(pp.to_json(net))
    book = pd.DataFrame(
        {
            "bid_id": ["h2", "h2", "pv"],
            "participant_id": ["bus2", "bus2", "bus2"],
            "bus": [2, 2, 2],
            "period": [0, 0, 1],
            "side": ["buy", "buy", "sell"],
            "price_eur_per_mwh": [300.0, 120.0, 5.0],
            "quantity_mw": [0.01, 0.01, 0.02],
            "device_id": [None, None, "sgen:0"],
        }
    )
    res = fd.clear(net, book, periods=2, start="2016-06-21T12:00")
    assert json.loads(pp.to_json(net)) == before  # the caller's net is untouched
    assert res.result.network == "network"
    accepted = res.bids["accepted_mw"]
    assert len(accepted) == 3
    assert accepted.xs("h2", level="bid_id").iloc[0] == pytest.approx(0.01, abs=1e-9)
    # a bad book names the row it came from
    bad = book.assign(quantity_mw=[0.01, -1.0, 0.02])
    with pytest.raises(BidValidationError, match="bids DataFrame row 0 .bid 'h2'."):
        fd.clear(net, bad, periods=2)
    with pytest.raises(BidValidationError, match="missing column.s. quantity_mw"):
        fd.clear(net, book.drop(columns="quantity_mw"), periods=2)


def test_write_back_into_pandapower_res_tables_matches_runpp() -> None:
    """``to_pandapower`` fills a net's res_* tables with one period; a pandapower power flow
    at that period's dispatch agrees with them."""
    net = three_bus()
    res = fd.clear(net, periods=2, start="2016-06-21T12:00")
    target = copy.deepcopy(net)
    res.to_pandapower(target, period=1)
    assert res.result.ac_vm_pu is not None
    assert target.res_bus.loc[2, "vm_pu"] == pytest.approx(res.result.ac_vm_pu[1, 2])
    assert "dlmp_eur_per_mwh" in target.res_bus
    ref = copy.deepcopy(net)
    step = res.dispatch.xs(res.periods.index[1], level="time")
    for row in step.itertuples():
        table, idx = str(row.device_id).split(":")
        getattr(ref, table).at[int(idx), "p_mw"] = row.p_mw
        getattr(ref, table).at[int(idx), "q_mvar"] = row.q_mvar
    pp.runpp(ref)
    np.testing.assert_allclose(target.res_bus.vm_pu, ref.res_bus.vm_pu, atol=1e-9)
    np.testing.assert_allclose(target.res_line.p_from_mw, ref.res_line.p_from_mw, atol=1e-9)
    np.testing.assert_allclose(
        target.res_line.loading_percent, ref.res_line.loading_percent, atol=1e-6
    )
    assert target.res_ext_grid.p_mw.iloc[0] == pytest.approx(ref.res_ext_grid.p_mw.iloc[0])
    with pytest.raises(ParameterError, match="period 5 is outside the window"):
        res.res_tables(5)


def test_periods_are_bounded_and_starts_checked() -> None:
    with pytest.raises(ParameterError, match="periods 100000 is more than one clearing holds"):
        fd.open_market("case33bw", periods=100000)
    with pytest.raises(ParameterError, match="start 2016-02-30 is not a date"):
        fd.open_market("case33bw", periods=4, start="2016-02-30")


def test_run_study_writes_nothing_without_out(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    seen: list[fd.StudyProgress] = []
    study = fd.run_study("case33bw", days=2, start="2016-03-26", progress=seen.append)
    assert list(tmp_path.iterdir()) == []
    assert study.files == () and not study.interrupted
    assert [p.done for p in seen] == [1, 2] and seen[0].remaining_s > 0
    assert study.prices.index.names == ["time", "bus"]
    times = pd.unique(study.prices.index.get_level_values("time"))
    assert len(times) == 192
    # the days straddle the change to summer time: each has 96 periods from local midnight
    assert str(times[0]) == "2016-03-26 00:00:00+01:00"
    assert str(times[96]) == "2016-03-27 00:00:00+01:00"
    assert str(times[-1]) == "2016-03-28 00:45:00+02:00"
    assert study.settlement.index.names == ["time", "participant"]
    assert list(study.summary.columns[:2]) == ["welfare_eur", "bought_mwh"]
    assert study.to_xarray().sizes["time"] == 192
    assert study.welfare_eur == pytest.approx(study.summary["welfare_eur"].sum())
    assert (
        repr(study)
        == f"<Study case33bw: 2 of 2 day(s) from 2016-03-26, welfare {study.welfare_eur:,.2f} EUR>"
    )


def test_one_day_in_one_days_tables_out() -> None:
    """clear_day is a plain function of the network and the day (what a task scheduler
    calls); the same day cleared twice gives the same tables."""
    network = fd.open_network("case33bw", cache=False)
    a = fd.clear_day(network, datetime(2016, 6, 21), seed=3)
    b = fd.clear_day(network, datetime(2016, 6, 21), seed=3)
    pd.testing.assert_frame_equal(a.tables.prices, b.tables.prices)
    assert a.summary()["welfare_eur"] == pytest.approx(b.summary()["welfare_eur"])
    assert len(a.times) == 96 and a.start.isoformat() == "2016-06-21T00:00:00+02:00"


def test_clear_a_network_with_generators_through_the_api() -> None:
    res = fd.clear("case9", periods=4, cache=False)
    assert res.result.ac_check.feasible
    gens = res.dispatch[res.dispatch["kind"] == "generator"]
    assert len(gens) == 2 * 4
    held = res.voltages.xs("bus 1", level="bus")["vm_pu"]
    np.testing.assert_allclose(held, 1.0, atol=1e-9)  # gen 0 holds its bus at its set-point


def test_the_dispatch_table_carries_the_storage_state_of_charge() -> None:
    clearing = fd.clear("1-LV-rural1--2-sw", periods=8, start="2016-06-21T10:00", seed=0)
    soc = clearing.result.storage_soc_mwh
    assert soc  # storage is optimised by default
    d = clearing.dispatch
    storage = d[d["device_id"].isin(list(soc))]
    assert storage["soc_mwh"].notna().all()
    assert d.loc[~d["device_id"].isin(list(soc)), "soc_mwh"].isna().all()
    device = next(iter(soc))
    np.testing.assert_allclose(
        storage[storage["device_id"] == device]["soc_mwh"].to_numpy(), soc[device]
    )
