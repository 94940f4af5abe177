"""Run a study's chunks on dask.distributed and write them as they finish.

By default a :class:`distributed.LocalCluster` of worker processes on 127.0.0.1 (one thread
each: the clearing is CPU-bound Python and numba), its dashboard off; ``scheduler`` (an
address such as ``tcp://10.0.0.5:8786``) runs on an existing cluster whose workers have
feederdao installed and see ``outputs.dir`` (they write the chunks' files themselves). Dask
schedules; we partition, write and keep the manifest. The local cluster's dashboard listens on
127.0.0.1 on a free port (shown when bokeh is installed: ``pip install bokeh``).



* a task is a chunk (:mod:`~feederdao.workflows.studies.plan`), never a single period;
* each worker opens a network once and keeps it (:class:`NetworkCache`, a worker plugin);
* a chunk that raises is retried (``retries``) and then recorded as failed in the manifest;
  the other chunks go on. A worker lost mid-chunk (killed, out of memory) is Dask's to handle:
  its chunk runs again elsewhere;
* Ctrl-C cancels what is left: every chunk already in the manifest stays, and ``resume``
  continues from there.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from distributed.diagnostics.plugin import WorkerPlugin

from feederdao.errors import FeederDaoError, ParameterError
from feederdao.grid_model.participants import ParticipantRegistry
from feederdao.grid_model.powerflow import AcEvaluator
from feederdao.optimizer.highs import Basis
from feederdao.workflows.network import OpenNetwork, keep_for_the_run, open_network
from feederdao.workflows.outputs import check_out_dir, long
from feederdao.workflows.studies.dataset import Manifest, partition, read_study, write_part
from feederdao.workflows.studies.plan import Chunk, plan
from feederdao.workflows.studies.spec import StudySpec, load_spec
from feederdao.workflows.study import DayResult, clear_day, days_frame

PLUGIN = "feederdao-networks"


class StudyError(FeederDaoError, RuntimeError):
    """A study could not run (the cluster cannot be reached or started)."""


class StudyStopped(KeyboardInterrupt):
    """Ctrl-C stopped a study; ``run`` holds what was finished (also in the manifest)."""

    def __init__(self, run: StudyRun) -> None:
        super().__init__(
            f"stopped with {run.finished} of {run.total} chunk(s) finished, kept in {run.out}"
        )
        self.run = run


class NetworkCache:
    """The networks a worker has opened (and an AC evaluator for each), kept across tasks.
    A lock per network: chunks of one network take turns on its evaluator. ``threads`` is
    the worker's thread count, which each clearing's solver uses (not more: the other workers
    have the other cores)."""

    def __init__(self, cache_dir: Path | None = None, threads: int = 1) -> None:
        self.cache_dir = cache_dir
        self.threads = max(1, threads)
        self._nets: dict[str, tuple[OpenNetwork, AcEvaluator, threading.Lock]] = {}
        self._lock = threading.Lock()
        self.opened = 0

    def get(self, net: str) -> tuple[OpenNetwork, AcEvaluator, threading.Lock]:
        with self._lock:
            if net not in self._nets:
                opened = open_network(net, self.cache_dir)
                ac = AcEvaluator(opened.loaded.net, opened.view)
                self._nets[net] = (opened, ac, threading.Lock())
                self.opened += 1
                keep_for_the_run()
            return self._nets[net]


class NetworkCachePlugin(WorkerPlugin):  # type: ignore[misc]
    """A Dask worker plugin that gives each worker its :class:`NetworkCache`."""

    name = PLUGIN

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self.cache: NetworkCache | None = None

    def setup(self, worker: Any) -> None:
        self.cache = NetworkCache(self.cache_dir, int(getattr(worker.state, "nthreads", 1)))

    def teardown(self, worker: Any) -> None:
        self.cache = None


def _worker_cache() -> NetworkCache:
    from distributed import get_worker

    plugin = get_worker().plugins[PLUGIN]
    assert isinstance(plugin, NetworkCachePlugin) and plugin.cache is not None
    return plugin.cache


def clear_chunk(spec: StudySpec, chunk: Chunk, cache: NetworkCache) -> list[DayResult]:
    """The chunk's days, cleared one after the other after its warm-up days (whose results
    only set the storage's state of charge at the chunk's start)."""
    opened, ac, lock = cache.get(chunk.case.net)
    sc = chunk.case.scenario
    participants = (
        ParticipantRegistry.from_json(opened.view, spec.participants) if spec.participants else None
    )
    params = chunk.case.grid_parameters()
    options = replace(spec.clearing_options(), threads=cache.threads)
    soc: Mapping[str, float] = {}
    warm: Basis | None = None
    out: list[DayResult] = []
    with lock:
        for d in range(chunk.first - chunk.warmup, chunk.first + chunk.days):
            day = clear_day(
                opened,
                spec.day(d),
                spec.seed + d,
                params,
                options,
                ac=ac,
                soc_percent=soc,
                load_scale=sc.load_scale,
                pv_scale=sc.pv_scale,
                participants=participants,
                warm=warm,
            )
            soc, warm = day.storage_soc_percent, day.basis
            if d >= chunk.first:
                out.append(replace(day, basis=None))
    return out


def write_chunk(spec: StudySpec, chunk: Chunk, days: list[DayResult], out: Path) -> list[str]:
    """The chunk's tables as one Parquet part each; returns their paths relative to ``out``."""
    files = []
    frames: dict[str, list[pd.DataFrame]] = {t: [] for t in spec.tables}
    for day in days:
        for name, frame in day.tables.items():
            if name in frames:
                frames[name].append(long(frame, name, pd.Timestamp(day.start)))
    tables: list[tuple[str, pd.DataFrame]] = [
        (name, pd.concat(parts, ignore_index=True)) for name, parts in frames.items()
    ]
    daily = days_frame(days).reset_index()
    daily.insert(1, "day", [chunk.first + k for k in range(len(days))])
    tables.append(("days", daily))
    for name, frame in tables:
        path = write_part(frame, partition(out, name, chunk.case.case_id, chunk.index))
        files.append(path.relative_to(out).as_posix())
    return files


