"""The OPC UA command audit log kept in the database (same interface as the JSON-lines log)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from feederdao.store.db import Database
from feederdao.store.models import CommandAuditRow


class StoreAuditLog:
    """Each ``record_many`` is one committed transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, event: str, **fields: Any) -> None:
        self.record_many([(event, fields)])

    def record_many(self, entries: list[tuple[str, dict[str, Any]]]) -> None:
        with self.db.session() as s:
            s.add_all(
                CommandAuditRow(
                    event=event,
                    cycle=_text(fields.get("cycle")),
                    device_id=_text(fields.get("device")),
                    fields={k: _plain(v) for k, v in fields.items()},
                )
                for event, fields in entries
            )

    def records(self, event: str | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
        with self.db.read() as s:
            q = select(CommandAuditRow).order_by(CommandAuditRow.id).limit(limit)
            if event is not None:
                q = q.where(CommandAuditRow.event == event)
            return [{"time": r.at.timestamp(), "event": r.event, **r.fields} for r in s.scalars(q)]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)
