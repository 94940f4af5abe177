"""Concurrent HTTP clients against the API served by uvicorn on 127.0.0.1, on SQLite and
PostgreSQL: the gate-closure race, two clearings at once, a locked store and a read-only store.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from feederdao.store import repositories as repo
from tests.api.conftest import GATE, NOON, Env, Keyed, backend_url, keyed_members, make_env, served

SRC = Path(__file__).parents[2] / "src" / "feederdao"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cenv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("svc")
    env = make_env(
        backend_url(request, request.param, work, "concurrency"),
        str(work),
        tick_s=0.2,
        gate_overdue_after_s=1.0,
        loop_stuck_after_s=1.0,
        store_busy_timeout_s=1.5,
    )
    try:
        yield env
    finally:
        env.service.db.dispose()


def bid(m: Keyed, iv: int, n: int) -> dict[str, Any]:
    return {
        "interval_id": iv,
        "period": n % 4,
        "bus": m.bus,
        "side": "buy",
        "blocks": [{"price_eur_per_mwh": 100.0 + n % 50, "quantity_mw": 0.001}],
    }


# -- a locked store ----------------------------------------------------------------------------


@contextmanager
def store_locked(env: Env) -> Iterator[None]:
    """Another client holds the store's write lock (SQLite) or locks its tables (PostgreSQL)."""
    url = env.service.db.engine.url
    if url.get_backend_name() == "sqlite":
        import sqlite3

        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        import psycopg

        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as pg:
            pg.execute("LOCK TABLE bids, state, market_intervals IN ACCESS EXCLUSIVE MODE")
            yield
            pg.rollback()


def test_a_locked_store_answers_503_and_health_says_so(cenv: Env) -> None:
    [m] = keyed_members(cenv, 1)
    iv = cenv.service.intervals.open(NOON + timedelta(days=40)).id
    with served(cenv, with_loop=True) as base:
        c = httpx.Client(base_url=base, timeout=20)
        assert c.get("/health").status_code == 200
        answer: dict[str, Any] = {}
        with store_locked(cenv):

            def submit() -> None:
                t0 = time.perf_counter()
                answer["r"] = c.post(
                    "/bids", json=bid(m, iv, 1), headers={**m.auth, "Idempotency-Key": "l1"}
                )
                answer["s"] = time.perf_counter() - t0

            worker = threading.Thread(target=submit)
            worker.start()
            time.sleep(0.3)
            t0 = time.perf_counter()
            assert c.get("/market").status_code == 200  # the event loop is not held up
            assert time.perf_counter() - t0 < 0.5
            deadline = time.monotonic() + 10
            health = c.get("/health")
            while "store-busy" not in health.json()["problems"] and time.monotonic() < deadline:
                health = c.get("/health")
            assert health.status_code == 503 and health.json()["store"] == "busy", health.text
            worker.join()
            r = answer["r"]
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
            assert answer["s"] < 5 and "busy" in r.json()["error"]
            assert {"loop-stuck", "loop-failing"} & set(c.get("/health").json()["problems"])
        # recovers by itself once the lock is gone
        deadline = time.monotonic() + 15
        health = c.get("/health")
        while health.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            health = c.get("/health")
        assert health.status_code == 200, health.text
        r = c.post("/bids", json=bid(m, iv, 1), headers={**m.auth, "Idempotency-Key": "l1"})
        assert r.status_code == 201, r.text
        c.close()


# -- a read-only store -------------------------------------------------------------------------


@contextmanager
def store_read_only(env: Env) -> Iterator[None]:
    """The database stops taking writes while the service runs: its files become immutable
    (SQLite; as root, chattr +i, which holds for open files too), or the database becomes
    read-only and its sessions are ended (PostgreSQL, as on a failover to a standby)."""
    db = env.service.db
    url = db.engine.url
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        files = [str(path), str(path) + "-wal"]  # never the -shm: it is memory-mapped
        if os.geteuid() == 0 and shutil.which("chattr"):
            subprocess.run(["chattr", "+i", *files], check=True)
            try:
                yield
            finally:
                subprocess.run(["chattr", "-i", *files], check=True)
        else:
            for f in files:
                os.chmod(f, 0o400)
            db.engine.dispose()  # new connections open the file read-only
            try:
                yield
            finally:
                for f in files:
                    os.chmod(f, 0o600)
                db.engine.dispose()
    else:
        import psycopg

        name = url.database
        dsn = url.set(drivername="postgresql", database="postgres").render_as_string(
            hide_password=False
        )

        def switch(on: bool) -> None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                value = "on" if on else "off"
                conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}')
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )

        switch(True)
        try:
            yield
        finally:
            switch(False)