def run_chunk(spec: StudySpec, chunk: Chunk, cache: NetworkCache | None = None) -> dict[str, Any]:
    """Clear and write one chunk (on a Dask worker: with that worker's network cache);
    returns its manifest record."""
    t0 = time.perf_counter()
    cache = cache or _worker_cache()
    days = clear_chunk(spec, chunk, cache)
    files = write_chunk(spec, chunk, days, spec.out)
    return {
        "case": chunk.case.case_id,
        "chunk": chunk.index,
        "digest": chunk.digest,
        "first_day": spec.day(chunk.first).date().isoformat(),
        "days": chunk.days,
        "warmup_days": chunk.warmup,
        "parameters": chunk.case.parameters,
        "files": files,
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "pid": os.getpid(),
    }


@dataclass(frozen=True)
class ChunkProgress:
    """``done`` of ``total`` chunks finished (``skipped`` of them already on disk), the one
    just finished (its record, or its error), the time so far and an estimate of what is
    left (seconds)."""

    done: int
    total: int
    skipped: int
    key: str
    record: dict[str, Any] | None
    error: str | None
    elapsed_s: float

    @property
    def remaining_s(self) -> float:
        ran = self.done - self.skipped
        return self.elapsed_s / ran * (self.total - self.done) if ran > 0 else 0.0


@dataclass
class StudyRun:
    """What a run of a study did: every chunk of the plan, the ones it wrote now, the ones it
    found on disk, and the failures (chunk → error)."""

    spec: StudySpec
    total: int
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    dashboard: str | None = None
    elapsed_s: float = 0.0

    @property
    def out(self) -> Path:
        return self.spec.out

    @property
    def finished(self) -> int:
        return len(self.written) + len(self.skipped)

    def table(self, name: str = "prices") -> pd.DataFrame:
        """One table of the dataset (:func:`~feederdao.workflows.studies.dataset.read_study`)."""
        return read_study(self.out, name)

    def summary(self) -> pd.DataFrame:
        from feederdao.workflows.studies.summary import study_summary

        return study_summary(self.out)


