"""API keys: issue, identify; the operator key a fresh store starts with.

Only a key's SHA-256 is stored, so a key is shown once, when it is issued. Needs only the
database (``feederdao db`` uses it without loading the network or the chain)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from feederdao.store import repositories as repo
from feederdao.store.db import Database


@dataclass(frozen=True)
class Caller:
    """Who a valid key belongs to."""

    role: str
    participant_id: str | None = None

    @property
    def sees_everything(self) -> bool:
        return self.role in ("operator", "auditor")


@dataclass(frozen=True)
class IssuedKey:
    key_id: int
    api_key: str
    role: str
    participant_id: str | None


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    def issue(self, role: str, participant_id: str | None = None, label: str = "") -> IssuedKey:
        """A new key for ``role`` (a participant key needs an approved participant)."""
        with self.db.session() as s:
            key_id, secret = repo.issue_api_key(s, role, participant_id, label)
        return IssuedKey(key_id, secret, role, participant_id)

    def identify(self, secret: str) -> Caller | None:
        """The caller a valid, unrevoked key belongs to; None otherwise."""
        with self.db.session() as s:
            found = repo.identify(s, secret)
        return None if found is None else Caller(*found)

    def bootstrap_operator_key(self, workdir: Path) -> Path | None:
        """On a store without an operator key, issue one and write it to ``operator.key``
        (mode 0600); None when the store has one already."""
        with self.db.session() as s:
            if repo.count_keys(s, "operator"):
                return None
            _, key = repo.issue_api_key(s, "operator", label="bootstrap")
        path = workdir / "operator.key"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return path
