"""``feederdao serve`` and the store's admin commands."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from feederdao.cli.errors import user_errors

console = Console()
db_app = typer.Typer(help="The market database: migrations and API keys.", no_args_is_help=True)

SettingsFile = Annotated[
    Path | None, typer.Option("--settings", help="TOML file with a \\[service] table.")
]
DbUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="sqlite:///file.db or postgresql://user@host/db."),
]


@user_errors
def serve(
    settings: SettingsFile = None,
    database_url: DbUrl = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (loopback).")] = None,
    port: Annotated[int | None, typer.Option(help="API port.")] = None,
    net: Annotated[str | None, typer.Option("--net", help="The feeder's network.")] = None,
    loop: Annotated[bool, typer.Option(help="Run the operator loop (off: API only).")] = True,
    feeder: Annotated[
        bool, typer.Option(help="Start the feeder simulator and push setpoints to it.")
    ] = True,
) -> None:
    """Run the market API and the operator loop: each interval is cleared, persisted, anchored
    on chain, published over OPC UA, and its setpoints pushed to the feeder."""
    from feederdao.api.serve import serve as run
    from feederdao.scada_bridge.settings import MarketServerSettings
    from feederdao.workflows.service import ServiceSettings

    cfg = ServiceSettings.load(
        settings, database_url=database_url, host=host, port=port, network=net
    )
    opcua = MarketServerSettings.load(settings)

    def announce(line: str) -> None:
        console.print(line, soft_wrap=True)
        sys.stdout.flush()  # a log pipe sees each line when it happens

    try:
        asyncio.run(run(cfg, feeder=feeder, loop=loop, announce=announce, opcua=opcua))
    except KeyboardInterrupt:
        console.print("stopped")


@db_app.command("upgrade")
@user_errors
def upgrade(settings: SettingsFile = None, database_url: DbUrl = None) -> None:
    """Create or migrate the database schema to the newest revision."""
    from feederdao.store.db import Database, safe_url
    from feederdao.workflows.service import ServiceSettings

    cfg = ServiceSettings.load(settings, database_url=database_url)
    db = Database(cfg.database_url)
    console.print(f"{safe_url(cfg.database_url)}: {len(db.tables())} tables, schema current")


@db_app.command("api-key")
@user_errors
def api_key(
    role: Annotated[str, typer.Argument(help="operator or auditor")],
    label: Annotated[str, typer.Option(help="Who the key is for.")] = "",
    settings: SettingsFile = None,
    database_url: DbUrl = None,
) -> None:
    """Issue an operator or auditor API key (printed once; only its hash is stored)."""
    from feederdao.store import repositories as repo
    from feederdao.store.db import Database
    from feederdao.workflows.service import ServiceSettings

    if role not in ("operator", "auditor"):
        raise typer.BadParameter(
            "role must be operator or auditor (participants get keys through the API when approved)"
        )
    cfg = ServiceSettings.load(settings, database_url=database_url)
    with Database(cfg.database_url).session() as s:
        key = repo.issue_api_key(s, role, label=label)
    console.print(key)
