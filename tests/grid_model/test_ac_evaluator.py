"""The vectorised AC evaluator against pandapower's own runpp, period by period."""

import copy
from datetime import datetime

import numpy as np
import pandapower as pp
import pytest

from feederdao.grid_model import AcEvaluator, build_profiles, build_view, load_network


@pytest.mark.parametrize("code", ["1-LV-rural1--2-sw", "1-MV-semiurb--2-sw", "case33bw"])
def test_matches_runpp_on_profile_periods(code: str) -> None:
    loaded = load_network(code)
    view = build_view(loaded.net, code)
    profiles = build_profiles(loaded, view, datetime(2016, 6, 21), 96)
    periods = [0, 30, 52, 76]
    p = np.zeros((len(periods), len(view.buses)))
    q = np.zeros_like(p)
    sign = np.array(
        [-1.0 if d.kind in ("pv", "renewable", "generator") else 1.0 for d in view.devices]
    )
    rows = np.array([view.bus_position(d.bus) for d in view.devices])
    for i, t in enumerate(periods):
        np.add.at(p[i], rows, sign * profiles.p_mw[t])
        np.add.at(q[i], rows, sign * profiles.q_mvar[t])
    flow = AcEvaluator(loaded.net, view).run(p, q)

    for i, t in enumerate(periods):
        net = copy.deepcopy(loaded.net)
        for dev, pk, qk in zip(view.devices, profiles.p_mw[t], profiles.q_mvar[t], strict=True):
            table, idx = dev.device_id.split(":")
            getattr(net, table).at[int(idx), "p_mw"] = pk
            getattr(net, table).at[int(idx), "q_mvar"] = qk
            if "scaling" in getattr(net, table):
                getattr(net, table).at[int(idx), "scaling"] = 1.0
        pp.runpp(net)
        ref_vm = net.res_bus.vm_pu.loc[[b.index for b in view.buses]].to_numpy()
        np.testing.assert_allclose(flow.vm_pu[i], ref_vm, atol=1e-7)
        for eid, loading in flow.element_loading_percent.items():
            table, idx = eid.split(":")
            ref = getattr(net, f"res_{table}").at[int(idx), "loading_percent"]
            assert loading[i] == pytest.approx(ref, abs=1e-4), eid
        # pandapower also counts the charging losses of cables open at one end (well under a
        # watt here); the view leaves those lines out, as they carry no power
        losses = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
        assert flow.losses_mw[i] == pytest.approx(losses, abs=1e-5)
        assert flow.slack_p_mw[i].sum() == pytest.approx(net.res_ext_grid.p_mw.sum(), abs=1e-7)


@pytest.mark.parametrize("name", ["case9", "case30", "example_simple"])
def test_voltage_controlled_generators_match_runpp(name: str) -> None:
    """pandapower's ``gen`` holds its bus at its set-point (a PV bus) with whatever reactive
    power that takes; the evaluator solves it as runpp does, to 1e-6 pu, with the generators'
    and static generators' P moved between periods. (example_simple has a gen, an sgen, a
    transformer and switches.)"""
    from feederdao.domain.network import device_bus_consumption
    from feederdao.grid_model.loader import load_network

    loaded = load_network(name)
    view = build_view(loaded.net, name)
    assert view.count("generator") >= 1  # type: ignore[arg-type]
    scales = (1.0, 0.7, 0.4)
    ps, qs, refs = [], [], []
    for scale in scales:
        net = copy.deepcopy(loaded.net)
        powers: dict[str, float] = {}
        reactive: dict[str, float] = {}
        for dev in view.devices:
            table, idx = dev.device_id.split(":")
            df = getattr(net, table)
            df.at[int(idx), "p_mw"] = dev.p_mw * scale
            if "scaling" in df:
                df.at[int(idx), "scaling"] = 1.0
            powers[dev.device_id] = dev.p_mw * scale
            if table != "gen":
                df.at[int(idx), "q_mvar"] = dev.q_mvar * scale
                reactive[dev.device_id] = dev.q_mvar * scale
        p, q = device_bus_consumption(view, powers, reactive)
        ps.append(p)
        qs.append(q)
        pp.runpp(net, calculate_voltage_angles=True)
        refs.append(net)
    flow = AcEvaluator(loaded.net, view).run(np.vstack(ps), np.vstack(qs))
    for i, net in enumerate(refs):
        ref_vm = net.res_bus.vm_pu.loc[[b.index for b in view.buses]].to_numpy()
        np.testing.assert_allclose(flow.vm_pu[i], ref_vm, atol=1e-6)
        ref_va = net.res_bus.va_degree.loc[[b.index for b in view.buses]].to_numpy()
        np.testing.assert_allclose(flow.va_degree[i], ref_va, atol=1e-5)
        losses = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
        assert flow.losses_mw[i] == pytest.approx(losses, abs=1e-5)
        assert flow.slack_p_mw[i].sum() == pytest.approx(net.res_ext_grid.p_mw.sum(), abs=1e-5)
        for gen in net.gen.itertuples():  # the PV buses are held
            assert flow.vm_pu[i, view.bus_position(gen.bus)] == pytest.approx(gen.vm_pu, abs=1e-9)
