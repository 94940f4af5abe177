import json

import numpy as np
import pandapower as pp
import pytest

from feederdao.domain.network import device_bus_consumption
from feederdao.errors import PowerFlowError
from feederdao.grid_model import AcEvaluator, build_view, run_power_flow
from tests.grid_model.feeders import three_bus


def test_matches_pandapower_and_leaves_net_untouched() -> None:
    net = three_bus()
    view = build_view(net)
    before = json.loads(pp.to_json(net))
    flow = run_power_flow(net, view, p_mw={"sgen:0": 0.01})
    assert json.loads(pp.to_json(net)) == before

    ref = three_bus()
    ref.sgen.at[0, "p_mw"] = 0.01
    pp.runpp(ref)
    np.testing.assert_allclose(flow.vm_pu[0], ref.res_bus.vm_pu.to_numpy(), atol=1e-9)
    np.testing.assert_allclose(
        flow.branch_loading_percent[0], ref.res_line.loading_percent.to_numpy(), atol=1e-7
    )
    assert flow.losses_mw[0] == pytest.approx(ref.res_line.pl_mw.sum())
    assert flow.slack_p_mw[0, 0] == pytest.approx(ref.res_ext_grid.p_mw.iloc[0])


def test_bus_consumption_signs() -> None:
    view = build_view(three_bus())
    p, q = device_bus_consumption(view, {"sgen:0": 0.04})
    np.testing.assert_allclose(p, [0.0, 0.02, 0.03 - 0.04])
    np.testing.assert_allclose(q, [0.0, 0.005, 0.01])


def test_many_periods_in_one_call() -> None:
    net = three_bus()
    view = build_view(net)
    p = np.array([[0, 0.01, 0.02], [0, 0.05, -0.03]])
    flow = AcEvaluator(net, view).run(p, np.zeros_like(p))
    assert flow.n_periods == 2
    assert flow.vm_pu[1, 2] > flow.vm_pu[0, 2]  # export raises the end voltage


def test_non_convergence_is_a_clear_error() -> None:
    net = three_bus()
    view = build_view(net)
    with pytest.raises(PowerFlowError, match="did not converge for period 0"):
        run_power_flow(net, view, p_mw={"load:1": 5.0})
