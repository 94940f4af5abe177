"""Validate a clearing against pandapower's own OPF on the same bids, costs and limits.

pandapower's ``runopp`` (AC) and ``rundcopp`` are run period by period on a copy of the net in
which every block is a controllable load or static generator with a linear cost, PV inverters'
reactive range is a controllable Q source, inflexible consumption is fixed per bus and the
ext_grid costs the wholesale price. pandapower's ext_grid has one cost for import and export, so
compare with wholesale prices whose export price equals the import price.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from feederdao.domain.clearing import ClearingResult
from feederdao.optimizer.clearing import ClearingEngine
from feederdao.optimizer.limits import branch_limit_mva
from feederdao.optimizer.market import block_cost


@dataclass(frozen=True)
class PeerRun:
    """pandapower's OPF looped over the periods: times, convergence and objective (EUR)."""

    build_s: float
    solve_s: float
    converged: int
    periods: int
    objective_eur: float

    @property
    def total_s(self) -> float:
        return self.build_s + self.solve_s


def ac_objective(engine: ClearingEngine, result: ClearingResult) -> float:
    """A clearing's cost (EUR, −welfare) evaluated with AC losses: block costs plus the AC
    substation import at the wholesale import price."""
    data = engine.data
    dt = data.period_hours
    x = np.concatenate(
        [np.asarray(result.accepted_mw[b]) for b in dict.fromkeys(data.blocks.bid_ids)]
    )
    cost = float((block_cost(data) * x).sum() * dt)
    imp = result.ac_slack_p_mw if result.ac_slack_p_mw is not None else result.slack_import_mw
    price = data.wholesale.import_eur_per_mwh
    return float(cost + (price * imp.sum(axis=1)).sum() * dt)


def pandapower_opf(engine: ClearingEngine, net: Any, dc: bool = False) -> PeerRun:
    """Loop pandapower's ``runopp`` (or ``rundcopp``) over the engine's periods."""
    import pandapower as pp

    data, view, params = engine.data, engine.view, engine.params
    base = copy.deepcopy(net)
    for table in ("load", "sgen", "storage", "gen"):
        getattr(base, table)["in_service"] = False
    # SimBench leaves "controllable" NaN, which pandapower's OPF cannot negate
    if "controllable" in base.ext_grid:
        base.ext_grid = base.ext_grid.drop(columns="controllable")
    for table in ("load", "sgen", "storage", "gen"):
        df = getattr(base, table)
        if "controllable" in df:
            df["controllable"] = df["controllable"].fillna(False).astype(bool)
    base.poly_cost = base.poly_cost.iloc[0:0]
    base.pwl_cost = base.pwl_cost.iloc[0:0]
    base.bus["min_vm_pu"] = params.v_min_pu
    base.bus["max_vm_pu"] = params.v_max_pu
    base.line["max_loading_percent"] = params.max_line_loading_percent
    base.trafo["max_loading_percent"] = params.max_trafo_loading_percent
    for col, value in (
        ("max_p_mw", 1e3),
        ("min_p_mw", -1e3),
        ("max_q_mvar", 1e3),
        ("min_q_mvar", -1e3),
    ):
        base.ext_grid[col] = value
    buses = np.array([b.index for b in view.buses])
    bl = data.blocks
    fixed_p = data.fixed_p_mw.copy()
    for unit in data.storage:  # held at its profile: the peers have no state of charge
        fixed_p[:, unit.bus_pos] += unit.profile_mw
    build = solve = objective = 0.0
    converged = 0
    for t in range(data.n_periods):
        t0 = time.perf_counter()
        net_t = copy.deepcopy(base)
        pp.create_loads(
            net_t, buses=buses, p_mw=fixed_p[t], q_mvar=data.fixed_q_mvar[t], controllable=False
        )
        sel = np.flatnonzero(bl.period == t)
        buy, sell = sel[bl.is_buy[sel]], sel[~bl.is_buy[sel]]
        if len(buy):
            e = pp.create_loads(
                net_t,
                buses=buses[bl.bus_pos[buy]],
                p_mw=0.0,
                controllable=True,
                min_p_mw=0.0,
                max_p_mw=bl.quantity[buy],
                min_q_mvar=0.0,
                max_q_mvar=0.0,
            )
            pp.create_poly_costs(net_t, e, "load", cp1_eur_per_mw=-bl.price[buy])
        if len(sell):
            e = pp.create_sgens(
                net_t,
                buses=buses[bl.bus_pos[sell]],
                p_mw=0.0,
                controllable=True,
                min_p_mw=0.0,
                max_p_mw=bl.quantity[sell],
                min_q_mvar=0.0,
                max_q_mvar=0.0,
            )
            pp.create_poly_costs(net_t, e, "sgen", cp1_eur_per_mw=bl.price[sell])
        if not dc and data.inverters:
            avail = np.array([inv.available_mw[t] for inv in data.inverters])
            q = np.array(
                [
                    min(inv.tan_phi * a, max(inv.s_mva**2 - a**2, 0.0) ** 0.5)
                    for inv, a in zip(data.inverters, avail, strict=True)
                ]
            )
            rows = np.array([inv.bus_pos for inv in data.inverters])[q > 0]
            if len(rows):
                e = pp.create_sgens(
                    net_t,
                    buses=buses[rows],
                    p_mw=0.0,
                    controllable=True,
                    min_p_mw=0.0,
                    max_p_mw=0.0,
                    min_q_mvar=-q[q > 0],
                    max_q_mvar=q[q > 0],
                )
                pp.create_poly_costs(net_t, e, "sgen", cp1_eur_per_mw=0.0)
        for i in net_t.ext_grid.index:
            pp.create_poly_cost(
                net_t, i, "ext_grid", cp1_eur_per_mw=float(data.wholesale.import_eur_per_mwh[t])
            )
        build += time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                (pp.rundcopp if dc else pp.runopp)(net_t)
            objective += float(net_t.res_cost) * data.period_hours
            converged += 1
        except Exception:  # an OPF that does not converge is counted, not fatal
            pass
        solve += time.perf_counter() - t0
    return PeerRun(build, solve, converged, data.n_periods, objective)