def run_spec(
    spec: StudySpec | Path | str,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    resume: bool = False,
    retries: int = 2,
    progress: Callable[[ChunkProgress], None] | None = None,
    cache_dir: Path | None = None,
) -> StudyRun:
    """Run every chunk of ``spec`` (a :class:`StudySpec` or the path of its TOML file) not
    already on disk (with ``resume``: same digest, all its files) on ``scheduler`` or a
    LocalCluster of ``workers`` processes; returns the run (``run.table("prices")``,
    ``run.summary()``: pandas DataFrames)."""
    if not isinstance(spec, StudySpec):
        spec = load_spec(spec)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers must be a positive whole number, not {workers!r}")
    chunks = plan(spec)
    out = check_out_dir(spec.out, "outputs.dir")
    manifest = Manifest.open(out, spec.name, resume)
    manifest.keep_only([c.key for c in chunks], out)
    todo = [c for c in chunks if not manifest.done(c.key, c.digest, out)]
    run = StudyRun(spec, len(chunks), skipped=[c.key for c in chunks if c not in todo])
    t0 = time.perf_counter()
    if not todo:
        return run
    client, cluster = _connect(scheduler, workers)
    try:
        run.dashboard = _dashboard(client)
        client.register_plugin(NetworkCachePlugin(cache_dir), name=PLUGIN)
        _execute(client, spec, todo, manifest, run, retries, progress, t0)
    finally:
        run.elapsed_s = time.perf_counter() - t0
        client.close()
        if cluster is not None:
            cluster.close()
    return run


def _execute(
    client: Any,
    spec: StudySpec,
    todo: list[Chunk],
    manifest: Manifest,
    run: StudyRun,
    retries: int,
    progress: Callable[[ChunkProgress], None] | None,
    t0: float,
) -> None:
    from distributed import as_completed

    futures = {
        client.submit(
            run_chunk, spec, c, key=f"chunk-{c.digest[:16]}", retries=retries, pure=False
        ): c
        for c in todo
    }
    try:
        for fut in as_completed(list(futures)):  # type: ignore[no-untyped-call]
            chunk = futures[fut]
            record: dict[str, Any] | None = None
            error: str | None = None
            if fut.status == "finished":
                record = fut.result()
                manifest.add(chunk.key, record)
                run.written.append(chunk.key)
            else:
                exc = fut.exception()
                error = f"{type(exc).__name__}: {exc}"
                manifest.fail(chunk.key, error)
                run.failed[chunk.key] = error
            fut.release()
            if progress is not None:
                progress(
                    ChunkProgress(
                        run.finished + len(run.failed),
                        run.total,
                        len(run.skipped),
                        chunk.key,
                        record,
                        error,
                        time.perf_counter() - t0,
                    )
                )
    except KeyboardInterrupt:
        client.cancel(list(futures))
        run.elapsed_s = time.perf_counter() - t0
        raise StudyStopped(run) from None


def _connect(scheduler: str | None, workers: int) -> tuple[Any, Any]:
    import logging

    from distributed import Client

    logging.getLogger("distributed").setLevel(logging.ERROR)
    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise StudyError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        cluster = local_cluster(workers)
    except (OSError, TimeoutError) as exc:
        raise StudyError(f"cannot start a local Dask cluster: {exc}") from None
    return Client(cluster), cluster  # type: ignore[no-untyped-call]


def local_cluster(workers: int) -> Any:
    """The embedded default: ``workers`` one-thread worker processes on 127.0.0.1, the
    dashboard on a free loopback port. The workers' statistical profiler is off: sampling the
    stack every 10 ms made a clearing-day 12 % slower on a worker than in one process (the
    dashboard's profile page stays empty)."""
    import logging

    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # loopback, a free port: never a fixed 8787
            silence_logs=logging.CRITICAL,  # failures are reported per chunk, once
        )


def _dashboard(client: Any) -> str | None:
    """The dashboard's address, when it is served (it needs bokeh, which is optional)."""
    import importlib.util

    if importlib.util.find_spec("bokeh") is None:
        return None
    link = client.dashboard_link
    return str(link) if link else None
