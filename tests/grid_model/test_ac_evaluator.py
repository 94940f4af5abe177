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