def test_a_read_only_store_answers_503_and_health_says_so(cenv: Env) -> None:
    [m] = keyed_members(cenv, 1)
    start = NOON + timedelta(days=50)
    iv = cenv.service.intervals.open(start, periods=1).id
    with served(cenv, with_loop=True) as base:
        c = httpx.Client(base_url=base, timeout=20)
        assert c.get("/health").status_code == 200
        with store_read_only(cenv):
            r = c.post(
                "/bids",
                json={**bid(m, iv, 2), "period": 0},
                headers={**m.auth, "Idempotency-Key": "r1"},
            )
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.text
            assert "read-only" in r.json()["error"] or "cannot be" in r.json()["error"]
            # the gate's time comes; the loop cannot close it
            cenv.clock.now = start - timedelta(minutes=4)
            deadline = time.monotonic() + 10
            health = c.get("/health")
            while time.monotonic() < deadline and not (
                {"gate-overdue", "loop-failing"} <= set(health.json()["problems"])
                and health.json()["store"] != "ok"
            ):
                time.sleep(0.2)
                health = c.get("/health")
            assert health.status_code == 503, health.text
            problems = set(health.json()["problems"])
            assert {"gate-overdue", "loop-failing"} <= problems, health.text
            assert problems & {"store-read-only", "store-unavailable"}, health.text
            assert cenv.service.intervals.get(iv).state == "open"
        # writes come back: the loop closes the gate and health recovers by itself
        deadline = time.monotonic() + 20
        health = c.get("/health")
        while health.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            health = c.get("/health")
        assert health.status_code == 200, health.text
        assert cenv.service.intervals.get(iv).state != "open"
        c.close()
    cenv.clock.now = GATE - timedelta(hours=2)
    deadline = time.monotonic() + 60  # let the loop's clearing of that interval finish
    while cenv.operator.clearings.busy_since is not None and time.monotonic() < deadline:
        time.sleep(0.2)


# -- the gate-closure race ----------------------------------------------------------------------


def submit_and_cancel(
    base: str,
    m: Keyed,
    w: int,
    iv: int,
    stop: threading.Event,
    answers: list[tuple[str, int, str]],
    lock: threading.Lock,
) -> None:
    """Submit bids one after the other, cancelling one of ours now and then, until ``stop``."""
    mine: list[str] = []
    with httpx.Client(base_url=base, headers=m.auth, timeout=10) as c:
        n = 0
        while not stop.is_set():
            key = {"Idempotency-Key": f"{iv}-{w}-{n}"}
            r = c.post("/bids", json=bid(m, iv, n), headers=key)
            with lock:
                answers.append(("bid", r.status_code, r.text))
            if r.status_code == 201:
                mine.append(r.json()["id"])
            if n % 3 == 2 and mine:
                r = c.delete(f"/bids/{mine.pop(0)}")
                with lock:
                    answers.append(("cancel", r.status_code, r.text))
            n += 1


