"""``feederdao serve``: the API and the operator loop in one process.

On embedded defaults it starts an in-process chain with a freshly deployed DAO, keeps the market
in SQLite, and stands the feeder simulator in for the equipment; settings point it at a real
chain, PostgreSQL and OPC UA servers instead.

The market OPC UA server's users, PKI folder and policies come from the ``[opcua]`` settings
(:class:`~feederdao.scada_bridge.settings.MarketServerSettings`); its ``SuspendDispatch`` and
``ResumeDispatch`` drive the operator loop's :class:`~feederdao.workflows.dispatch.DispatchControl`.
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

from feederdao.api.app import create_app, warm_up
from feederdao.files import write_private
from feederdao.grid_model.profiles import RESOLUTION_MIN, build_profiles
from feederdao.scada_bridge.bridge import Bridge
from feederdao.scada_bridge.security import (
    ServerSecurity,
    generate_certificate,
    hash_password,
    read_users_file,
)
from feederdao.scada_bridge.server import MarketServer
from feederdao.scada_bridge.settings import MarketServerSettings
from feederdao.store.audit import StoreAuditLog
from feederdao.workflows.dispatch import DispatchControl, pki_for, simulated_feeder
from feederdao.workflows.market import MarketService, ServiceSettings
from feederdao.workflows.metrics import Metrics
from feederdao.workflows.operator import Operator

log = logging.getLogger("feederdao.serve")


def bootstrap_opcua_users(workdir: Path) -> tuple[Path, Path | None]:
    """Without a configured users file: ``<workdir>/opcua-users.toml`` with a viewer ``scada``
    and an operator ``operator``, made once; their passwords go to
    ``<workdir>/opcua-credentials.txt`` (0600). Returns the users file and, when it was just
    made, the credentials file."""
    users = workdir / "opcua-users.toml"
    if users.is_file():
        return users, None
    lines, creds = [], []
    for name, role in (("scada", "viewer"), ("operator", "operator")):
        password = secrets.token_urlsafe(16)
        creds.append(f"{name} ({role}): {password}")
        lines += [
            f"[users.{name}]",
            f'password_hash = "{hash_password(password)}"',
            f'role = "{role}"',
            "",
        ]
    credentials = workdir / "opcua-credentials.txt"
    write_private(credentials, ("\n".join(creds) + "\n").encode())
    write_private(users, "\n".join(lines).encode())
    return users, credentials


@contextlib.asynccontextmanager
async def _market_server(
    settings: ServiceSettings,
    workdir: Path,
    opcua: MarketServerSettings | None = None,
    control: DispatchControl | None = None,
    announce: Callable[[str], None] = print,
) -> AsyncIterator[MarketServer]:
    """The market OPC UA server: certificate and trust folder in the PKI folder, users from
    the users file, ``SuspendDispatch``/``ResumeDispatch`` wired to ``control``."""
    opcua = opcua or MarketServerSettings()
    pki = Path(opcua.pki) if opcua.pki else await pki_for(workdir)
    if not (pki / "market.der").is_file():
        await generate_certificate(
            pki / "market_key.pem",
            pki / "market.der",
            "urn:feederdao:market:server",
            True,
            "127.0.0.1",
        )
    if opcua.users_file:
        users_path = Path(opcua.users_file)
    else:
        users_path, made = bootstrap_opcua_users(workdir)
        if made:
            announce(f"OPC UA users in {users_path}, their passwords in {made}")
    pinned = tuple(p for p in (pki / "client.der",) if p.is_file())
    security = ServerSecurity(
        pki / "market.der",
        pki / "market_key.pem",
        pinned,
        read_users_file(users_path),
        opcua.policies,
        trust_folder=pki,
    )
    server = MarketServer(
        settings.market_endpoint,
        security,
        on_suspend=control.suspend if control is not None else None,
        on_resume=control.resume if control is not None else None,
    )
    async with server:
        yield server


async def serve(
    settings: ServiceSettings,
    feeder: bool = True,
    loop: bool = True,
    announce: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    opcua: MarketServerSettings | None = None,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Run until ``stop`` is set or the process gets SIGTERM or SIGINT; ``clock`` replaces the
    wall clock of the market (for rehearsals). Stopping never waits for a clearing in progress
    (it is redone after a restart) and waits for requests in flight ``shutdown_grace_s`` at
    most."""
    workdir = Path(settings.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    service = await asyncio.to_thread(MarketService.start, settings)
    if clock is not None:
        service.clock = clock
    for note in service.system.notes():
        log.warning("%s", note)
        announce(f"warning: {note}")
    key_file = service.keys.bootstrap_operator_key(workdir)
    if key_file:
        announce(f"operator API key written to {key_file}")
    metrics = Metrics()
    audit = StoreAuditLog(service.db)
    control = DispatchControl(audit)
    stop = stop or asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(service.db.dispose)
        publisher = bridge = None
        if loop:
            publisher = await stack.enter_async_context(
                _market_server(settings, workdir, opcua, control, announce)
            )
            announce(f"market OPC UA server on {settings.market_endpoint}")
        if loop and feeder:
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            now = now.replace(minute=now.minute - now.minute % RESOLUTION_MIN)
            profiles = build_profiles(
                service.network.loaded,
                service.network.view,
                now,
                1,
            )
            sim = await stack.enter_async_context(
                simulated_feeder(service.network, profiles, 0, workdir)
            )
            bridge = await stack.enter_async_context(Bridge(sim.nodemap, sim.client, audit))
            announce(f"feeder simulator on {sim.simulator.endpoint}")
        operator = Operator(service, metrics, audit, publisher, bridge, control)
        app = create_app(operator)
        await warm_up(app)
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
            f"API on http://{settings.host}:{settings.port} (console at /, OpenAPI at /docs); "
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


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (when serving from the main thread)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
