"""The error a study's chunking introduces: every chunk after the first cleared after 0, 1
and 2 warm-up days, against the serial study that carries the storage state from day to day,
for each way a day's storage may end (``storage_end``).

Each chunk is one day (the most chunk starts a study can have); chunks are cleared in this
process with the same code a Dask worker runs (``clear_chunk``), so the figures are the
chunking's alone. "DLMP gap" is the largest |DLMP − serial DLMP| over the chunk days' bus-periods
(EUR/MWh); "SOC gap" the largest difference of a storage's state of charge at a day's end
(percentage points).

    .venv/bin/python bench/chunking.py [--feeder 1-LV-rural1--2-sw] [--days 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

SPEC = """\
[study]
name = "chunking"
feeders = ["{feeder}"]
start = "2016-06-21"
days = {days}
chunk_days = 1
warmup_days = {warmup}

[clearing]
storage_end = "{end}"

[outputs]
dir = "out"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeder", default="1-LV-rural1--2-sw")
    parser.add_argument("--days", type=int, default=4)
    args = parser.parse_args()

    from feederdao.domain.clearing import STORAGE_ENDS, ClearingOptions
    from feederdao.workflows.studies.execute import NetworkCache, clear_chunk
    from feederdao.workflows.studies.plan import plan
    from feederdao.workflows.studies.spec import load_spec
    from feederdao.workflows.study import run_study

    rows = []
    for end in STORAGE_ENDS:
        t0 = time.perf_counter()
        serial = run_study(args.feeder, args.days, options=ClearingOptions(storage_end=end))
        serial_s = time.perf_counter() - t0
        floor = {n: round(v, 1) for n, v in serial.days[-1].storage_soc_percent.items()}
        for warmup in (0, 1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "chunking.toml"
                path.write_text(
                    SPEC.format(feeder=args.feeder, days=args.days, warmup=warmup, end=end)
                )
                spec = load_spec(path)
                cache = NetworkCache(threads=2)
                dlmp_gap = soc_gap = 0.0
                for chunk in plan(spec)[1:]:
                    for k, day in enumerate(clear_chunk(spec, chunk, cache)):
                        want = serial.days[chunk.first + k]
                        got_p = day.tables.prices["dlmp_eur_per_mwh"]
                        want_p = want.tables.prices["dlmp_eur_per_mwh"]
                        dlmp_gap = max(dlmp_gap, float((got_p - want_p).abs().max()))
                        for name, soc in want.storage_soc_percent.items():
                            soc_gap = max(soc_gap, abs(day.storage_soc_percent[name] - soc))
            rows.append((end, warmup, dlmp_gap, soc_gap, serial_s, floor))

    print(f"feeder {args.feeder}, {args.days} day(s) of 96 periods, chunks of one day")
    print()
    print(
        "| storage_end | warm-up days | DLMP gap EUR/MWh | SOC gap %-pts | serial s "
        "| serial end-of-day SOC % |"
    )
    print("|---|---|---|---|---|---|")
    for end, warmup, dlmp_gap, soc_gap, serial_s, floor in rows:
        socs = ", ".join(f"{n} {v}" for n, v in list(floor.items())[:3])
        print(f"| {end} | {warmup} | {dlmp_gap:.3g} | {soc_gap:.3g} | {serial_s:.1f} | {socs} |")


if __name__ == "__main__":
    main()
