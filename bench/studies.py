"""Studies on Dask: the serial study against the same study on a LocalCluster of worker
processes on this machine.

The serial runs are ``feederdao.run_study`` in this process (one day after the other, storage
carried, every table written as Parquet, as the distributed runs write them), with the
clearing's default two solver threads and with one; the distributed runs
are ``feederdao.run_spec`` on a LocalCluster of 1 and 2 worker processes (one thread each, and
one solver thread per clearing) with chunks of ``--chunk-days`` days and one warm-up day per
chunk.
Wall time includes starting the workers (also shown on its own: a study run with
``--scheduler`` on a running cluster does not pay it) and each worker's first network load;
"peak MiB" is each worker's peak resident memory (the serial row: this process's).

    .venv/bin/python bench/studies.py [--feeder case33bw] [--days 4] [--chunk-days 2]
        [--workers 1,2] [--no-serial] [--start 2016-06-21] [--keep DIR]

``--no-serial`` leaves the serial runs out (a year of an MV feeder in one process takes an
hour); the speed-up columns are then empty. ``--keep DIR`` writes each distributed study into
``DIR/<n>-workers`` and keeps it (its manifest has every chunk's time).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from memory import on_workers, peak_mib

SPEC = """\
[study]
name = "bench"
feeders = ["{feeder}"]
start = "{start}"
days = {days}
chunk_days = {chunk}
warmup_days = 1

[outputs]
dir = "{out}"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeder", default="case33bw")
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--chunk-days", type=int, default=2)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--no-serial", action="store_true", help="distributed runs only")
    parser.add_argument("--start", default="2016-06-21", help="the first day (2016)")
    parser.add_argument("--keep", type=Path, help="write the distributed studies here")
    args = parser.parse_args()

    from distributed import Client

    import feederdao as fd
    from feederdao.domain.clearing import ClearingOptions
    from feederdao.workflows.studies.execute import local_cluster

    rows = []
    serial: dict[int, float] = {}
    for threads in () if args.no_serial else (2, 1):
        with tempfile.TemporaryDirectory() as scratch:
            t0 = time.perf_counter()
            fd.run_study(
                args.feeder,
                args.days,
                out=Path(scratch) / "serial",
                start=args.start,
                options=ClearingOptions(threads=threads),
                formats=("parquet",),
            )
            serial[threads] = time.perf_counter() - t0
        name = f"serial (run_study, {threads} solver thread{'s' if threads > 1 else ''})"
        rows.append((name, 1, args.days, "-", serial[threads], 0.0, f"{peak_mib():.0f}"))
    for n in [int(w) for w in args.workers.split(",")]:
        with tempfile.TemporaryDirectory() as scratch:
            tmp = Path(scratch) if args.keep is None else args.keep / f"{n}-workers"
            tmp.mkdir(parents=True, exist_ok=True)
            spec = tmp / "bench.toml"
            spec.write_text(
                SPEC.format(
                    feeder=args.feeder,
                    start=args.start,
                    days=args.days,
                    chunk=args.chunk_days,
                    out="out",
                )
            )
            t0 = time.perf_counter()
            cluster = local_cluster(n)
            started = time.perf_counter() - t0
            try:
                run = fd.run_spec(spec, scheduler=cluster.scheduler_address)
                wall = time.perf_counter() - t0
                with Client(cluster.scheduler_address) as client:
                    peaks = on_workers(client)
            finally:
                cluster.close()
            assert not run.failed, run.failed
            chunks = len(run.written)
            mib = "/".join(f"{v:.0f}" for v in sorted(peaks.values()))
            rows.append(
                (f"LocalCluster, {n} worker(s)", n, args.days, str(chunks), wall, started, mib)
            )

    print(f"feeder {args.feeder}, {args.days} day(s) of 96 periods, chunks of {args.chunk_days}")
    print()
    print(
        "| run | workers | days | chunks | wall s | of it starting the workers s "
        "| speed-up vs serial (2 threads) | vs serial (1 thread) "
        "| on a started cluster vs serial (1 thread) | core-s per clearing-day "
        "| peak MiB (per worker) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, n, days, chunks, wall, started, mib in rows:
        two, one, running = (
            f"{serial[k] / t:.2f}×" if k in serial else "-"
            for k, t in ((2, wall), (1, wall), (1, wall - started))
        )
        print(
            f"| {name} | {n} | {days} | {chunks} | {wall:.1f} | {started:.1f} | {two} | {one} "
            f"| {running} | {wall * n / days:.2f} | {mib} |"
        )


if __name__ == "__main__":
    main()
