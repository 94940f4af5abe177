"""A market service on each database backend, with the embedded chain, behind a TestClient."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from feederdao.api.app import create_app
from feederdao.domain.network import DeviceKind
from feederdao.governance.signing import bid_message, sign
from feederdao.store import repositories as repo
from feederdao.store.audit import StoreAuditLog
from feederdao.workflows.market import MarketService, ServiceSettings
from feederdao.workflows.metrics import Metrics
from feederdao.workflows.operator import Operator

NET = "1-LV-rural1--0-sw"
T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Member:
    account: LocalAccount
    id: str
    key: str
    bus: int
    device: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Env:
    client: TestClient
    service: MarketService
    operator: Operator
    clock: Clock
    keys: dict[str, str]
    taken: set[str] = field(default_factory=set)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def registration(
        self, account: LocalAccount, name: str, bus: int, devices: list[str]
    ) -> dict[str, Any]:
        msg = {"participant": account.address, "name": name, "bus": bus, "devices": devices}
        sig = sign(account.key, self.service.ctx.domain, "Register", msg)
        return {
            "name": name,
            "address": account.address,
            "bus": bus,
            "devices": devices,
            "signature": sig,
        }

    def free_device(self, kind: DeviceKind = DeviceKind.LOAD) -> tuple[int, str]:
        for d in self.service.network.view.devices:
            if d.kind == kind and d.device_id not in self.taken:
                self.taken.add(d.device_id)
                return d.bus, d.device_id
        raise LookupError(kind)

    def join(self, kind: DeviceKind = DeviceKind.LOAD) -> Member:
        """Register (signed), approve and issue a key to a new participant."""
        account = Account.create()
        bus, dev = self.free_device(kind)
        r = self.client.post("/participants", json=self.registration(account, "m", bus, [dev]))
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        r = self.client.post(f"/participants/{pid}/approve", json={}, headers=self.auth("operator"))
        assert r.status_code == 200, r.text
        r = self.client.post(
            f"/participants/{pid}/api-keys", json={}, headers=self.auth("operator")
        )
        assert r.status_code == 201, r.text
        return Member(account, pid, r.json()["api_key"], bus, dev)

    def open_interval(self, start: datetime) -> int:
        r = self.client.post(
            "/intervals", json={"start": start.isoformat()}, headers=self.auth("operator")
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def signed_bid(
        self,
        m: Member,
        interval: int,
        blocks: list[tuple[float, float]],
        side: str = "buy",
        period: int = 0,
        nonce: str | None = None,
        signer: LocalAccount | None = None,
    ) -> dict[str, Any]:
        msg = bid_message(
            m.account.address, interval, period, m.bus, side, blocks, nonce or secrets.token_hex(8)
        )
        sig = sign((signer or m.account).key, self.service.ctx.domain, "Bid", msg)
        return {"message": msg, "signature": sig}

    def trade_each_period(self, buyer: Member, seller: Member, interval: int, periods: int) -> None:
        """The buyer bids 3 kW at 400 EUR/MWh and the seller offers 4 kW at 1 EUR/MWh in every
        period of ``interval``."""
        for t in range(periods):
            for b in (
                self.signed_bid(buyer, interval, [(400.0, 0.003)], period=t),
                self.signed_bid(seller, interval, [(1.0, 0.004)], "sell", period=t),
            ):
                r = self.client.post("/bids/signed", json=b)
                assert r.status_code == 201, r.text

    def register_meters(self, *members: Member) -> dict[str, LocalAccount]:
        """A meter of its own for each member's device, registered by the operator; the meters'
        keys by device."""
        keys = {}
        for m in members:
            meter = Account.create()
            keys[m.device] = meter
            reg = {"meter": meter.address, "participant_id": m.id, "devices": [m.device]}
            r = self.client.post("/meters", json=reg, headers=self.auth("operator"))
            assert r.status_code == 201, r.text
        return keys

    def bid_count(self) -> int:
        with self.service.db.session() as s:
            return len(repo.list_bids(s))


def make_env(url: str, workdir: str, with_chain: bool = True, **settings: Any) -> Env:
    cfg = ServiceSettings(database_url=url, network=NET, workdir=workdir, **settings)
    svc = MarketService.start(cfg, with_chain)
    clock = Clock()
    svc.clock = clock
    op = Operator(svc, Metrics(), StoreAuditLog(svc.db))
    with svc.db.session() as s:
        keys = {r: repo.issue_api_key(s, r)[1] for r in ("operator", "auditor")}
    return Env(TestClient(create_app(op)), svc, op, clock, keys)


@pytest.fixture
def env(database_url: str, tmp_path: Any) -> Iterator[Env]:
    e = make_env(database_url, str(tmp_path))
    yield e
    e.service.db.dispose()


NOON = datetime(2026, 6, 21, 12, 0, tzinfo=UTC)
GATE = NOON - timedelta(minutes=5)


@dataclass
class Keyed:
    """A participant made straight in the store (no signed registration), with an API key."""

    id: str
    bus: int
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def keyed_members(env: Env, n: int) -> list[Keyed]:
    out = []
    with env.service.db.session() as s:
        for _ in range(n):
            bus, dev = env.free_device()
            part = repo.register_participant(s, "k", Account.create().address, bus, [dev])
            repo.approve_participant(s, part.id, bus, [dev])
            out.append(Keyed(part.id, bus, repo.issue_api_key(s, "participant", part.id)[1]))
    return out


@contextmanager
def served(
    env: Env, with_loop: bool = False, app: Any = None, port: int | None = None
) -> Iterator[str]:
    """The env's app (or ``app``) served by uvicorn on 127.0.0.1 in a thread of its own (and the
    operator loop beside it when ``with_loop``), on ``port`` or a free one; stopped on exit, even
    when an assert fails."""
    from tests.scada_bridge.conftest import free_port

    port = port or free_port()
    config = uvicorn.Config(
        app or env.client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def main() -> None:
        event = asyncio.Event()
        stop.append((asyncio.get_running_loop(), event))
        tasks = [asyncio.create_task(server.serve())]
        if with_loop:
            tasks.append(asyncio.create_task(env.operator.run(event)))
        await event.wait()
        server.should_exit = True
        for task in tasks[1:]:  # the loop may be waiting for a clearing: do not wait for it
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert server.started, "the server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        if stop:
            loop, event = stop[0]
            loop.call_soon_threadsafe(event.set)
        thread.join(30)


def backend_url(request: pytest.FixtureRequest, backend: str, workdir: Any, name: str) -> str:
    """A fresh database on ``backend`` (for module-scoped services)."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'market.db'}"
    from tests.postgres import create_database

    return create_database(request.getfixturevalue("postgres_server"), name)
