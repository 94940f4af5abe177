"""Benchmark: bid submission throughput and latency of the market API on loopback.

``feederdao serve`` runs in its own process on SQLite (WAL), with its operator loop ticking
(``--no-loop`` for the API alone); this process is the load:
``--concurrency`` keep-alive connections of a minimal HTTP/1.1 client, each sending its next
request as soon as the previous one is answered (a bounded, closed-loop load). Bids are
signed before the clock starts, so the load costs no signing. Three runs in the same server:
EIP-712-signed bids (the target: ≥ 500 accepted/s with p99 ≤ 50 ms), API-key bids (no
signature to check), and GET /health (the framework's floor). Prints a table with the
machine's load average (1 min) sampled during each run, since the machine may be shared; peak
memory is the server's resident high-water mark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from feederdao.governance.signing import MarketDomain, bid_message, sign
from feederdao.store import repositories as repo
from feederdao.store.db import Database
from feederdao.workflows.network import open_network
from memory import peak_mib

NET = "1-LV-rural1--0-sw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def encode(method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(payload)}"]
    if body is not None:
        head.append("Content-Type: application/json")
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


async def load(port: int, requests: list[bytes], conc: int) -> tuple[float, list[float], int]:
    """Send pre-encoded HTTP/1.1 ``requests`` over ``conc`` keep-alive connections, each
    waiting for its answer before the next (a closed loop); (wall s, latencies s, 2xx)."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    ok = 0

    async def worker() -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            request = queue.pop()
            t = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            ok += head[9:10] == b"2"
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return time.perf_counter() - t0, latencies, ok


def load_average() -> float:
    """The machine's 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


class LoadSampler:
    """Samples the 1-minute load average every ``every_s`` while it runs."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(load_average())
            self._stop.wait(self.every_s)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(load_average())


def row(name: str, wall: float, lat: list[float], ok: int, load: list[float]) -> str:
    q = statistics.quantiles(lat, n=100)
    return (
        f"| {name:<18} | {len(lat):>6} | {ok:>6} | {ok / wall:>8.0f} | "
        f"{statistics.median(lat) * 1e3:>7.1f} | {q[98] * 1e3:>7.1f} | "
        f"{statistics.mean(load):>8.2f} / {max(load):<6.2f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bids", type=int, default=3000)
    ap.add_argument("--participants", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--no-loop", action="store_true", help="run the API without the operator loop")
    args = ap.parse_args()
    load_before = load_average()

    work = Path(tempfile.mkdtemp(prefix="feederdao-bench-"))
    url = f"sqlite:///{work / 'market.db'}"
    view = open_network(NET).view
    buses = [b.index for b in view.buses if b.index not in view.slack_buses]
    accounts = [Account.create() for _ in range(args.participants)]
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    t = time.perf_counter()
    db = Database(url)
    members = []
    with db.session() as s:
        for k, acct in enumerate(accounts):
            bus = buses[k % len(buses)]
            p = repo.register_participant(s, f"p{k}", acct.address, bus, [])
            repo.approve_participant(s, p.id, bus, [])
            members.append((acct, bus, repo.issue_api_key(s, "participant", p.id)[1]))
        interval = repo.open_interval(s, start, 4, 15, start - timedelta(minutes=5)).id
    db.dispose()
    setup_s = time.perf_counter() - t

    port = free_port()
    env = {
        **os.environ,
        "FEEDERDAO_WORKDIR": str(work),
        "FEEDERDAO_MARKET_ENDPOINT": f"opc.tcp://127.0.0.1:{free_port()}/feederdao/market",
    }
    cmd = [
        sys.executable,
        *os.environ.get("BENCH_PYTHON_ARGS", "").split(),
        "-m",
        "feederdao.cli.main",
        "serve",
        "--no-loop" if args.no_loop else "--loop",
        "--no-feeder",
        "--port",
        str(port),
        "--database-url",
        url,
        "--net",
        NET,
    ]
    t = time.perf_counter()
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    boot_s = time.perf_counter() - t
    info = httpx.get(base + "/market").json()["eip712_domain"]
    domain = MarketDomain(info["chainId"], info["verifyingContract"])

    t = time.perf_counter()
    signed = []
    for n in range(args.bids):
        acct, bus, _ = members[n % len(members)]
        msg = bid_message(
            acct.address,
            interval,
            n % 4,
            bus,
            "buy",
            [(150.0 + n % 40, 0.002)],
            secrets.token_hex(8),
        )
        signed.append(
            encode(
                "POST",
                "/bids/signed",
                {"message": msg, "signature": sign(acct.key, domain, "Bid", msg)},
                {},
            )
        )
    sign_s = time.perf_counter() - t
    keyed = []
    for n in range(args.bids):
        _, bus, key = members[n % len(members)]
        body = {
            "interval_id": interval,
            "period": n % 4,
            "bus": bus,
            "side": "sell",
            "blocks": [{"price_eur_per_mwh": 20.0 + n % 30, "quantity_mw": 0.001}],
        }
        keyed.append(
            encode(
                "POST",
                "/bids",
                body,
                {"Authorization": f"Bearer {key}", "Idempotency-Key": secrets.token_hex(8)},
            )
        )
    health = [encode("GET", "/health", None, {})] * args.bids

    runs = []
    for name, reqs in (("signed bids", signed), ("API-key bids", keyed), ("GET /health", health)):
        with LoadSampler() as sampler:
            wall, lat, ok = asyncio.run(load(port, reqs, args.concurrency))
        runs.append((name, wall, lat, ok, sampler.samples))
    stored = len(
        httpx.get(base + "/bids", headers={"Authorization": f"Bearer {members[0][2]}"}).json()
    )
    peak = peak_mib(server.pid)
    server.send_signal(signal.SIGINT)
    server.wait(timeout=30)

    loop = "without the operator loop" if args.no_loop else "with the operator loop running"
    print(
        f"\nBid submission on loopback, {loop}: {args.bids} requests per run, "
        f"{args.concurrency} connections, SQLite WAL, {args.participants} participants, "
        f"network {NET}; {os.cpu_count()} cores, load average (1 min) {load_before:.2f} before "
        "the benchmark\n"
    )
    print(
        "| run                | sent   | 2xx    | per s    | p50 ms  | p99 ms  "
        "| load (mean / max) |"
    )
    print(
        "|--------------------|--------|--------|----------|---------|---------"
        "|-------------------|"
    )
    for name, wall, lat, ok, samples in runs:
        print(row(name, wall, lat, ok, samples))
    signed_rate = runs[0][3] / runs[0][1]
    print(
        f"\nsigned / API-key throughput: {signed_rate / (runs[1][3] / runs[1][1]):.2f}; "
        f"signed / health: {signed_rate / (runs[2][3] / runs[2][1]):.2f}"
    )
    print(
        f"setup {setup_s:.1f} s, server start {boot_s:.1f} s, signing {sign_s:.1f} s "
        f"(client side, not timed); server peak RSS {peak:.0f} MiB; "
        f"participant 0 sees {stored} of its bids"
    )


if __name__ == "__main__":
    main()
