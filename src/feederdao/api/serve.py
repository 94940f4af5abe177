"""``feederdao serve``: the API and the operator loop in one process.

On embedded defaults it starts an in-process chain with a freshly deployed DAO, keeps the market
in SQLite, and stands the feeder simulator in for the equipment; settings point it at a real
chain, PostgreSQL and OPC UA servers instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from feederdao.api.app import create_app
from feederdao.grid_model.profiles import RESOLUTION_MIN, build_profiles
from feederdao.scada_bridge.bridge import Bridge
from feederdao.scada_bridge.security import ServerSecurity, generate_certificate, hash_password
from feederdao.scada_bridge.server import MarketServer
from feederdao.store.audit import StoreAuditLog
from feederdao.workflows.dispatch import pki_for, simulated_feeder
from feederdao.workflows.market import MarketService, ServiceSettings
from feederdao.workflows.market.clearing import PROFILE_YEAR
from feederdao.workflows.market.keys import write_private
from feederdao.workflows.metrics import Metrics
from feederdao.workflows.operator import Operator

log = logging.getLogger("feederdao.serve")


@contextlib.asynccontextmanager
async def _market_server(settings: ServiceSettings, workdir: Path) -> AsyncIterator[MarketServer]:
    pki = await pki_for(workdir)
    if not (pki / "market.der").is_file():
        await generate_certificate(
            pki / "market_key.pem",
            pki / "market.der",
            "urn:feederdao:market:server",
            True,
            "127.0.0.1",
        )
    password = secrets.token_urlsafe(16)
    write_private(workdir / "market-server-viewer.txt", f"user=scada\npassword={password}\n")
    security = ServerSecurity(
        pki / "market.der",
        pki / "market_key.pem",
        (pki / "client.der",),
        {"scada": (hash_password(password), "viewer")},
    )
    async with MarketServer(settings.market_endpoint, security) as server:
        yield server


async def serve(
    settings: ServiceSettings,
    feeder: bool = True,
    loop: bool = True,
    announce: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until ``stop`` is set or the process gets SIGTERM or SIGINT. Stopping never waits
    for a clearing in progress (it is redone after a restart) and waits for requests in flight
    ``shutdown_grace_s`` at most."""
    workdir = Path(settings.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    service = await asyncio.to_thread(MarketService.start, settings)
    for note in service.system.notes():
        log.warning("%s", note)
        announce(f"warning: {note}")
    key_file = service.keys.bootstrap_operator_key(workdir)
    if key_file:
        announce(f"operator API key written to {key_file}")
    metrics = Metrics()
    audit = StoreAuditLog(service.db)
    stop = stop or asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        publisher = bridge = None
        if loop:
            publisher = await stack.enter_async_context(_market_server(settings, workdir))
            announce(f"market OPC UA server on {settings.market_endpoint}")
        if loop and feeder:
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            now = now.replace(minute=now.minute - now.minute % RESOLUTION_MIN)
            profiles = build_profiles(
                service.network.loaded,
                service.network.view,
                now.replace(year=PROFILE_YEAR, tzinfo=None),
                1,
            )
            sim = await stack.enter_async_context(
                simulated_feeder(service.network, profiles, 0, workdir)
            )
            bridge = await stack.enter_async_context(Bridge(sim.nodemap, sim.client, audit))
            announce(f"feeder simulator on {sim.simulator.endpoint}")
        operator = Operator(service, metrics, audit, publisher, bridge)
        app = create_app(operator)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
        )
        server = uvicorn.Server(config)
        _stop_on_signals(stop)
        announce(
            f"API on http://{settings.host}:{settings.port} (OpenAPI at /docs); "
            f"{RESOLUTION_MIN}-minute periods, {settings.periods_per_interval} per interval"
        )
        tasks = [asyncio.create_task(server.serve())]
        if loop:
            tasks.append(asyncio.create_task(operator.run(stop)))

        async def watch() -> None:
            await stop.wait()
            operator.shutdown()  # a clearing awaited by a request or the loop is let go
            server.should_exit = True

        tasks.append(asyncio.create_task(watch()))
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        server.should_exit = True
        _, late = await asyncio.wait(tasks, timeout=settings.shutdown_grace_s + 1)
        for task in late:  # the operator loop waiting for a clearing, say
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    service.db.dispose()


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (when serving from the main thread)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
