"""Benchmark: feederdao's 96-period AC-checked clearing against pandapower's OPFs.

Each network runs in its own process (so peak memory is its own). For every network the same
window, bids, costs and limits go to

* feederdao (storage held at its profile, as the peers have no state of charge): model build,
  solve and AC check, median of ``--repeat`` runs; then once more with storage optimised;
* pandapower ``runopp`` (AC OPF) looped over the periods, every block a controllable load or
  static generator with a linear cost, PV inverters' reactive range as controllable Q;
* pandapower ``rundcopp`` likewise (no voltage, no losses).

Objectives are compared AC-evaluated with losses: feederdao's dispatch costs plus the
substation's AC import at the wholesale price. Import and export share one price here because
pandapower's ext_grid has one cost. Usage::

    python bench/clearing.py                   # the four feeders, table on stdout
    python bench/clearing.py --large           # also 1-MVLV-urban-all-0-sw, one period
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from datetime import datetime

import numpy as np

NETWORKS = ("1-LV-rural1--2-sw", "1-LV-semiurb4--2-sw", "1-MV-semiurb--2-sw", "case33bw")
LARGE = "1-MVLV-urban-all-0-sw"
START = datetime(2016, 6, 21)


def _feederdao(code: str, periods: int, repeat: int, start: datetime) -> dict[str, object]:
    from feederdao.domain import GridParameters
    from feederdao.domain.clearing import ClearingOptions, WholesalePrices
    from feederdao.grid_model import AcEvaluator
    from feederdao.optimizer.clearing import ClearingEngine
    from feederdao.workflows.clearing import open_market

    market = open_market(code, periods=periods, start=start, seed=0)
    view = market.network.view
    day = WholesalePrices.day_shape(periods, start_period=start.hour * 4)
    prices = WholesalePrices(day.import_eur_per_mwh, day.import_eur_per_mwh)
    params = GridParameters()
    parts = tuple(market.registry.values())
    ac = AcEvaluator(market.network.loaded.net, view)
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        engine = ClearingEngine(
            view,
            market.profiles,
            market.bids,
            parts,
            params,
            prices,
            ClearingOptions(storage="profile"),
        )
        result = engine.run(ac)
        runs.append((time.perf_counter() - t0, result))
    total = statistics.median(r[0] for r in runs)
    result = runs[-1][1]
    st = result.stats
    ac_cost = _ac_objective(engine, result, prices)
    # re-clearing with a new book of the same shape reuses the model
    t0 = time.perf_counter()
    engine.rebid(market.bids, ac)
    reclear = time.perf_counter() - t0
    t0 = time.perf_counter()
    with_storage = ClearingEngine(
        view, market.profiles, market.bids, parts, params, prices, ClearingOptions()
    ).run(ac)
    storage_s = time.perf_counter() - t0
    return {
        "network": code,
        "buses": len(view.buses),
        "periods": periods,
        "bids": len(market.bids),
        "variables": st.n_variables,
        "constraints": st.n_constraints,
        "build_s": statistics.median(r[1].stats.build_s for r in runs),
        "solve_s": statistics.median(r[1].stats.solve_s for r in runs),
        "ac_s": statistics.median(r[1].stats.ac_check_s for r in runs),
        "total_s": total,
        "reclear_s": reclear,
        "iterations": st.iterations,
        "ac_feasible": result.ac_check.feasible,
        "objective_eur": ac_cost,
        "storage_total_s": storage_s,
        "storage_objective_eur": -with_storage.welfare_eur,
        "market": market,
        "prices": prices,
        "params": params,
        "engine": engine,
    }


def _ac_objective(engine, result, prices) -> float:  # type: ignore[no-untyped-def]
    """Dispatch costs of the blocks plus the AC substation import at the wholesale price."""
    from feederdao.optimizer.market import block_cost

    data = engine.data
    dt = data.period_hours
    x = np.concatenate(
        [np.asarray(result.accepted_mw[b]) for b in dict.fromkeys(data.blocks.bid_ids)]
    )
    cost = sum(block_cost(data, n) * x[n] * dt for n in range(len(data.blocks)))
    imp = result.ac_slack_p_mw if result.ac_slack_p_mw is not None else result.slack_import_mw
    return float(cost + (prices.import_eur_per_mwh * imp.sum(axis=1)).sum() * dt)


def _pandapower_opf(run: dict[str, object], dc: bool) -> dict[str, object]:
    """Loop pandapower's OPF over the periods on the same bids, costs and limits."""
    import pandapower as pp

    market = run["market"]
    engine = run["engine"]
    params = run["params"]
    prices = run["prices"]
    data = engine.data  # type: ignore[attr-defined]
    view = market.network.view  # type: ignore[attr-defined]
    base = copy.deepcopy(market.network.loaded.net)  # type: ignore[attr-defined]
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
    base.bus["min_vm_pu"] = params.v_min_pu  # type: ignore[attr-defined]
    base.bus["max_vm_pu"] = params.v_max_pu  # type: ignore[attr-defined]
    base.line["max_loading_percent"] = params.max_line_loading_percent  # type: ignore[attr-defined]
    base.trafo["max_loading_percent"] = params.max_trafo_loading_percent  # type: ignore[attr-defined]
    for i in base.ext_grid.index:
        base.ext_grid.at[i, "max_p_mw"] = 1e3
        base.ext_grid.at[i, "min_p_mw"] = -1e3
        base.ext_grid.at[i, "max_q_mvar"] = 1e3
        base.ext_grid.at[i, "min_q_mvar"] = -1e3
    buses = np.array([b.index for b in view.buses])
    bl = data.blocks
    fixed_p = data.fixed_p_mw.copy()
    for unit in data.storage:  # held at its profile, as in feederdao's comparison run
        fixed_p[:, unit.bus_pos] += unit.profile_mw
    build = solve = 0.0
    objective = 0.0
    converged = 0
    for t in range(data.n_periods):
        t0 = time.perf_counter()
        net = copy.deepcopy(base)
        pp.create_loads(
            net, buses=buses, p_mw=fixed_p[t], q_mvar=data.fixed_q_mvar[t], controllable=False
        )
        sel = np.flatnonzero(bl.period == t)
        buy, sell = sel[bl.is_buy[sel]], sel[~bl.is_buy[sel]]
        if len(buy):
            e = pp.create_loads(
                net,
                buses=buses[bl.bus_pos[buy]],
                p_mw=0.0,
                controllable=True,
                min_p_mw=0.0,
                max_p_mw=bl.quantity[buy],
                min_q_mvar=0.0,
                max_q_mvar=0.0,
            )
            pp.create_poly_costs(net, e, "load", cp1_eur_per_mw=-bl.price[buy])
        if len(sell):
            e = pp.create_sgens(
                net,
                buses=buses[bl.bus_pos[sell]],
                p_mw=0.0,
                controllable=True,
                min_p_mw=0.0,
                max_p_mw=bl.quantity[sell],
                min_q_mvar=0.0,
                max_q_mvar=0.0,
            )
            pp.create_poly_costs(net, e, "sgen", cp1_eur_per_mw=bl.price[sell])
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
                    net,
                    buses=buses[rows],
                    p_mw=0.0,
                    controllable=True,
                    min_p_mw=0.0,
                    max_p_mw=0.0,
                    min_q_mvar=-q[q > 0],
                    max_q_mvar=q[q > 0],
                )
                pp.create_poly_costs(net, e, "sgen", cp1_eur_per_mw=0.0)
        for i in net.ext_grid.index:
            pp.create_poly_cost(
                net, i, "ext_grid", cp1_eur_per_mw=float(prices.import_eur_per_mwh[t])
            )
        build += time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                (pp.rundcopp if dc else pp.runopp)(net)
            objective += float(net.res_cost) * data.period_hours
            converged += 1
        except Exception:  # an OPF that does not converge is counted, not fatal
            pass
        solve += time.perf_counter() - t0
    return {
        "build_s": build,
        "solve_s": solve,
        "total_s": build + solve,
        "converged": converged,
        "objective_eur": objective,
    }


