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
import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from feederdao.workflows.validate import pandapower_opf, pypsa_linear_opf

NETWORKS = ("1-LV-rural1--2-sw", "1-LV-semiurb4--2-sw", "1-MV-semiurb--2-sw", "case33bw")
LARGE = "1-MVLV-urban-all-0-sw"
START = datetime(2016, 6, 21)


def _feederdao(code: str, periods: int, repeat: int, start: datetime) -> dict[str, object]:
    from feederdao.domain import GridParameters
    from feederdao.domain.clearing import ClearingOptions, WholesalePrices
    from feederdao.grid_model import AcEvaluator
    from feederdao.optimizer.clearing import ClearingEngine
    from feederdao.workflows.clearing import open_market
    from feederdao.workflows.validate import ac_objective

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
    ac_cost = ac_objective(engine, result)
    t0 = time.perf_counter()
    lp_only = ClearingEngine(
        view,
        market.profiles,
        market.bids,
        parts,
        params,
        prices,
        ClearingOptions(storage="profile", ac_check=False),
    ).run(None)
    lp_only_s = time.perf_counter() - t0
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
        "lp_only_s": lp_only_s,
        "lp_only_welfare": lp_only.welfare_eur,
        "storage_objective_eur": -with_storage.welfare_eur,
        "market": market,
        "prices": prices,
        "params": params,
        "engine": engine,
    }


def one(code: str, periods: int, repeat: int, start: datetime, peers: bool) -> dict[str, object]:
    run = _feederdao(code, periods, repeat, start)
    out = {k: v for k, v in run.items() if k not in ("market", "prices", "params", "engine")}
    engine, net = run["engine"], run["market"].network.loaded.net  # type: ignore[attr-defined]
    if peers:
        out["runopp"] = asdict(pandapower_opf(engine, net))  # type: ignore[arg-type]
        out["rundcopp"] = asdict(pandapower_opf(engine, net, dc=True))  # type: ignore[arg-type]
    out["pypsa"] = asdict(pypsa_linear_opf(engine))  # type: ignore[arg-type]
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _total(peer: dict) -> float:  # type: ignore[type-arg]
    return float(peer["build_s"] + peer["solve_s"])


def table(rows: list[dict]) -> str:  # type: ignore[type-arg]
    head = (
        "| network | buses | periods | build s | solve s | AC check s | total s | re-clear s "
        "| AC iterations | AC ok | runopp s (conv.) | speed-up vs runopp "
        "| objective vs runopp | rundcopp s | PyPSA s | ratio to PyPSA | LP only s "
        "| storage optimised s | peak MiB |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ro, dc, py = r.get("runopp"), r.get("rundcopp"), r.get("pypsa")
        cells = [
            r["network"],
            r["buses"],
            r["periods"],
            f"{r['build_s']:.2f}",
            f"{r['solve_s']:.2f}",
            f"{r['ac_s']:.3f}",
            f"{r['total_s']:.2f}",
            f"{r['reclear_s']:.2f}",
            r["iterations"],
            "yes" if r["ac_feasible"] else "no",
        ]
        if ro:
            full = ro["converged"] == r["periods"] and ro["objective_eur"] != 0
            delta = (
                (r["objective_eur"] - ro["objective_eur"]) / abs(ro["objective_eur"]) * 100
                if full
                else float("nan")
            )
            cells += [
                f"{_total(ro):.1f} ({ro['converged']}/{r['periods']})",
                f"{_total(ro) / r['total_s']:.1f}×" if full else "–",
                f"{delta:+.2f} %" if full else "–",
                f"{_total(dc):.1f}",
            ]
        else:
            cells += ["–"] * 4
        cells += [
            f"{_total(py):.2f}" if py else "–",
            f"{r['total_s'] / _total(py):.2f}" if py else "–",
            f"{r['lp_only_s']:.2f}",
            f"{r['storage_total_s']:.2f}",
            f"{r['peak_mib']:.0f}",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
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
    Path("bench/last_clearing.json").write_text(json.dumps(rows, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
