"""AC power flow helper: pandapower on a private copy of the net, results as values.

:class:`AcEvaluator` prepares one copy of the net in which every bus's net consumption is one
load, so evaluating many periods (or a dispatch) only rewrites two columns before each power
flow; the caller's net is never touched.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from feederdao.domain.network import DeviceKind, NetworkView
from feederdao.domain.powerflow import PowerFlowResult
from feederdao.domain.profiles import FloatArray
from feederdao.errors import PowerFlowError

_DEVICE_TABLES = ("load", "sgen", "storage", "gen")


def device_bus_consumption(
    view: NetworkView, p_mw: Mapping[str, float], q_mvar: Mapping[str, float] | None = None
) -> tuple[FloatArray, FloatArray]:
    """Net consumption per view bus from device powers in each device's own sign convention.

    Devices missing from ``p_mw``/``q_mvar`` stay at their base operating point.
    """
    q_mvar = q_mvar or {}
    p = np.zeros(len(view.buses))
    q = np.zeros(len(view.buses))
    for dev in view.devices:
        sign = -1.0 if dev.kind in (DeviceKind.PV, DeviceKind.GENERATOR) else 1.0
        row = view.bus_position(dev.bus)
        p[row] += sign * p_mw.get(dev.device_id, dev.p_mw)
        q[row] += sign * q_mvar.get(dev.device_id, dev.q_mvar)
    return p, q


class AcEvaluator:
    """Runs pandapower AC power flows for a view's net at given bus consumptions."""

    def __init__(self, net: Any, view: NetworkView) -> None:
        import pandapower as pp

        self._pp = pp
        self.view = view
        work = copy.deepcopy(net)
        for table in _DEVICE_TABLES:
            df = getattr(work, table)
            if len(df):
                df["in_service"] = False
        buses = [b.index for b in view.buses]
        self._load_idx = pp.create_loads(work, buses=buses, p_mw=0.0, q_mvar=0.0, name="feederdao")
        self._net = work
        self._ext_rows = {
            int(row.bus): int(i) for i, row in work.ext_grid.iterrows() if bool(row.in_service)
        }
        self._branch_map = self._map_branches()

    def _map_branches(self) -> list[list[tuple[str, int, bool]]]:
        """For each view branch, its members as (table, element, same_orientation)."""
        out: list[list[tuple[str, int, bool]]] = []
        for br in self.view.branches:
            ids = br.parallel_ids or (br.branch_id,)
            members = []
            for bid in ids:
                table, element = bid.split(":")
                idx = int(element)
                if table == "line":
                    fb = self.view.canonical_bus(int(self._net.line.at[idx, "from_bus"]))
                else:
                    fb = self.view.canonical_bus(int(self._net.trafo.at[idx, "hv_bus"]))
                members.append((table, idx, fb == br.from_bus))
            out.append(members)
        return out

    def run(
        self,
        p_mw: FloatArray,
        q_mvar: FloatArray,
        slack_vm_pu: Mapping[int, float] | None = None,
    ) -> PowerFlowResult:
        """AC power flow for each row of ``p_mw``/``q_mvar`` (``[period, view bus]``, net
        consumption). Raises :class:`PowerFlowError` naming the first period that fails."""
        p_mw = np.atleast_2d(np.asarray(p_mw, dtype=float))
        q_mvar = np.atleast_2d(np.asarray(q_mvar, dtype=float))
        n_t, n_b = p_mw.shape
        if n_b != len(self.view.buses) or q_mvar.shape != p_mw.shape:
            raise ValueError("bus consumption arrays do not match the view's buses")
        net = self._net
        for bus, vm in (slack_vm_pu or {}).items():
            net.ext_grid.at[self._ext_rows[bus], "vm_pu"] = vm
        n_br = len(self.view.branches)
        bus_idx = [b.index for b in self.view.buses]
        slack_rows = [self._ext_rows[s.bus] for s in self.view.slacks]
        out = {
            "vm": np.empty((n_t, n_b)),
            "va": np.empty((n_t, n_b)),
            "pf": np.empty((n_t, n_br)),
            "qf": np.empty((n_t, n_br)),
            "pt": np.empty((n_t, n_br)),
            "ld": np.empty((n_t, n_br)),
            "sp": np.empty((n_t, len(slack_rows))),
            "sq": np.empty((n_t, len(slack_rows))),
        }
        element_ids = sorted({f"{t}:{e}" for m in self._branch_map for t, e, _ in m})
        elements = {eid: np.empty(n_t) for eid in element_ids}
        init = "auto"
        logger = logging.getLogger("pandapower")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            for t in range(n_t):
                net.load.loc[self._load_idx, "p_mw"] = p_mw[t]
                net.load.loc[self._load_idx, "q_mvar"] = q_mvar[t]
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        self._pp.runpp(net, init=init, numba=True, calculate_voltage_angles=True)
                except Exception as exc:  # pandapower's LoadflowNotConverged and friends
                    raise PowerFlowError(
                        f"AC power flow did not converge for period {t} of {n_t} "
                        f"(total net load {p_mw[t].sum():.4f} MW): {exc}"
                    ) from exc
                init = "results"
                out["vm"][t] = net.res_bus.vm_pu.to_numpy()[net.bus.index.get_indexer(bus_idx)]
                out["va"][t] = net.res_bus.va_degree.to_numpy()[net.bus.index.get_indexer(bus_idx)]
                for k, members in enumerate(self._branch_map):
                    pf = qf = pt = 0.0
                    worst = 0.0
                    for table, idx, same in members:
                        res = net.res_line if table == "line" else net.res_trafo
                        a, b = ("from", "to") if table == "line" else ("hv", "lv")
                        if not same:
                            a, b = b, a
                        pf += float(res.at[idx, f"p_{a}_mw"])
                        qf += float(res.at[idx, f"q_{a}_mvar"])
                        pt += float(res.at[idx, f"p_{b}_mw"])
                        loading = float(res.at[idx, "loading_percent"])
                        elements[f"{table}:{idx}"][t] = loading
                        worst = max(worst, loading)
                    out["pf"][t, k], out["qf"][t, k], out["pt"][t, k] = pf, qf, pt
                    out["ld"][t, k] = worst
                out["sp"][t] = net.res_ext_grid.p_mw.to_numpy()[
                    net.ext_grid.index.get_indexer(slack_rows)
                ]
                out["sq"][t] = net.res_ext_grid.q_mvar.to_numpy()[
                    net.ext_grid.index.get_indexer(slack_rows)
                ]
        finally:
            logger.setLevel(level)
        return PowerFlowResult(
            vm_pu=out["vm"],
            va_degree=out["va"],
            branch_p_from_mw=out["pf"],
            branch_q_from_mvar=out["qf"],
            branch_p_to_mw=out["pt"],
            branch_loading_percent=out["ld"],
            slack_p_mw=out["sp"],
            slack_q_mvar=out["sq"],
            element_loading_percent=elements,
        )


def run_power_flow(
    net: Any,
    view: NetworkView,
    p_mw: Mapping[str, float] | None = None,
    q_mvar: Mapping[str, float] | None = None,
) -> PowerFlowResult:
    """One AC power flow of ``net`` with devices at the given powers (others at base values),
    on a copy: ``net`` is not modified."""
    p, q = device_bus_consumption(view, p_mw or {}, q_mvar)
    return AcEvaluator(net, view).run(p[None, :], q[None, :])
