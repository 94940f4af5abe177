"""Hand-checkable clearing cases: a network, its participants and an empty profile set."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandapower as pp

from feederdao.domain import Participant, Profiles
from feederdao.domain.network import NetworkView
from feederdao.grid_model import build_view


def two_bus(
    max_i_ka: float = 0.25, r_ohm: float = 0.2, x_ohm: float = 0.0, generator_mva: float = 0.0
) -> tuple[Any, NetworkView]:
    """0.4 kV slack bus 0 — 1 km line — bus 1 (r = r_ohm, x = x_ohm). Base 1 MVA, z_base 0.16 Ω.

    ``generator_mva`` puts an idle generator of that rating at bus 1 (a local seller's plant:
    it lets bids there exceed what the line carries). With x = 0 only the LP can be used
    (pandapower's DC initialisation divides by x)."""
    net = pp.create_empty_network(sn_mva=1.0)
    b0 = pp.create_bus(net, vn_kv=0.4, name="S")
    b1 = pp.create_bus(net, vn_kv=0.4, name="A")
    pp.create_ext_grid(net, b0, vm_pu=1.0)
    pp.create_line_from_parameters(
        net,
        b0,
        b1,
        length_km=1.0,
        r_ohm_per_km=r_ohm,
        x_ohm_per_km=x_ohm,
        c_nf_per_km=0.0,
        max_i_ka=max_i_ka,
        name="L",
    )
    if generator_mva:
        pp.create_sgen(net, b1, p_mw=0.0, sn_mva=generator_mva, type="CHP", name="G")
    return net, build_view(net, "two-bus")


def empty_profiles(view: NetworkView, n_periods: int = 1) -> Profiles:
    ids = tuple(d.device_id for d in view.devices)
    return Profiles(
        start=datetime(2016, 6, 21),
        resolution_min=15,
        device_ids=ids,
        p_mw=np.zeros((n_periods, len(ids))),
        q_mvar=np.zeros((n_periods, len(ids))),
        source="test",
    )


def participants(*pairs: tuple[str, int]) -> list[Participant]:
    return [Participant(pid, bus) for pid, bus in pairs]