def one(code: str, periods: int, repeat: int, start: datetime, peers: bool) -> dict[str, object]:
    run = _feederdao(code, periods, repeat, start)
    out = {k: v for k, v in run.items() if k not in ("market", "prices", "params", "engine")}
    if peers:
        out["runopp"] = _pandapower_opf(run, dc=False)
        out["rundcopp"] = _pandapower_opf(run, dc=True)
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def table(rows: list[dict]) -> str:  # type: ignore[type-arg]
    head = (
        "| network | buses | periods | build s | solve s | AC check s | total s | re-clear s "
        "| iterations | AC ok | runopp s (conv.) | ratio | objective Δ vs runopp | "
        "rundcopp s | storage-enabled s | peak MiB |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ro = r.get("runopp") or {}
        dc = r.get("rundcopp") or {}
        ratio = ro["total_s"] / r["total_s"] if ro else float("nan")
        delta = (
            (r["objective_eur"] - ro["objective_eur"]) / abs(ro["objective_eur"]) * 100
            if ro and ro["converged"] == r["periods"] and ro["objective_eur"]
            else float("nan")
        )
        lines.append(
            f"| {r['network']} | {r['buses']} | {r['periods']} | {r['build_s']:.2f} | "
            f"{r['solve_s']:.2f} | {r['ac_s']:.3f} | {r['total_s']:.2f} | {r['reclear_s']:.2f} | "
            f"{r['iterations']} | {'yes' if r['ac_feasible'] else 'no'} | "
            + (
                f"{ro['total_s']:.1f} ({ro['converged']}/{r['periods']}) | {ratio:.1f}× | "
                f"{delta:+.2f} % | {dc['total_s']:.1f} | "
                if ro
                else "– | – | – | – | "
            )
            + f"{r['storage_total_s']:.2f} | {r['peak_mib']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--network", help="run one network in this process and print JSON")
    ap.add_argument("--periods", type=int, default=96)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--large", action="store_true", help=f"also {LARGE}, one period")
    args = ap.parse_args()
    if args.network:
        start = START.replace(hour=12) if args.periods == 1 else START
        print(json.dumps(one(args.network, args.periods, args.repeat, start, not args.no_peers)))
        return
    jobs = [(n, args.periods, args.no_peers) for n in NETWORKS]
    if args.large:
        jobs.append((LARGE, 1, True))
    rows = []
    for code, periods, no_peers in jobs:
        cmd = [
            sys.executable,
            __file__,
            "--network",
            code,
            "--periods",
            str(periods),
            "--repeat",
            str(args.repeat if periods > 1 else 1),
        ]
        if no_peers:
            cmd.append("--no-peers")
        print(f"running {code} ({periods} periods) …", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(table(rows))


if __name__ == "__main__":
    main()
