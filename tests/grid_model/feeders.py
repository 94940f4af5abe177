"""Small hand-checkable pandapower feeders for the tests."""

from __future__ import annotations

from typing import Any

import pandapower as pp


def three_bus(meshed: bool = False) -> Any:
    """0.4 kV: slack bus 0 —line 0 (1 km)— bus 1 —line 1 (0.5 km)— bus 2.

    Each line: r = 0.2 Ω/km, x = 0.08 Ω/km, 0.25 kA. With sn_mva = 1 the base impedance is
    0.4² / 1 = 0.16 Ω, so line 0 has r = 1.25 pu, x = 0.5 pu and a rating of
    0.25 kA · 0.4 kV · √3 = 0.1732 MVA. ``meshed`` adds line 2 (bus 0 — bus 2, 1 km).
    """
    net = pp.create_empty_network(sn_mva=1.0)
    b = [pp.create_bus(net, vn_kv=0.4, name=f"B{i}") for i in range(3)]
    pp.create_ext_grid(net, b[0], vm_pu=1.0)
    kw = {"r_ohm_per_km": 0.2, "x_ohm_per_km": 0.08, "c_nf_per_km": 0.0, "max_i_ka": 0.25}
    pp.create_line_from_parameters(net, b[0], b[1], length_km=1.0, name="L01", **kw)
    pp.create_line_from_parameters(net, b[1], b[2], length_km=0.5, name="L12", **kw)
    if meshed:
        pp.create_line_from_parameters(net, b[0], b[2], length_km=1.0, name="L02", **kw)
    pp.create_load(net, b[1], p_mw=0.02, q_mvar=0.005, name="H1")
    pp.create_load(net, b[2], p_mw=0.03, q_mvar=0.01, name="H2")
    pp.create_sgen(net, b[2], p_mw=0.04, sn_mva=0.05, type="PV", name="PV2")
    return net
