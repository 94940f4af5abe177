"""Benchmark: first paint of the console's market view on a 180-bus feeder with 96 periods.

mv_oberrhein (179 buses, with coordinates: drawn geographically) is cleared for one 96-period
interval with a real clearing (no chain: nothing is anchored), published, and served by the
API on loopback in this process. Debian's headless Chromium (driven by Playwright, no browser
download) then loads ``/#market`` in a fresh browser context (cold cache) ``--runs`` times.
The first load finds the server's price grid cache empty; the later ones find it filled, as
every viewer after the first does. "first paint" is the time from the navigation's start until
the market view has drawn the feeder and the heat map coloured by the interval's prices (the
page's own ``firstPaintMs`` mark, set after the prices are fetched and drawn); "transferred" is
the sum of the resource timing's ``transferSize`` of what the page loaded before its first
paint (the prices' grid separately), and of everything once the DLMP's parts (fetched after the
paint) have arrived. The API's routes are warmed before serving, as ``feederdao serve`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn

from feederdao.api.app import create_app, warm_up
from feederdao.store.audit import StoreAuditLog
from feederdao.workflows.market import MarketService, ServiceSettings
from feederdao.workflows.metrics import Metrics
from feederdao.workflows.operator import Operator

NETWORK = "mv_oberrhein"
START = datetime(2016, 6, 21, 0, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def published_market(workdir: Path) -> tuple[Operator, float]:
    settings = ServiceSettings(
        database_url=f"sqlite:///{workdir / 'market.db'}",
        network=NETWORK,
        workdir=str(workdir),
        periods_per_interval=96,
    )
    svc = MarketService.start(settings, with_chain=False)
    svc.clock = lambda: START - timedelta(hours=1)
    row = svc.intervals.open(START, 96, START - timedelta(minutes=5))
    svc.intervals.close_gate(row.id)
    t = time.perf_counter()
    svc.clearing.clear(row.id)
    cleared_s = time.perf_counter() - t
    svc.intervals.mark_published(row.id)
    return Operator(svc, Metrics(), StoreAuditLog(svc.db)), cleared_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--screenshot", help="save the last load's page as this PNG")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as tmp:
        op, cleared_s = published_market(Path(tmp))
        port = free_port()
        app = create_app(op)
        t = time.perf_counter()
        asyncio.run(warm_up(app))  # as `feederdao serve` does before it listens
        warm_s = time.perf_counter() - t
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/#market"
        paints: list[float] = []
        sizes: list[tuple[int, int, int, int]] = []
        timings: list[list[tuple[str, float, float]]] = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=chromium, headless=True, args=["--no-sandbox"]
                )
                for _ in range(args.runs):
                    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                    page.goto(url)
                    page.wait_for_selector("body[data-painted]", state="attached", timeout=60_000)
                    paints.append(float(page.evaluate("window.firstPaintMs")))
                    page.wait_for_selector("body[data-ready='true']")
                    page.wait_for_selector("body[data-parts]", state="attached")
                    got = page.evaluate(
                        """() => {
                          const all = [...performance.getEntriesByType('navigation'),
                                       ...performance.getEntriesByType('resource')];
                          const early = all.filter(e => e.responseEnd <= window.firstPaintMs);
                          const size = (es) => es.reduce((s, e) => s + e.transferSize, 0);
                          const prices = (es) => es.filter(e => e.name.includes('/price-grid'));
                          return [size(early), size(prices(early)), early.length, size(all),
                                  all.map(e => [new URL(e.name).pathname, e.startTime,
                                                e.responseEnd])];
                        }"""
                    )
                    sizes.append((int(got[0]), int(got[1]), int(got[2]), int(got[3])))
                    timings.append([(str(n), float(a), float(b)) for n, a, b in got[4]])
                    if args.screenshot and len(paints) == args.runs:
                        page.screenshot(path=args.screenshot, full_page=True)
                    page.context.close()
                browser.close()
        finally:
            server.should_exit = True
            thread.join(30)
            op.service.db.dispose()
    buses = len(op.service.network.view.buses)
    early, prices, requests, total = sizes[-1]
    print(f"console first paint: {NETWORK}, {buses} buses, 96 periods, {args.runs} cold loads")
    print(f"(clearing the interval took {cleared_s:.1f} s, before the page loads;")
    print(f" warming the API's routes before serving took {warm_s * 1000:.0f} ms)")
    print()
    print(
        "| network | buses | periods | first load ms | first paint median ms | max ms "
        "| transferred before paint KiB | of which prices KiB | requests | with the parts KiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {NETWORK} | {buses} | 96 | {paints[0]:.0f} | {statistics.median(paints):.0f} "
        f"| {max(paints):.0f} "
        f"| {early / 1024:.0f} | {prices / 1024:.0f} | {requests} | {total / 1024:.0f} |"
    )
    print(f"all first paints ms: {', '.join(f'{v:.0f}' for v in paints)}")
    for which, k in (("first", 0), ("last", -1)):
        print()
        print(f"the slowest requests of the {which} load (ms from the navigation's start):")
        for name, start, end in sorted(timings[k], key=lambda x: x[1] - x[2])[:4]:
            print(f"  {name}: {start:.0f} → {end:.0f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
