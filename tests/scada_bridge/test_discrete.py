"""Transformer tap changers and capacitor banks: positions pushed, applied, reflected in the
simulator's power flow; out-of-range positions refused."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp

from feederdao.domain.clearing import Setpoint
from feederdao.grid_model import AcEvaluator, build_view, run_power_flow
from feederdao.scada_bridge.audit import AuditLog
from feederdao.scada_bridge.bridge import Bridge
from feederdao.scada_bridge.nodemap import NodeMap, nodemap_for
from feederdao.scada_bridge.simulator import NAMESPACE, FeederSimulator
from tests.scada_bridge.conftest import Pki, client_security, free_port, server_security


def feeder() -> Any:
    net = pp.create_empty_network(sn_mva=1.0)
    hv = pp.create_bus(net, vn_kv=20.0, name="MV")
    b1 = pp.create_bus(net, vn_kv=0.4, name="LV1")
    b2 = pp.create_bus(net, vn_kv=0.4, name="LV2")
    pp.create_ext_grid(net, hv, vm_pu=1.0)
    pp.create_transformer_from_parameters(
        net,
        hv,
        b1,
        sn_mva=0.4,
        vn_hv_kv=20,
        vn_lv_kv=0.4,
        vk_percent=4,
        vkr_percent=1,
        pfe_kw=0,
        i0_percent=0,
        tap_side="hv",
        tap_neutral=0,
        tap_pos=0,
        tap_min=-2,
        tap_max=2,
        tap_step_percent=2.5,
        tap_changer_type="Ratio",
        name="T1",
    )
    pp.create_line_from_parameters(
        net, b1, b2, length_km=0.3, r_ohm_per_km=0.2, x_ohm_per_km=0.08, c_nf_per_km=0, max_i_ka=0.3
    )
    pp.create_load(net, b2, p_mw=0.12, q_mvar=0.04)
    pp.create_sgen(net, b2, p_mw=0.02, sn_mva=0.03, type="PV")
    pp.create_shunt(net, b2, q_mvar=-0.01, step=0, max_step=3, name="C1")  # capacitive steps
    return net


def test_tap_and_capacitor_positions_move_the_voltages(pki: Pki, tmp_path: Path) -> None:
    net = feeder()
    view = build_view(net, "discrete")
    assert [(d.device_id, d.kind, d.minimum, d.maximum) for d in view.discrete] == [
        ("trafo:0", "tap", -2, 2),
        ("shunt:0", "capacitor", 0, 3),
    ]

    async def scenario() -> None:
        sim = FeederSimulator(
            view,
            AcEvaluator(net, view),
            f"opc.tcp://127.0.0.1:{free_port()}/feederdao/simulator",
            server_security(pki),
            period_s=0.05,
        )
        async with sim:
            before = run_power_flow(net, view).vm_pu[0]  # taps and steps as built
            nm = nodemap_for(
                [],
                sim.endpoint,
                NAMESPACE,
                discrete=[("trafo:0", "tap", -2, 2), ("shunt:0", "capacitor", 0, 3)],
            )
            assert (
                NodeMap.from_dict(__import__("tomllib").loads(nm.to_toml()))
                .devices["trafo:0"]
                .position_max
                == 2
            )
            async with Bridge(nm, client_security(pki), AuditLog(tmp_path / "a.jsonl")) as b:
                report = await b.push(
                    "c1",
                    [
                        Setpoint("trafo:0", 1, 0, 0.0, 0.0, position=-2),
                        Setpoint("shunt:0", 2, 0, 0.0, 0.0, position=3),
                    ],
                )
                assert report.ok, report.failed
                await asyncio.sleep(0.4)
                assert sim.discrete["trafo:0"].position == -2
                assert sim.discrete["shunt:0"].position == 3
                expected = copy.deepcopy(net)
                expected.trafo.at[0, "tap_pos"] = -2
                expected.shunt.at[0, "step"] = 3
                flow = run_power_flow(expected, view)
                np.testing.assert_allclose(sim.vm_pu, flow.vm_pu[0], atol=1e-9)
                assert sim.vm_pu[2] > before[2] + 0.04  # lower HV tap and capacitors raise LV
                bad = await b.push(
                    "c2",
                    [
                        Setpoint("trafo:0", 1, 0, 0.0, 0.0, position=5),
                        Setpoint("shunt:0", 2, 0, 0.0, 0.0),
                    ],
                )
                reasons = {d.device_id: d.status for d in bad.failed}
                assert "position 5 outside [-2, 2]: refused, not clipped" in reasons["trafo:0"]
                assert "needs a position" in reasons["shunt:0"]
                await asyncio.sleep(0.2)
                assert sim.discrete["trafo:0"].position == -2

    asyncio.run(scenario())
