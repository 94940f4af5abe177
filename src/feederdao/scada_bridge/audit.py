"""The command audit log: one JSON line per command, status code and read-back, fsynced."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Protocol


class AuditSink(Protocol):
    """Where the bridge records commands: this JSON-lines file, or the service's database."""

    def record(self, event: str, **fields: Any) -> None: ...

    def record_many(self, entries: list[tuple[str, dict[str, Any]]]) -> None: ...

    def records(self, event: str | None = None) -> list[dict[str, Any]]: ...


class AuditLog:
    """Append-only JSON lines; ``records()`` reads them back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, event: str, **fields: Any) -> None:
        self.record_many([(event, fields)])

    def record_many(self, entries: list[tuple[str, dict[str, Any]]]) -> None:
        """Append several records with one write and one fsync."""
        now = time.time()
        text = "".join(
            json.dumps({"time": now, "event": event, **fields}, default=str) + "\n"
            for event, fields in entries
        )
        with self.path.open("a") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        return [r for r in out if event is None or r["event"] == event]
