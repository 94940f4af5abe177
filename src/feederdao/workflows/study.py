"""A rolling day-ahead study: clear each day of a window and collect the time series."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from feederdao.domain.clearing import ClearingOptions, ClearingResult
from feederdao.domain.params import GridParameters
from feederdao.domain.profiles import FloatArray
from feederdao.grid_model.bids import generate_bids
from feederdao.grid_model.participants import ParticipantRegistry
from feederdao.grid_model.powerflow import AcEvaluator
from feederdao.grid_model.profiles import build_profiles
from feederdao.optimizer.clearing import ClearingEngine
from feederdao.report import plots
from feederdao.workflows.network import open_network

PERIODS_PER_DAY = 96


@dataclass(frozen=True)
class Study:
    network: str
    start: datetime
    days: tuple[ClearingResult, ...]
    dlmp: FloatArray
    vm_pu: FloatArray
    loading_percent: FloatArray
    bus_names: tuple[str, ...]
    branch_names: tuple[str, ...]
    files: tuple[Path, ...]

    @property
    def welfare_eur(self) -> float:
        return float(sum(d.welfare_eur for d in self.days))


def run_study(
    spec: str,
    days: int,
    out_dir: Path,
    start: datetime = datetime(2016, 6, 21),
    seed: int = 0,
    params: GridParameters | None = None,
    options: ClearingOptions | None = None,
) -> Study:
    """Clear ``days`` consecutive days (96 periods each, bids generated from that day's
    profiles with ``seed + day``) and write prices, voltages, loadings and plots."""
    if days <= 0:
        raise ValueError("days must be positive")
    params = params or GridParameters()
    opened = open_network(spec)
    view = opened.view
    ac = AcEvaluator(opened.loaded.net, view)
    results: list[ClearingResult] = []
    for d in range(days):
        day_start = start + timedelta(days=d)
        profiles = build_profiles(opened.loaded, view, day_start, PERIODS_PER_DAY)
        registry = ParticipantRegistry.from_network(view, profiles)
        bids = generate_bids(view, registry, profiles, seed + d)
        engine = ClearingEngine(
            view, profiles, bids, tuple(registry.values()), params, None, options
        )
        results.append(engine.run(ac))
    dlmp = np.vstack([r.prices.dlmp for r in results])
    vm = np.vstack([r.ac_vm_pu if r.ac_vm_pu is not None else r.lp_vm_pu for r in results])
    loading = np.vstack(
        [
            r.ac_loading_percent if r.ac_loading_percent is not None else r.lp_loading_percent
            for r in results
        ]
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    bus_names = tuple(b.name for b in view.buses)
    branch_names = tuple(b.name for b in view.branches)
    files = [
        _series(out_dir / "dlmp.csv", start, bus_names, dlmp),
        _series(out_dir / "voltage_pu.csv", start, bus_names, vm),
        _series(out_dir / "loading_percent.csv", start, branch_names, loading),
        plots.voltage_band(
            out_dir / "voltage_band.png", start, vm, params.v_min_pu, params.v_max_pu
        ),
        plots.loading(
            out_dir / "line_loading.png",
            start,
            loading,
            branch_names,
            params.max_line_loading_percent,
        ),
        plots.dlmp_heatmap(out_dir / "dlmp_heatmap.png", start, dlmp, bus_names),
    ]
    return Study(
        view.name, start, tuple(results), dlmp, vm, loading, bus_names, branch_names, tuple(files)
    )


def _series(path: Path, start: datetime, names: tuple[str, ...], data: FloatArray) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", *names])
        for k, row in enumerate(data):
            w.writerow([(start + timedelta(minutes=15 * k)).isoformat(), *np.round(row, 6)])
    return path
