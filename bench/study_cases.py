"""A study of many cases on Dask: several SimBench feeders × scenarios × 7 days, on
``local_cluster`` (the embedded default) of two worker processes, chunks of one case-week each.

Prints the wall time, each worker's peak resident memory, the cost per clearing-day (wall time
× workers / clearing-days) and the study's summary per case (energy traded, DLMP range, hours
with a thermal or voltage limit binding, AC check).

    .venv/bin/python bench/study_cases.py [--days 7] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from memory import on_workers

FEEDERS = [
    "1-LV-rural1--2-sw",
    "1-LV-rural2--2-sw",
    "1-LV-rural3--2-sw",
    "1-LV-semiurb4--2-sw",
    "1-LV-urban6--2-sw",
]

SPEC = """\
[study]
name = "cases"
feeders = {feeders}
start = "2016-06-21"
days = {days}
chunk_days = {days}

[[scenarios]]
name = "base"

[[scenarios]]
name = "today"
simbench_scenario = 0

[[scenarios]]
name = "mid"
simbench_scenario = 1

[[scenarios]]
name = "more-pv"
pv_scale = 1.5

[outputs]
dir = "out"
tables = ["prices", "dispatch", "periods"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from distributed import Client

    import feederdao as fd
    from feederdao.workflows.studies.execute import local_cluster

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "cases.toml"
        spec.write_text(SPEC.format(feeders=FEEDERS, days=args.days))
        t0 = time.perf_counter()
        cluster = local_cluster(args.workers)
        try:
            run = fd.run_spec(spec, scheduler=cluster.scheduler_address)
            wall = time.perf_counter() - t0
            with Client(cluster.scheduler_address) as client:
                peaks = on_workers(client)
        finally:
            cluster.close()
        assert not run.failed, run.failed
        summary = run.summary()
    cases = len(summary)
    days = cases * args.days
    mib = "/".join(f"{v:.0f}" for v in sorted(peaks.values()))
    print(
        f"{len(FEEDERS)} feeders × 4 scenarios = {cases} cases × {args.days} days, "
        f"{args.workers} workers"
    )
    print()
    print("| cases | clearing-days | wall s | core-s per clearing-day | peak MiB (per worker) |")
    print("|---|---|---|---|---|")
    print(f"| {cases} | {days} | {wall:.1f} | {wall * args.workers / days:.2f} | {mib} |")
    print()
    print(summary.to_string())


if __name__ == "__main__":
    main()
