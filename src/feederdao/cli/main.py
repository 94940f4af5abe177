"""``feederdao`` console script.

Only typer and rich are imported to start: the command groups of other areas (``gov``,
``opcua``, ``snapshot``, ``sim``, ``serve``, ``db``) are imported when they are run, and each
engineering command imports the libraries it needs inside itself, so ``feederdao --help``
answers at once.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from feederdao.cli import studies
from feederdao.cli.consoles import CommandConsole
from feederdao.cli.errors import err_console, user_errors
from feederdao.errors import ParameterError

if TYPE_CHECKING:
    from feederdao.domain.params import GridParameters
    from feederdao.workflows.study import StudyProgress

#: command groups imported when run: name → (module, attribute, the one-line help shown by
#: ``feederdao --help``; tests/cli check it is the command's own)
LAZY: dict[str, tuple[str, str, str]] = {
    "gov": (
        "feederdao.cli.gov",
        "app",
        "On-chain governance: deploy, propose, vote, queue, execute, read.",
    ),
    "opcua": ("feederdao.cli.opcua", "app", "OPC UA: certificates, browsing, node maps."),
    "snapshot": ("feederdao.cli.snapshot", "app", "Snapshot: proposals and verified tallies."),
    "sim": (
        "feederdao.cli.opcua",
        "sim",
        "Serve a network's controllable devices over OPC UA and simulate them until Ctrl-C.",
    ),
    "serve": (
        "feederdao.cli.serve",
        "serve",
        "Run the market API and the operator loop: each interval is cleared, persisted, "
        "anchored on chain, published over OPC UA, and its setpoints pushed to the feeder.",
    ),
    "db": ("feederdao.cli.serve", "db_app", "The market database: migrations and API keys."),
    "meter": ("feederdao.cli.settle", "meter_app", "Smart meters: keys and signed readings."),
    "settle": (
        "feederdao.cli.settle",
        "settle_app",
        "Metered settlement: verify a root from its evidence, re-settle a rejected one.",
    ),
    "vault": (
        "feederdao.cli.settle",
        "vault_app",
        "The settlement vault: deploy, deposit, balance, withdraw.",
    ),
    "certificates": (
        "feederdao.cli.settle",
        "certificates_app",
        "Energy attribute certificates: deploy, where a holder's energy came from, retire.",
    ),
}


def load_lazy(name: str) -> Any:
    """The click command of the lazily imported group or command ``name``."""
    module, attr, _ = LAZY[name]
    obj = getattr(importlib.import_module(module), attr)
    if not isinstance(obj, typer.Typer):
        single = typer.Typer()
        func = user_errors(obj) if name == "sim" else obj
        single.command(name)(func)
        obj = single
    command = typer.main.get_command(obj)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A group whose listed commands of :data:`LAZY` are imported only when invoked."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in LAZY if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in LAZY and cmd_name not in self.commands:
            # listing (``--help``): the name and help line, without importing anything
            return TyperGroup(name=cmd_name, help=LAZY[cmd_name][2])
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] in LAZY and args[0] not in self.commands:
            self.commands[args[0]] = load_lazy(args[0])
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=LazyGroup,
    help="feederdao: DAO-governed local energy market and grid control for distribution feeders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
network_app = typer.Typer(help="Inspect networks.", no_args_is_help=True)
app.add_typer(network_app, name="network")

console = CommandConsole()

NetOption = Annotated[
    str,
    typer.Option(
        "--net",
        help="SimBench code (1-LV-rural1--2-sw), pandapower built-in (case33bw, cigre_lv, "
        "mv_oberrhein, ...), pandapower JSON file or MATPOWER case (.m).",
    ),
]


def _cache() -> Path | None:
    from feederdao.grid_model.loader import default_cache_dir

    return default_cache_dir()


def _interrupted(message: str) -> typer.Exit:
    """One line on stderr and exit code 130 (the shell's code for Ctrl-C)."""
    err_console.print(Text.assemble(("interrupted:", "bold yellow"), " ", message), soft_wrap=True)
    return typer.Exit(130)


@network_app.command("show")
@user_errors
def network_show(net: NetOption = "1-LV-rural1--2-sw") -> None:
    """Print a network's buses, branches, devices, topology and a base-case AC power flow."""
    try:
        from feederdao.cli import render
        from feederdao.workflows.network import describe_network

        render.network_summary(console.get(), describe_network(net, _cache()))
    except KeyboardInterrupt:
        raise _interrupted("nothing was changed") from None


def _params(v_min: float, v_max: float, fee: float, line_loading: float) -> GridParameters:
    from feederdao.domain.params import GridParameters

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
    str,
    typer.Option(
        "--start",
        help="Window start: YYYY-MM-DD or YYYY-MM-DDTHH:MM on the profiles' clock "
        "(Europe/Berlin), or with a UTC offset.",
    ),
]
Format = Annotated[str, typer.Option("--format", help="Table files: csv, parquet or csv,parquet.")]
Report = Annotated[
    bool, typer.Option("--report", help="Also write the HTML report (index.html) into --out.")
]


