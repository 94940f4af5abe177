"""Operator control under `feederdao serve`: an operator (users from the configured users
file) calls SuspendDispatch over OPC UA with node-opcua; the running service then publishes no
clearing and pushes no setpoint to the feeder until ResumeDispatch, and the operator loop, the
API's /health and the audit log all show it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from feederdao.api.serve import serve
from feederdao.scada_bridge.server import NAMESPACE as MARKET
from feederdao.scada_bridge.settings import MarketServerSettings
from feederdao.store.audit import StoreAuditLog
from feederdao.store.db import Database
from feederdao.workflows.market import ServiceSettings
from tests.scada_bridge.conftest import PASSWORD, USERS, Pki, free_port
from tests.scada_bridge.peer import NodePeer, nid

pytestmark = pytest.mark.anyio


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


async def until(check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await check() if asyncio.iscoroutinefunction(check) else check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.2)


async def test_suspend_under_serve_holds_every_publication_and_push_until_resume(
    pki: Pki, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    users = tmp_path / "opcua-users.toml"
    users.write_text(
        "".join(
            f'[users.{name}]\npassword_hash = "{h}"\nrole = "{role}"\n\n'
            for name, (h, role) in USERS.items()
        )
    )
    trusted = workdir / "pki" / "trusted" / "certs"
    trusted.mkdir(parents=True)
    shutil.copy(pki.node_cert, trusted / "node-opcua-peer.pem")  # the control room's client
    url = f"sqlite:///{tmp_path / 'market.db'}"
    port = free_port()
    settings = ServiceSettings(
        database_url=url,
        periods_per_interval=2,
        port=port,
        market_endpoint=f"opc.tcp://127.0.0.1:{free_port()}/feederdao/market",
        tick_s=0.2,
        retry_delay_s=0.2,
        workdir=str(workdir),
    )
    clock = Clock(datetime(2026, 6, 21, 10, 50, tzinfo=UTC))
    stop = asyncio.Event()
    said: list[str] = []
    task = asyncio.create_task(
        serve(
            settings,
            announce=said.append,
            stop=stop,
            opcua=MarketServerSettings(users_file=str(users)),
            clock=clock,
        )
    )
    audit = StoreAuditLog(Database(url))
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    operator = NodePeer(pki.node_pki, workdir / "pki" / "market.der", "ops", PASSWORD)
    market, status = nid(MARKET, "Market"), {"op": "read", "nodeId": nid(MARKET, "Market.Status")}

    def call(method: str, *args: str) -> dict[str, Any]:
        return {
            "op": "call",
            "objectId": market,
            "methodId": nid(MARKET, f"Market.{method}"),
            "args": [{"dataType": "String", "value": a} for a in args],
        }

    async def health() -> dict[str, Any]:
        if task.done():  # serve stopped: say why instead of waiting
            task.result()
            raise AssertionError(f"serve returned early: {said}")
        try:
            return dict((await api.get("/health")).json())
        except httpx.HTTPError:
            return {}

    async def intervals() -> list[dict[str, Any]]:
        return list((await api.get("/intervals")).json())

    def pushed() -> set[str]:
        return {r["cycle"] for r in audit.records("command")}

    try:
        await until(health, 180)
        (iv,) = await until(intervals)  # the loop opened the 11:00 interval (gate 10:55)
        suspended, state = await operator.results(
            settings.market_endpoint, call("SuspendDispatch", "storm warning"), status
        )
        assert suspended["status"] == "Good" and state["value"] == "suspended"
        dispatch = (await health())["dispatch"]
        assert (dispatch["state"], dispatch["reason"], dispatch["by"]) == (
            "suspended",
            "storm warning",
            "operator:ops",
        )

        async def state_of() -> str:
            return str(next(i for i in await intervals() if i["id"] == iv["id"])["state"])

        async def cleared() -> bool:
            return await state_of() not in ("open", "gate-closed")

        clock.now = datetime(2026, 6, 21, 10, 56, tzinfo=UTC)  # gate closed: clear, anchor …
        await until(cleared, 120)
        clock.now = datetime(2026, 6, 21, 11, 0, 30, tzinfo=UTC)  # … the delivery begins
        await asyncio.sleep(2.0)  # ten ticks
        assert await state_of() == "cleared"  # … but nothing is published
        assert pushed() == set()  # … and nothing pushed
        resumed, state = await operator.results(
            settings.market_endpoint, call("ResumeDispatch"), status
        )
        assert resumed["outputs"] == [True] and state["value"] == "running"
        p0 = f"interval-{iv['id']}-p0"
        await until(lambda: p0 in pushed())
        assert await state_of() == "published"
        assert (await health())["dispatch"]["state"] == "running"
        (again,) = await operator.results(
            settings.market_endpoint, call("SuspendDispatch", "field crew on site")
        )
        assert again["outputs"] == [True]
        clock.now = datetime(2026, 6, 21, 11, 15, 30, tzinfo=UTC)  # period 1 is due …
        await asyncio.sleep(2.0)
        assert pushed() == {p0}  # … and held
        await operator.results(settings.market_endpoint, call("ResumeDispatch"))
        await until(lambda: f"interval-{iv['id']}-p1" in pushed())
        events = [
            (r["event"], r.get("reason"), r.get("by"))
            for r in audit.records()
            if r["event"].startswith("dispatch-")
        ]
        assert events == [
            ("dispatch-suspended", "storm warning", "operator:ops"),
            ("dispatch-resumed", None, "operator:ops"),
            ("dispatch-suspended", "field crew on site", "operator:ops"),
            ("dispatch-resumed", None, "operator:ops"),
        ]
        assert all(r["status"] == "Good" for r in audit.records("command"))
    finally:
        stop.set()
        await api.aclose()
        await asyncio.wait_for(task, 60)
    assert any("market OPC UA server" in line for line in said)
