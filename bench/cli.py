"""Command-line turnaround: how long the commands an engineer types take, start to finish.

Each command runs as a fresh process (as typed in a shell), several times; the table shows
the median and the fastest run. ``network show`` on a SimBench grid is timed with an empty
cache (the grid extracted from SimBench's data set) and with the cache filled. Target:
``feederdao --help`` under 0.5 s.

    .venv/bin/python bench/cli.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

FEEDERDAO = [sys.executable, "-m", "feederdao.cli.main"]


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds), min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "FEEDERDAO_CACHE_DIR": cache}
        cold = {**env, "FEEDERDAO_CACHE_DIR": ""}
        rows = [
            ("python -c pass (the interpreter)", [sys.executable, "-c", "pass"], env, args.runs),
            (
                "python -c 'import feederdao'",
                [sys.executable, "-c", "import feederdao"],
                env,
                args.runs,
            ),
            ("feederdao --help", [*FEEDERDAO, "--help"], env, args.runs),
            ("feederdao clear --help", [*FEEDERDAO, "clear", "--help"], env, args.runs),
            ("feederdao gov --help", [*FEEDERDAO, "gov", "--help"], env, args.runs),
            (
                "network show --net case33bw",
                [*FEEDERDAO, "network", "show", "--net", "case33bw"],
                env,
                3,
            ),
            (
                "network show --net 1-LV-rural1--2-sw (no cache)",
                [*FEEDERDAO, "network", "show", "--net", "1-LV-rural1--2-sw"],
                cold,
                2,
            ),
        ]
        # fill the cache once, then time the warm case
        subprocess.run(
            [*FEEDERDAO, "network", "show", "--net", "1-LV-rural1--2-sw"],
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        rows.append(
            (
                "network show --net 1-LV-rural1--2-sw (cached)",
                [*FEEDERDAO, "network", "show", "--net", "1-LV-rural1--2-sw"],
                env,
                3,
            )
        )
        print(f"{'command':<52} {'median s':>9} {'best s':>8}  runs")
        for label, argv, e, runs in rows:
            median, best = timed(argv, e, runs)
            print(f"{label:<52} {median:>9.2f} {best:>8.2f}  {runs}")


if __name__ == "__main__":
    main()
