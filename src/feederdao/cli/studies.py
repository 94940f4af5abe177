"""``feederdao study run SPEC.toml`` and ``feederdao study summary DIR``: studies from a TOML
spec on dask.distributed (docs/studies.md). Only typer and rich are imported here; the work is
imported when a command runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from feederdao.cli.consoles import CommandConsole
from feederdao.cli.errors import err_console, user_errors

if TYPE_CHECKING:
    from feederdao.workflows.studies.execute import ChunkProgress

console = CommandConsole()


def _interrupted(message: str) -> typer.Exit:
    err_console.print(Text.assemble(("interrupted:", "bold yellow"), " ", message), soft_wrap=True)
    return typer.Exit(130)


def _plain(text: str) -> None:
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _line(p: ChunkProgress) -> str:
    left = f", about {p.remaining_s:.0f} s left" if p.done < p.total else ""
    if p.error is not None:
        return f"chunk {p.done}/{p.total} {p.key}: FAILED after retries: {p.error}{left}"
    rec = p.record or {}
    return (
        f"chunk {p.done}/{p.total} {p.key}: {rec.get('days')} day(s) from "
        f"{rec.get('first_day')} in {rec.get('elapsed_s', 0):.1f} s{left}"
    )


class _Progress:
    """A bar with the time left on a terminal; a plain line per chunk otherwise."""

    def __init__(self, total: int, skipped: int) -> None:
        self.total = total
        self.skipped = skipped
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        if console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("chunks"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=console.get(),
            )
            self.bar.start()
            self.task = self.bar.add_task("chunks", total=self.total, completed=self.skipped)
        return self

    def __call__(self, p: ChunkProgress) -> None:
        if self.bar is not None:
            self.bar.console.print(_line(p), soft_wrap=True, markup=False, highlight=False)
            self.bar.update(self.task, completed=p.done)
        else:
            _plain(_line(p))
            sys.stdout.flush()

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@user_errors
def run(
    spec: Annotated[Path, typer.Argument(help="The study spec (TOML, docs/studies.md).")],
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Address of an existing Dask scheduler (tcp://HOST:8786); default: a local "
            "cluster on 127.0.0.1.",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes of the local cluster.")
    ] = 2,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip the chunks already written with the same hash.")
    ] = False,
) -> None:
    """Run a study spec: every case in chunks of days on Dask, written as a Parquet dataset."""
    from feederdao.workflows.studies.plan import plan
    from feederdao.workflows.studies.spec import load_spec

    loaded = load_spec(spec)
    chunks = plan(loaded)
    cases = len({c.case.case_id for c in chunks})
    where = scheduler or f"a local cluster of {workers} worker(s)"
    _plain(
        f"study {loaded.name}: {cases} case(s), {loaded.days} day(s) each, {len(chunks)} "
        f"chunk(s) on {where}; results in {loaded.out}"
    )
    from feederdao.workflows.studies.execute import StudyStopped, run_spec

    show = _Progress(len(chunks), 0)
    try:
        with show:
            done = run_spec(
                loaded,
                scheduler=scheduler,
                workers=workers,
                resume=resume,
                progress=show,
            )
    except StudyStopped as stop:
        r = stop.run
        raise _interrupted(
            f"{r.finished} of {r.total} chunk(s) finished, kept in {r.out}; "
            "run again with --resume to continue"
        ) from None
    except KeyboardInterrupt:
        raise _interrupted(f"the study was stopped; {loaded.out} keeps what finished") from None
    if done.dashboard:
        _plain(f"Dask dashboard: {done.dashboard}")
    _plain(
        f"{len(done.written)} chunk(s) written, {len(done.skipped)} already on disk, "
        f"{len(done.failed)} failed, in {done.elapsed_s:.1f} s"
    )
    if done.finished:
        _summary(loaded.out)
    if done.failed:
        for key, error in sorted(done.failed.items()):
            _plain(f"failed: {key}: {error}")
        raise typer.Exit(1)


@user_errors
def summary(
    folder: Annotated[Path, typer.Argument(help="A study's outputs folder.")],
    plots: Annotated[
        bool,
        typer.Option(
            "--plots", help="Also draw DLMP duration curves, day × hour heat maps, voltage bands."
        ),
    ] = False,
) -> None:
    """Print a study's summary: a row per case (energy, DLMPs, limits' hours, AC check)."""
    _summary(folder)
    if plots:
        from feederdao.workflows.studies.summary import study_plots

        written = study_plots(folder)
        _plain(f"wrote {len(written)} plots to {folder / 'plots'}")


def _summary(folder: Path) -> None:
    import pandas as pd

    from feederdao.workflows.studies.summary import study_summary

    frame = study_summary(folder)
    with pd.option_context("display.width", 10_000, "display.max_columns", None):
        _plain(frame.round(3).to_string())