def test_nothing_is_accepted_after_the_gate_closes(cenv: Env) -> None:
    members = keyed_members(cenv, 6)
    trials, accepted, refused = 12, 0, 0
    rng = random.Random(15)
    with served(cenv) as base:
        for trial in range(trials):
            iv = cenv.service.intervals.open(NOON + timedelta(days=10, hours=trial)).id
            stop = threading.Event()
            answers: list[tuple[str, int, str]] = []
            lock = threading.Lock()

            threads = [
                threading.Thread(
                    target=submit_and_cancel, args=(base, m, w, iv, stop, answers, lock)
                )
                for w, m in enumerate(members)
            ]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.05, 0.25))
            r = httpx.post(f"{base}/intervals/{iv}/gate-closure", headers=cenv.auth("operator"))
            assert r.status_code == 200, r.text
            time.sleep(0.15)
            stop.set()
            for t in threads:
                t.join()
            closed = r.json()
            with cenv.service.db.read() as s:
                now = repo.book_of(s, iv)
            # the book as the gate closed is the book now: no bid added, none cancelled since
            assert now == (closed["book_bids"], closed["book_hash"]), (trial, now, closed)
            assert all(status in (200, 201, 409) for _, status, _ in answers), answers
            accepted += sum(1 for kind, status, _ in answers if kind == "bid" and status == 201)
            refused += sum(1 for _, status, text in answers if status == 409 and "gate" in text)
    # the clients really raced the closure: bids were taken before it and refused after it
    assert accepted > trials and refused > trials, (accepted, refused)


# -- clearings ---------------------------------------------------------------------------------


def test_two_clearings_at_once(cenv: Env, caplog: pytest.LogCaptureFixture) -> None:
    members = keyed_members(cenv, 2)
    streams = (sys.stdout, sys.stderr)
    ivs = []
    for day in (30, 31):
        r = cenv.client.post(
            "/intervals",
            json={"start": (NOON + timedelta(days=day)).isoformat(), "periods": 1},
            headers=cenv.auth("operator"),
        )
        assert r.status_code == 201, r.text
        ivs.append(r.json()["id"])
    for iv in ivs:
        for k, m in enumerate(members):
            body = {**bid(m, iv, 0), "period": 0}
            r = cenv.client.post(
                "/bids", json=body, headers={**m.auth, "Idempotency-Key": f"c{iv}{k}"}
            )
            assert r.status_code == 201, r.text
        r = cenv.client.post(f"/intervals/{iv}/gate-closure", headers=cenv.auth("operator"))
        assert r.status_code == 200
    results: dict[str, httpx.Response] = {}
    op = cenv.auth("operator")
    with served(cenv) as base:

        def clear(name: str, iv: int) -> None:
            results[name] = httpx.post(f"{base}/intervals/{iv}/clear", headers=op, timeout=300)

        threads = [
            threading.Thread(target=clear, args=(name, iv))
            for name, iv in (("a", ivs[0]), ("b", ivs[1]), ("a again", ivs[0]))
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)
        while any(t.is_alive() for t in threads):  # the API answers while the solver works
            t0 = time.perf_counter()
            assert httpx.get(f"{base}/market", timeout=5).status_code == 200
            assert time.perf_counter() - t0 < 1.0
            time.sleep(0.3)
        for t in threads:
            t.join()
    assert results["b"].status_code == 200, results["b"].text
    codes = sorted([results["a"].status_code, results["a again"].status_code])
    assert codes == [200, 409], (results["a"].text, results["a again"].text)
    for iv in ivs:
        assert cenv.service.intervals.get(iv).state == "cleared"
        assert cenv.service.results.result(iv).result_hash.startswith("0x")
    # nothing replaced the process's streams, and logging still reaches its handlers
    assert (sys.stdout, sys.stderr) == streams
    with caplog.at_level(logging.INFO, logger="feederdao"):
        logging.getLogger("feederdao.test").info("still logging")
    assert "still logging" in caplog.text


def test_the_service_never_touches_the_process_streams() -> None:
    """Clearing must not redirect stdout or stderr (a redirection is process-wide: two at once
    deadlock and lose the logs); nothing in the service's packages does."""
    words = ("sys.stdout", "sys.stderr", "redirect_stdout", "redirect_stderr", "capture_output")
    places = [SRC / "api", SRC / "store", SRC / "workflows" / "market"]
    files = [p for d in places for p in d.rglob("*.py")]
    files += [SRC / "workflows" / n for n in ("operator.py", "background.py", "metrics.py")]
    found = [(f.name, w) for f in files for w in words if w in f.read_text()]
    assert len(files) > 20 and found == []