def _formats(text: str) -> tuple[str, ...]:
    from feederdao.workflows.outputs import check_formats

    return check_formats([f for f in text.split(",") if f.strip()] or [""])


def _out(out: Path | None, report: bool) -> Path | None:
    """The output folder, checked before any work."""
    from feederdao.workflows.outputs import check_out_dir

    if report and out is None:
        raise ParameterError("--report writes into the --out folder: give --out")
    return check_out_dir(out) if out is not None else None


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
    periods: Annotated[
        int, typer.Option("--periods", help="15-minute periods (at most 672: 7 days).")
    ] = 96,
    start: Start = "2016-06-21",
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the tables (docs/outputs.md).")
    ] = None,
    fmt: Format = "csv",
    report: Report = False,
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
    if storage not in ("optimise", "profile"):
        raise ParameterError(f"--storage must be 'optimise' or 'profile', not {storage!r}")
    try:
        from feederdao.workflows.clearing import check_periods, parse_start

        check_periods(periods, "--periods")
        when = parse_start(start, "--start")
        params = _params(v_min, v_max, fee, max_loading)
        formats = _formats(fmt)
        folder = _out(out, report)

        from feederdao.cli import render
        from feederdao.domain.clearing import ClearingOptions
        from feederdao.workflows.clearing import open_market, run_clearing

        options = ClearingOptions(elastic=elastic, storage=storage)  # type: ignore[arg-type]
        with console.status("loading network and bids"):
            market = open_market(net, periods, when, bids, generate, cache_dir=_cache())
        with console.status(f"clearing {len(market.bids)} bids over {periods} periods"):
            result = run_clearing(market, params, options)
        view = market.network.view
        rated = any(br.rating_mva is not None for br in view.branches)
        render.clearing_summary(console.get(), result.result, rated=rated)
        if folder is not None:
            files = result.write(folder, formats)
            if report:
                page = result.report(folder)
                files += [page, *sorted(folder.glob("*.png"))]
            console.print(f"wrote {len(files)} files to {folder}", soft_wrap=True)
    except KeyboardInterrupt:
        raise _interrupted("the clearing was stopped; nothing was written") from None


def _day_line(p: StudyProgress) -> str:
    r = p.day.result
    ac = r.ac_check
    verdict = (
        "AC ok"
        if ac.feasible
        else ("AC not checked" if not ac.performed else f"AC {len(ac.violations)} violation(s)")
    )
    left = f", about {p.remaining_s:.0f} s left" if p.done < p.total else ""
    return (
        f"day {p.done}/{p.total} {p.day.start:%Y-%m-%d}: welfare {r.welfare_eur:,.2f} EUR, "
        f"DLMP {r.prices.dlmp.min():.1f}–{r.prices.dlmp.max():.1f} EUR/MWh, {verdict} "
        f"({p.day.elapsed_s:.1f} s{left})"
    )


