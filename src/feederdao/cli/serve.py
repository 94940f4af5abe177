"""``feederdao serve`` and the store's admin commands."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from feederdao.cli.consoles import CommandConsole
from feederdao.cli.errors import user_errors

console = CommandConsole()
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
    from feederdao.workflows.market import ServiceSettings

    cfg = ServiceSettings.load(
        settings, database_url=database_url, host=host, port=port, network=net
    )
    opcua = MarketServerSettings.load(settings)

    def announce(line: str) -> None:
        console.print(line, soft_wrap=True)
        sys.stdout.flush()  # a log pipe sees each line when it happens

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(cfg, feeder=feeder, loop=loop, announce=announce, opcua=opcua))
    console.print("stopped")


@db_app.command("upgrade")
@user_errors
def upgrade(settings: SettingsFile = None, database_url: DbUrl = None) -> None:
    """Create or migrate the database schema to the newest revision."""
    from feederdao.store.db import Database, safe_url
    from feederdao.workflows.market import ServiceSettings

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
    from feederdao.store.db import Database
    from feederdao.workflows.market import ServiceSettings
    from feederdao.workflows.market.keys import ApiKeys

    if role not in ("operator", "auditor"):
        raise typer.BadParameter(
            "role must be operator or auditor (participants get keys through the API when approved)"
        )
    cfg = ServiceSettings.load(settings, database_url=database_url)
    typer.echo(ApiKeys(Database(cfg.database_url)).issue(role, label=label).api_key)


def _keys(settings: Path | None, database_url: str | None) -> Any:
    from feederdao.store.db import Database
    from feederdao.workflows.market import ServiceSettings
    from feederdao.workflows.market.keys import ApiKeys

    cfg = ServiceSettings.load(settings, database_url=database_url)
    return ApiKeys(Database(cfg.database_url))


@db_app.command("api-keys")
@user_errors
def api_keys(settings: SettingsFile = None, database_url: DbUrl = None) -> None:
    """List every API key issued: id, role, participant, label, when issued, and whether it is
    revoked (the keys themselves are never stored)."""
    typer.echo(f"{'id':>6}  {'role':<12} {'participant':<16} {'label':<24} {'issued':<20} status")
    for k in _keys(settings, database_url).list():
        when = f"{k.revoked_at:%Y-%m-%d %H:%M:%S}" if k.revoked_at else ""
        status = f"{k.revoked_why or 'revoked'} {when}" if k.revoked_at else "valid"
        typer.echo(
            f"{k.id:>6}  {k.role:<12} {k.participant_id or '-':<16} {k.label or '-':<24} "
            f"{k.created_at:%Y-%m-%d %H:%M:%S}  {status}"
        )


@db_app.command("revoke-key")
@user_errors
def revoke_key(
    key_id: Annotated[int, typer.Argument(help="The key's id (feederdao db api-keys).")],
    settings: SettingsFile = None,
    database_url: DbUrl = None,
) -> None:
    """Revoke an API key now (the last operator key cannot be revoked: issue another first)."""
    row = _keys(settings, database_url).revoke(key_id)
    typer.echo(f"API key {row.id} ({row.role}) revoked")


@db_app.command("rotate-key")
@user_errors
def rotate_key(
    key_id: Annotated[int, typer.Argument(help="The key's id (feederdao db api-keys).")],
    settings: SettingsFile = None,
    database_url: DbUrl = None,
) -> None:
    """Replace an API key by a new one with the same role, participant and label; the old one
    stops working now. The new key is printed once."""
    new = _keys(settings, database_url).rotate(key_id)
    typer.echo(f"API key {key_id} revoked; its replacement is key {new.key_id}:")
    typer.echo(new.api_key)
