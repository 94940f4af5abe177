"""Benchmark: feederdao's 96-period AC-checked clearing against the solver alone and its peers.

Each network runs in its own process (so peak memory is its own). For every network, the same
window, bids, costs and limits go to

* feederdao, storage held at its profile (the peers' storage has no state of charge): median
  of ``--repeat`` runs, with where the time went (build, load into HiGHS, HiGHS's own solves,
  AC checks, reading results), and a re-clear of a new book of the same shape on the kept model;
* the same linear program solved by HiGHS alone: the last iteration's program written to MPS
  and solved by a fresh highspy instance (whole and split by period, as feederdao splits it);
* PyPSA (linopy + HiGHS), a DC OPF of the same bids and thermal limits (no voltage, reactive
  power or losses), storage held, and again with its storage optimised beside feederdao's
  storage-optimising clearing;
* pandapower's ``runopp`` (AC OPF) looped over the periods where it converges.

Usage::

    python bench/clearing.py                   # the bench feeders, table on stdout
    python bench/clearing.py --large           # also 1-MVLV-urban-all-0-sw, one period
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from peers import ac_objective, pandapower_opf, pypsa_linear_opf

NETWORKS = (
    "1-LV-rural1--2-sw",
    "1-LV-semiurb4--2-sw",
    "1-MV-semiurb--2-sw",
    "1-MV-urban--2-sw",
    "1-MV-comm--2-no_sw",  # meshed
    "case33bw",
)
RUNOPP = ("1-LV-rural1--2-sw", "case33bw")  # where runopp converges in reasonable time
LARGE = "1-MVLV-urban-all-0-sw"
START = datetime(2016, 6, 21)


def highs_alone(lp: Any, split: bool) -> float:
    """HiGHS's own time for ``lp`` read back from MPS files by fresh instances, one after the
    other."""
    import highspy
    from highspy._core import _Highs

    from feederdao.optimizer.highs import HighsSolver

    solver = HighsSolver(lp, threads=1, decompose=split)
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for k, part in enumerate(solver._parts):
            path = os.path.join(tmp, f"part{k}.mps")
            part.highs.writeModel(path)
            h = _Highs()
            h.setOptionValue("output_flag", False)
            h.readModel(path)
            t0 = time.perf_counter()
            h.run()
            total += time.perf_counter() - t0
            assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return total


def _feederdao(code: str, periods: int, repeat: int, start: datetime) -> dict[str, Any]:
    from feederdao.domain import GridParameters
    from feederdao.domain.clearing import ClearingOptions, WholesalePrices
    from feederdao.grid_model import AcEvaluator, generate_bids
    from feederdao.optimizer.clearing import ClearingEngine
    from feederdao.workflows.clearing import open_market

    t_open = time.perf_counter()
    market = open_market(code, periods=periods, start=start, seed=0)
    open_s = time.perf_counter() - t_open
    view = market.network.view
    day = WholesalePrices.day_shape(periods, start_period=start.hour * 4)
    prices = WholesalePrices(day.import_eur_per_mwh, day.import_eur_per_mwh)
    params = GridParameters()
    parts = tuple(market.registry.values())
    ac = AcEvaluator(market.network.loaded.net, view)
    held = ClearingOptions(storage="profile")
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        engine = ClearingEngine(view, market.profiles, market.bids, parts, params, prices, held)
        result = engine.run(ac)
        runs.append((time.perf_counter() - t0, result, engine))
    order = sorted(range(repeat), key=lambda i: runs[i][0])
    total, result, engine = runs[order[len(order) // 2]]
    st = result.stats
    assert engine.model is not None
    alone_whole = highs_alone(engine.model.lp, split=False)
    alone_split = highs_alone(engine.model.lp, split=True) if engine.model.lp.decomposable else None
    # re-clearing: a new book of the same shape (next seed's prices) on a kept model; on an
    # engine of its own, for ``engine`` keeps the book the peers are compared on
    other = generate_bids(view, market.registry, market.profiles, seed=1)
    same_shape = [replace(b, blocks=o.blocks) for b, o in zip(market.bids, other, strict=False)]
    again = ClearingEngine(view, market.profiles, market.bids, parts, params, prices, held)
    again.run(ac)
    t0 = time.perf_counter()
    again.rebid(same_shape, ac)
    reclear = time.perf_counter() - t0
    t0 = time.perf_counter()
    with_storage = ClearingEngine(
        view, market.profiles, market.bids, parts, params, prices, ClearingOptions()
    )
    stored = with_storage.run(ac)
    storage_s = time.perf_counter() - t0
    return {
        "network": code,
        "buses": len(view.buses),
        "topology": view.topology,
        "periods": periods,
        "bids": len(market.bids),
        "open_s": open_s,
        "variables": st.n_variables,
        "constraints": st.n_constraints,
        "blocks": st.blocks,
        "build_s": st.build_s,
        "load_s": st.load_s,
        "solve_s": st.solve_s,
        "ac_s": st.ac_check_s,
        "read_s": st.read_s,
        "total_s": total,
        "totals": [r[0] for r in runs],
        "reclear_s": reclear,
        "iterations": st.iterations,
        "stopped": result.ac_check.stopped,
        "ac_feasible": result.ac_check.feasible,
        "objective_eur": ac_objective(engine, result),
        "highs_alone_s": alone_whole,
        "highs_alone_split_s": alone_split,
        "storage_total_s": storage_s,
        "storage_solve_s": stored.stats.solve_s,
        "storage_iterations": stored.stats.iterations,
        "storage_feasible": stored.ac_check.feasible,
        "engine": engine,
        "storage_engine": with_storage,
        "net": market.network.loaded.net,
    }


def one(code: str, periods: int, repeat: int, start: datetime, peers: bool) -> dict[str, Any]:
    run = _feederdao(code, periods, repeat, start)
    engine, net = run.pop("engine"), run.pop("net")
    storage_engine = run.pop("storage_engine")
    out = dict(run)
    if peers and code in RUNOPP:
        out["runopp"] = asdict(pandapower_opf(engine, net))
    if peers:
        out["pypsa"] = asdict(pypsa_linear_opf(engine))
        out["pypsa_storage"] = asdict(pypsa_linear_opf(storage_engine, storage=True))
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _peer_s(peer: dict[str, Any] | None) -> float:
    return float(peer["build_s"] + peer["solve_s"]) if peer else float("nan")


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| network | buses | blocks | total s | build / load / HiGHS / AC / read % "
        "| iterations (stop) | AC ok | HiGHS alone s (split) | overhead above HiGHS "
        "| PyPSA s | ratio to PyPSA | re-clear s (% of first) | storage optimised s "
        "| PyPSA storage s | ratio | objective vs runopp | peak MiB |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        tot = r["total_s"]
        shares = " / ".join(
            f"{100 * r[k] / tot:.0f}" for k in ("build_s", "load_s", "solve_s", "ac_s", "read_s")
        )
        py, pys, ro = r.get("pypsa"), r.get("pypsa_storage"), r.get("runopp")
        delta = "–"
        if ro and ro["converged"] == r["periods"] and ro["objective_eur"]:
            delta = f"{(r['objective_eur'] - ro['objective_eur']) / abs(ro['objective_eur']):+.2%}"
        split = r["highs_alone_split_s"]
        alone = f"{r['highs_alone_s']:.2f}" + (f" ({split:.2f})" if split is not None else "")
        cells = [
            r["network"] + (" (meshed)" if r["topology"] == "meshed" else ""),
            r["buses"],
            r["blocks"],
            f"{tot:.2f}",
            shares,
            f"{r['iterations']} ({r['stopped']})",
            "yes" if r["ac_feasible"] else "no",
            alone,
            f"{(tot - r['solve_s']) / max(r['solve_s'], 1e-9):.0%}",
            f"{_peer_s(py):.2f}",
            f"{tot / _peer_s(py):.2f}",
            f"{r['reclear_s']:.2f} ({r['reclear_s'] / tot:.0%})",
            f"{r['storage_total_s']:.2f}",
            f"{_peer_s(pys):.2f}",
            f"{r['storage_total_s'] / _peer_s(pys):.2f}",
            delta,
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
    ap.add_argument("--only", nargs="*", help="run these networks only")
    args = ap.parse_args()
    if args.network:
        start = START.replace(hour=12) if args.periods == 1 else START
        print(json.dumps(one(args.network, args.periods, args.repeat, start, not args.no_peers)))
        return
    jobs = [(n, args.periods, args.no_peers) for n in (args.only or NETWORKS)]
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
            print(done.stderr[-3000:], file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    Path("bench/last_clearing.json").write_text(json.dumps(rows, indent=1))
    print(f"load average during the run: {os.getloadavg()[0]:.2f} (1 min)")
    print(table(rows))


if __name__ == "__main__":
    main()