study_app = typer.Typer(
    invoke_without_command=True,
    help="Studies: a rolling day-ahead study of one feeder (the options below), or a study "
    "spec of many feeders, scenarios and parameter sets on Dask (study run, study summary).",
)
app.add_typer(study_app, name="study")
study_app.command("run")(studies.run)
study_app.command("summary")(studies.summary)


@study_app.callback()
@user_errors
def study(
    ctx: typer.Context,
    net: NetOption = "1-LV-rural1--2-sw",
    days: Annotated[
        int, typer.Option("--days", help="Days to clear, one by one (at most 366).")
    ] = 1,
    start: Start = "2016-06-21",
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the tables (docs/outputs.md).")
    ] = Path("study"),
    fmt: Format = "csv",
    report: Report = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated books.")] = 0,
    v_min: VMin = 0.95,
    v_max: VMax = 1.05,
    fee: Fee = 0.0,
    max_loading: Loading = 100.0,
) -> None:
    """Rolling day-ahead clearing over SimBench profiles: prices, voltages, loadings, report.

    Each finished day is written at once; Ctrl-C stops the study and keeps them."""
    if ctx.invoked_subcommand is not None:
        return
    folder: Path | None = None
    try:
        from feederdao.workflows.clearing import parse_start
        from feederdao.workflows.study import check_days

        check_days(days)
        when = parse_start(start, "--start")
        params = _params(v_min, v_max, fee, max_loading)
        formats = _formats(fmt)
        folder = _out(out, report)
        assert folder is not None

        from feederdao.workflows.study import StudyInterrupted, run_study

        try:
            with _StudyProgress(console.get(), days, net) as show:
                result = run_study(
                    net,
                    days,
                    folder,
                    when,
                    seed,
                    params,
                    formats=formats,
                    report=report,
                    progress=show,
                    cache_dir=_cache(),
                )
        except StudyInterrupted as stop:
            done = stop.study
            kept = (
                f"{len(done.days)} of {done.requested_days} day(s) finished, kept in {folder}"
                if done.days
                else f"no day finished; {folder} holds no results"
            )
            raise _interrupted(kept) from None
        for note in result.notes:
            console.print(f"note: {note}", soft_wrap=True)
        console.print(f"wrote {len(result.files)} files to {folder}", soft_wrap=True)
    except KeyboardInterrupt:
        where = f"; {folder} keeps what was finished" if folder is not None else ""
        raise _interrupted(f"the study was stopped{where}") from None


class _StudyProgress:
    """A progress bar with the time left on a terminal; plain lines, one per finished day,
    when the output goes to a file or a pipe."""

    def __init__(self, console: Console, days: int, net: str) -> None:
        self.console = console
        self.days = days
        self.net = net
        self.bar: Any = None

    def __enter__(self) -> _StudyProgress:
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("days, elapsed"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.bar.start()
            self.task = self.bar.add_task(f"clearing {self.net}", total=self.days)
        else:
            self.console.print(f"clearing {self.days} day(s) of {self.net}", soft_wrap=True)
            sys.stdout.flush()
        return self

    def __call__(self, p: StudyProgress) -> None:
        if self.bar is not None:
            self.bar.console.print(_day_line(p), soft_wrap=True)
            self.bar.update(self.task, completed=p.done)
        else:
            self.console.print(_day_line(p), soft_wrap=True)
            sys.stdout.flush()

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command()
@user_errors
def demo() -> None:
    """Run the end-to-end demo on embedded defaults."""
    try:
        from feederdao.cli.demo import run_demo

        run_demo(console.get())
    except KeyboardInterrupt:
        raise _interrupted("the demo was stopped") from None


def main() -> None:
    """The console script: the app, and a Ctrl-C before any command started is one line."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print(Text.assemble(("interrupted", "bold yellow")), soft_wrap=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
