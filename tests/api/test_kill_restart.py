"""Bids acknowledged before a hard kill are all there after a restart, and none is duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from feederdao.store import repositories as repo
from feederdao.store.db import Database
from feederdao.workflows.network import open_network
from tests.api.conftest import NET
from tests.scada_bridge.conftest import free_port

START = "2030-01-01T12:00:00+00:00"


def _serve(url: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FEEDERDAO_WORKDIR": str(workdir)}
    cmd = [
        sys.executable,
        "-m",
        "feederdao.cli.main",
        "serve",
        "--no-loop",
        "--database-url",
        url,
        "--port",
        str(port),
        "--net",
        NET,
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the service did not start")


@pytest.fixture(scope="module")
def network():  # type: ignore[no-untyped-def]
    return open_network(NET)


def test_kill_and_restart(database_url: str, tmp_path: Path, network) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timedelta

    dev = next(d for d in network.view.devices if d.kind.value == "load")
    db = Database(database_url)
    with db.session() as s:
        part = repo.register_participant(s, "p", "0x" + "11" * 20, dev.bus, [dev.device_id])
        repo.approve_participant(s, part.id, dev.bus, [dev.device_id])
        _, key = repo.issue_api_key(s, "participant", part.id)
        start = datetime.fromisoformat(START)
        interval = repo.open_interval(s, start, 4, 15, start - timedelta(minutes=5))
        interval_id = interval.id
    db.dispose()
    port = free_port()
    proc = _serve(database_url, port, tmp_path)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    acked: dict[str, str] = {}
    tried: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def body(n: int) -> dict[str, object]:
        return {
            "interval_id": interval_id,
            "period": n % 4,
            "bus": dev.bus,
            "side": "buy",
            "blocks": [{"price_eur_per_mwh": 100.0 + n % 50, "quantity_mw": 0.001}],
        }

    def client(worker: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=5) as c:
            n = 0
            while not stop.is_set():
                k = f"w{worker}-{n}"
                with lock:
                    tried.add(k)
                try:
                    r = c.post(
                        "/bids", json=body(worker * 100_000 + n), headers={"Idempotency-Key": k}
                    )
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 201:
                    with lock:
                        acked[k] = r.json()["id"]
                n += 1

    workers = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for w in workers:
        w.start()
    time.sleep(2.0)
    os.kill(proc.pid, signal.SIGKILL)  # mid-run: requests are in flight
    proc.wait()
    stop.set()
    for w in workers:
        w.join()
    assert len(acked) > 20

    proc = _serve(database_url, port, tmp_path)
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as c:
            stored = {b["idempotency_key"]: b["id"] for b in c.get("/bids").json()}
            assert set(acked) <= set(stored)  # every acknowledged bid survived
            assert all(stored[k] == acked[k] for k in acked)
            # clients retry whatever they were unsure of: nothing is stored twice
            for k in sorted(tried):
                worker, n = k[1:].split("-")
                r = c.post(
                    "/bids",
                    json=body(int(worker) * 100_000 + int(n)),
                    headers={"Idempotency-Key": k},
                )
                assert r.status_code == (200 if k in stored else 201), r.text
            after = c.get("/bids").json()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    keys = [b["idempotency_key"] for b in after]
    assert len(keys) == len(set(keys)) == len(tried)
