"""``feederdao`` console script."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from feederdao.cli import gov, opcua, render, serve, snapshot
from feederdao.cli.errors import user_errors
from feederdao.domain.params import GridParameters
from feederdao.errors import ParameterError

app = typer.Typer(
    help="feederdao: DAO-governed local energy market and grid control for distribution feeders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
network_app = typer.Typer(help="Inspect networks.", no_args_is_help=True)
app.add_typer(network_app, name="network")
app.add_typer(gov.app, name="gov")
app.add_typer(opcua.app, name="opcua")
app.add_typer(snapshot.app, name="snapshot")
app.command("sim")(user_errors(opcua.sim))
app.command("serve")(serve.serve)
app.add_typer(serve.db_app, name="db")

console = Console()

NetOption = Annotated[
    str,
    typer.Option(
        "--net",
        help="SimBench code (1-LV-rural1--2-sw), pandapower built-in (case33bw, cigre_lv, "
        "mv_oberrhein, ...), pandapower JSON file or MATPOWER case (.m).",
    ),
]


@network_app.command("show")
@user_errors
def network_show(net: NetOption = "1-LV-rural1--2-sw") -> None:
    """Print a network's buses, branches, devices, topology and a base-case AC power flow."""
    from feederdao.workflows.network import describe_network

    render.network_summary(console, describe_network(net))


def _params(v_min: float, v_max: float, fee: float, line_loading: float) -> GridParameters:
    return GridParameters(
        v_min_pu=v_min,
        v_max_pu=v_max,
        network_fee_eur_per_mwh=fee,
        max_line_loading_percent=line_loading,
        max_trafo_loading_percent=line_loading,
    )


VMin = Annotated[float, typer.Option("--v-min", help="Lower voltage limit (pu).")]
VMax = Annotated[float, typer.Option("--v-max", help="Upper voltage limit (pu).")]
Fee = Annotated[float, typer.Option("--fee", help="Network fee on bought energy (EUR/MWh).")]
Loading = Annotated[
    float, typer.Option("--max-loading", help="Line and transformer loading limit (%).")
]
Start = Annotated[
    datetime,
    typer.Option("--start", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M"], help="Window start."),
]


@app.command()
@user_errors
def clear(
    net: NetOption = "1-LV-rural1--2-sw",
    bids: Annotated[
        Path | None, typer.Option("--bids", help="Bid/offer book (.csv or .json, docs/bids.md).")
    ] = None,
    generate: Annotated[
        int, typer.Option("--generate", help="Seed of a generated book (when no --bids).")
    ] = 0,
    periods: Annotated[int, typer.Option("--periods", min=1, help="15-minute periods.")] = 96,
    start: Start = datetime(2016, 6, 21),
    out: Annotated[Path | None, typer.Option("--out", help="Write results here.")] = None,
    v_min: VMin = 0.95,
    v_max: VMax = 1.05,
    fee: Fee = 0.0,
    max_loading: Loading = 100.0,
    elastic: Annotated[
        bool, typer.Option("--elastic", help="Price shedding/curtailment instead of failing.")
    ] = False,
    storage: Annotated[
        str, typer.Option("--storage", help="'optimise' storage or hold it at its 'profile'.")
    ] = "optimise",
) -> None:
    """Clear a bid book on a network as an AC-checked OPF and print prices and limits."""
    from feederdao.domain.clearing import ClearingOptions
    from feederdao.workflows.clearing import clear_market, open_market

    if storage not in ("optimise", "profile"):
        raise ParameterError(f"--storage must be 'optimise' or 'profile', not {storage!r}")
    params = _params(v_min, v_max, fee, max_loading)
    options = ClearingOptions(elastic=elastic, storage=storage)  # type: ignore[arg-type]
    with console.status("loading network and bids"):
        market = open_market(net, periods, start, bids, generate)
    with console.status(f"clearing {len(market.bids)} bids over {periods} periods"):
        result = clear_market(market, params, options)
    render.clearing_summary(console, result)
    if out is not None:
        files = result.write(out)
        console.print(f"wrote {len(files)} files to {out}")


@app.command()
@user_errors
def study(
    net: NetOption = "1-LV-rural1--2-sw",
    days: Annotated[int, typer.Option("--days", min=1, help="Days to clear, one by one.")] = 1,
    start: Start = datetime(2016, 6, 21),
    out: Annotated[Path, typer.Option("--out", help="Folder for CSVs and plots.")] = Path("study"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated books.")] = 0,
    v_min: VMin = 0.95,
    v_max: VMax = 1.05,
    fee: Fee = 0.0,
    max_loading: Loading = 100.0,
) -> None:
    """Rolling day-ahead clearing over SimBench profiles: prices, voltages, loadings, plots."""
    from feederdao.workflows.study import run_study

    params = _params(v_min, v_max, fee, max_loading)
    with console.status(f"clearing {days} day(s) of {net}"):
        result = run_study(net, days, out, start, seed, params)
    for day, r in enumerate(result.days):
        ac = r.ac_check
        console.print(
            f"day {day + 1}: welfare {r.welfare_eur:,.2f} EUR, DLMP {r.prices.dlmp.min():.1f}–"
            f"{r.prices.dlmp.max():.1f} EUR/MWh, AC "
            + ("ok" if ac.feasible else f"[red]{len(ac.violations)} violation(s)[/]")
        )
    console.print(f"wrote {len(result.files)} files to {out}")


@app.command()
@user_errors
def demo() -> None:
    """Run the end-to-end demo on embedded defaults."""
    from feederdao.cli.demo import run_demo

    run_demo(console)


if __name__ == "__main__":  # pragma: no cover
    app()