def pypsa_linear_opf(engine: ClearingEngine, storage: bool = False) -> PeerRun:
    """The same window, bids and costs as a PyPSA linear OPF (linopy + HiGHS): DC flows with
    thermal limits only — no voltage, no reactive power, no losses.

    Each participant's k-th buy or sell block is one generator whose availability and marginal
    cost vary by period (consumption as negative generation valued at the bid price), the
    substation a generator at the wholesale price, inflexible consumption fixed loads. Storage
    is held at its profile (a fixed load), or with ``storage`` optimised as PyPSA storage units
    (power, energy between the state-of-charge limits, efficiencies, cyclic state of charge).
    """
    import logging

    import pandas as pd
    import pypsa

    for name in ("pypsa", "linopy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    data, view = engine.data, engine.view
    n_t = data.n_periods
    t0 = time.perf_counter()
    net = pypsa.Network()
    net.set_snapshots(list(range(n_t)))
    net.snapshot_weightings.loc[:, :] = data.period_hours  # MWh per MW and period
    names = [str(b.index) for b in view.buses]
    net.add("Bus", names, v_nom=1.0)  # per unit: x in Ω on 1 kV is x in pu on 1 MVA
    limit = branch_limit_mva(view, data)
    net.add(
        "Line",
        [b.branch_id for b in view.branches],
        bus0=[str(b.from_bus) for b in view.branches],
        bus1=[str(b.to_bus) for b in view.branches],
        x=[max(b.x_pu, 1e-6) * view.base_mva for b in view.branches],
        r=[b.r_pu * view.base_mva for b in view.branches],
        s_nom=np.where(np.isfinite(limit), limit, 1e6),
    )
    for s in view.slacks:
        net.add(
            "Generator",
            f"grid{s.bus}",
            bus=str(s.bus),
            p_nom=1e4,
            p_min_pu=-1.0,
            marginal_cost=pd.Series(data.wholesale.import_eur_per_mwh, index=net.snapshots),
        )
    fixed = data.fixed_p_mw.copy()
    for unit in data.storage:
        if not storage:
            fixed[:, unit.bus_pos] += unit.profile_mw
            continue
        net.add(
            "StorageUnit",
            unit.device_id,
            bus=str(view.buses[unit.bus_pos].index),
            p_nom=unit.p_max_mw,
            max_hours=(unit.soc_max_mwh - unit.soc_min_mwh) / max(unit.p_max_mw, 1e-9),
            efficiency_store=unit.eta_charge,
            efficiency_dispatch=unit.eta_discharge,
            state_of_charge_initial=unit.soc_init_mwh - unit.soc_min_mwh,
            cyclic_state_of_charge=True,
        )
    net.add(
        "Load",
        [f"fixed{b}" for b in names],
        bus=names,
        p_set=pd.DataFrame(fixed, index=net.snapshots, columns=[f"fixed{b}" for b in names]),
    )
    bl = data.blocks
    groups: dict[tuple[str, bool, int], list[int]] = {}
    for i in range(len(bl)):
        groups.setdefault((bl.participant[i], bool(bl.is_buy[i]), int(bl.block_no[i])), []).append(
            i
        )
    gen_names, buses, p_nom = [], [], []
    pmin = np.zeros((n_t, len(groups)))
    pmax = np.zeros((n_t, len(groups)))
    cost = np.zeros((n_t, len(groups)))
    for g, ((pid, buy, k), rows) in enumerate(groups.items()):
        q = np.zeros(n_t)
        c = np.zeros(n_t)
        for i in rows:
            q[bl.period[i]] = bl.quantity[i]
            c[bl.period[i]] = bl.price[i] - (data.params.network_fee_eur_per_mwh if buy else 0)
        cap = max(float(q.max()), 1e-9)
        gen_names.append(f"{pid}:{'buy' if buy else 'sell'}:{k}")
        buses.append(str(view.buses[int(bl.bus_pos[rows[0]])].index))
        p_nom.append(cap)
        if buy:
            pmin[:, g] = -q / cap
        else:
            pmax[:, g] = q / cap
        cost[:, g] = c
    net.add(
        "Generator",
        gen_names,
        bus=buses,
        p_nom=p_nom,
        p_min_pu=pd.DataFrame(pmin, index=net.snapshots, columns=gen_names),
        p_max_pu=pd.DataFrame(pmax, index=net.snapshots, columns=gen_names),
        marginal_cost=pd.DataFrame(cost, index=net.snapshots, columns=gen_names),
    )
    net.optimize.create_model(include_objective_constant=False)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    status, _ = net.optimize.solve_model(solver_name="highs", solver_options={"output_flag": False})
    solve = time.perf_counter() - t0
    objective = float(net.objective or 0.0) if status == "ok" else float("nan")
    return PeerRun(build, solve, n_t if status == "ok" else 0, n_t, objective)
