"""The end-to-end demo on embedded defaults (``make demo``): workflow calls, rendered."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from rich.console import Console

from feederdao.cli import render
from feederdao.domain.params import GridParameters
from feederdao.grid_model.summary import summarise
from feederdao.report import plots
from feederdao.workflows.clearing import clear_market, open_market

DEMO_NET = "1-LV-rural1--2-sw"
DEMO_DAY = datetime(2016, 6, 21)


def run_demo(console: Console, out_dir: Path = Path("report")) -> None:
    console.rule("[bold]feederdao demo")
    console.print(f"[bold]1.[/] SimBench LV feeder [bold]{DEMO_NET}[/] (PV-heavy future scenario)")
    with console.status("loading the feeder and a day of prosumer bids from its profiles"):
        market = open_market(DEMO_NET, periods=96, start=DEMO_DAY, seed=0)
    opened = market.network
    render.network_summary(console, summarise(opened.loaded.net, opened.view))

    params = GridParameters(v_min_pu=0.95, v_max_pu=1.05, network_fee_eur_per_mwh=5.0)
    console.print(
        f"\n[bold]2.[/] clearing {len(market.bids)} bids and offers of {len(market.registry)} "
        f"participants over 96 periods as an AC-checked OPF"
    )
    with console.status("clearing (LinDistFlow OPF in Pyomo/HiGHS, AC check with pandapower)"):
        result = clear_market(market, params)
    render.clearing_summary(console, result)

    files = result.write(out_dir)
    vm = result.ac_vm_pu if result.ac_vm_pu is not None else result.lp_vm_pu
    loading = (
        result.ac_loading_percent
        if result.ac_loading_percent is not None
        else result.lp_loading_percent
    )
    files += [
        plots.voltage_band(
            out_dir / "voltage_band.png", DEMO_DAY, vm, params.v_min_pu, params.v_max_pu
        ),
        plots.loading(
            out_dir / "line_loading.png",
            DEMO_DAY,
            loading,
            result.branch_names,
            params.max_line_loading_percent,
        ),
        plots.dlmp_heatmap(
            out_dir / "dlmp_heatmap.png", DEMO_DAY, result.prices.dlmp, result.bus_names
        ),
    ]
    console.print(f"\nreport: {len(files)} files in [bold]{out_dir}/[/]")
