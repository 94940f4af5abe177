import json
import math
import pickle
from dataclasses import replace

import pandapower as pp
import pytest

from feederdao.errors import NetworkDataError
from feederdao.grid_model import build_view
from tests.grid_model.feeders import three_bus


def test_radial_three_bus_numbers_by_hand() -> None:
    view = build_view(three_bus(), "3bus")
    assert view.topology == "radial"
    assert [b.index for b in view.buses] == [0, 1, 2]
    assert view.parent_branch == (-1, 0, 1)
    l01, l12 = view.branches
    assert (l01.from_bus, l01.to_bus) == (0, 1)
    assert l01.r_pu == pytest.approx(0.2 / 0.16)
    assert l01.x_pu == pytest.approx(0.08 / 0.16)
    assert l12.r_pu == pytest.approx(0.1 / 0.16)
    assert l01.rating_mva == pytest.approx(0.25 * 0.4 * math.sqrt(3))
    assert [d.device_id for d in view.devices] == ["load:0", "load:1", "sgen:0"]
    assert view.device("sgen:0").kind == "pv"
    assert view.slacks[0].bus == 0 and view.slacks[0].vm_pu == 1.0


def test_a_device_is_found_by_its_id_in_the_view_that_holds_it() -> None:
    """``device`` is a lookup kept with the view: a view made from another with other devices
    (``replace``) and a view sent to another process (pickle) answer from their own."""
    view = build_view(three_bus(), "3bus")
    assert [view.device(d.device_id) for d in view.devices] == list(view.devices)
    fewer = replace(view, devices=view.devices[:1])
    assert fewer.device("load:0") == view.devices[0]
    with pytest.raises(KeyError):
        fewer.device("sgen:0")
    assert view.device("sgen:0") == view.devices[2]  # the original is untouched
    assert pickle.loads(pickle.dumps(view)).device("sgen:0") == view.devices[2]
    with pytest.raises(KeyError):
        view.device("sgen:99")


def test_meshed_detected_and_stated() -> None:
    view = build_view(three_bus(meshed=True), "3bus-mesh")
    assert view.topology == "meshed"
    assert len(view.branches) == 3


def test_open_switch_respected_and_island_named() -> None:
    net = three_bus(meshed=True)
    pp.create_switch(net, bus=0, element=2, et="l", closed=False)  # opens L02: radial again
    assert build_view(net).topology == "radial"
    pp.create_switch(net, bus=1, element=1, et="l", closed=False)  # opens L12: B2 islanded
    view = build_view(net)
    assert view.unsupplied_buses == ("B2",)
    assert view.islands == (("B2",),)
    assert view.unsupplied_bus_indices == (2,)
    assert not view.has_bus(2)
    assert {d.split(" ")[0] for d in view.unsupplied_devices} == {"load:1", "sgen:0"}


def test_transformer_per_unit_and_tap_ratio() -> None:
    def feeder(changer: str | None) -> object:
        net = pp.create_empty_network(sn_mva=1.0)
        hv = pp.create_bus(net, vn_kv=20.0, name="HV")
        lv = pp.create_bus(net, vn_kv=0.4, name="LV")
        pp.create_ext_grid(net, hv)
        pp.create_transformer_from_parameters(
            net,
            hv,
            lv,
            sn_mva=0.4,
            vn_hv_kv=20.0,
            vn_lv_kv=0.4,
            vk_percent=4.0,
            vkr_percent=1.0,
            pfe_kw=0.0,
            i0_percent=0.0,
            tap_side="hv",
            tap_neutral=0,
            tap_pos=2,
            tap_step_percent=2.5,
            tap_min=-2,
            tap_max=2,
            tap_changer_type=changer,
        )
        return net

    (tr,) = build_view(feeder("Ratio")).branches
    # on a 1 MVA base: z = 0.04 · 1/0.4 = 0.1 pu, r = 0.01 · 1/0.4 = 0.025 pu
    assert tr.r_pu == pytest.approx(0.025)
    assert tr.x_pu == pytest.approx(math.sqrt(0.1**2 - 0.025**2))
    assert tr.rating_mva == 0.4
    assert tr.ratio == pytest.approx(1.05)  # HV winding at +2 · 2.5 %
    # without a tap changer type pandapower ignores the tap position, and so does the view
    (plain,) = build_view(feeder(None)).branches
    assert plain.ratio == 1.0


def test_bus_bus_switch_fuses_and_parallel_elements_merge() -> None:
    net = three_bus()
    extra = pp.create_bus(net, vn_kv=0.4, name="B1b")
    pp.create_switch(net, bus=1, element=extra, et="b", closed=True)
    pp.create_load(net, extra, p_mw=0.001)
    pp.create_line_from_parameters(
        net,
        0,
        extra,
        length_km=1.0,
        r_ohm_per_km=0.2,
        x_ohm_per_km=0.08,
        c_nf_per_km=0,
        max_i_ka=0.1,
        name="L01b",
    )
    view = build_view(net)
    assert view.topology == "radial"
    assert view.bus_alias == {extra: 1}
    assert view.device("load:2").bus == 1
    merged = next(b for b in view.branches if b.parallel_ids)
    assert set(merged.parallel_ids) == {"line:0", "line:2"}
    assert merged.r_pu == pytest.approx(1.25 / 2)
    # equal impedances share equally: the weaker member (0.1 kA) limits at twice its rating
    assert merged.rating_mva == pytest.approx(2 * 0.1 * 0.4 * math.sqrt(3))


def test_view_does_not_mutate_the_net() -> None:
    net = three_bus()
    before = pp.to_json(net)
    build_view(net)
    assert json.loads(pp.to_json(net)) == json.loads(before)


def test_unsupported_element_is_named() -> None:
    net = three_bus()
    b3 = pp.create_bus(net, vn_kv=0.4)
    b4 = pp.create_bus(net, vn_kv=0.4)
    pp.create_transformer3w(net, 0, b3, b4, std_type="63/25/38 MVA 110/20/10 kV", name="T3")
    with pytest.raises(NetworkDataError, match="trafo3w.*T3"):
        build_view(net)


def test_simbench_and_builtins(lv_rural, case33) -> None:  # type: ignore[no-untyped-def]
    assert lv_rural.view.topology == "radial"
    assert len(lv_rural.view.buses) == 15
    assert case33.view.topology == "radial" and len(case33.view.buses) == 33
