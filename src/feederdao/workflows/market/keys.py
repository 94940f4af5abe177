"""API keys: issue, identify, revoke, rotate; the operator key a fresh store starts with.

Only a key's SHA-256 is stored, so a key is shown once, when it is issued (or rotated). A revoked
key stops working at once, in every process on the same database. Needs only the database
(``feederdao db`` uses it without loading the network or the chain)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from feederdao.files import write_private
from feederdao.store import repositories as repo
from feederdao.store.db import Database
from feederdao.store.models import ApiKeyRow


@dataclass(frozen=True)
class Caller:
    """Who a valid key belongs to, and which key it is."""

    role: str
    participant_id: str | None = None
    key_id: int | None = None

    @property
    def sees_everything(self) -> bool:
        return self.role in ("operator", "auditor")

    @property
    def who(self) -> str:
        """How records name the caller (``api key 7``)."""
        return f"api key {self.key_id}" if self.key_id is not None else "api"


@dataclass(frozen=True)
class IssuedKey:
    key_id: int
    api_key: str
    role: str
    participant_id: str | None


class ApiKeys:
    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.clock = clock or (lambda: datetime.now(UTC))

    def issue(self, role: str, participant_id: str | None = None, label: str = "") -> IssuedKey:
        """A new key for ``role`` (a participant key needs an approved participant)."""
        with self.db.session() as s:
            key_id, secret = repo.issue_api_key(s, role, participant_id, label)
        return IssuedKey(key_id, secret, role, participant_id)

    def identify(self, secret: str) -> Caller | None:
        """The caller a valid key (unrevoked, unexpired) belongs to; None otherwise."""
        with self.db.read() as s:
            found = repo.identify(s, secret, self.clock())
        return None if found is None else Caller(*found)

    def list(self) -> list[ApiKeyRow]:
        """Every key ever issued (their hashes are not shown), oldest first."""
        with self.db.read() as s:
            return repo.list_api_keys(s)

    def revoke(self, key_id: int) -> ApiKeyRow:
        """Revoke a key now; the last operator key cannot be revoked (issue another first)."""
        with self.db.session() as s:
            return repo.revoke_api_key(s, key_id, self.clock())

    def rotate(self, key_id: int) -> IssuedKey:
        """Replace a key by a new one with the same role, participant and label; the old one is
        revoked in the same transaction."""
        with self.db.session() as s:
            old = repo.get_api_key(s, key_id)
            role, participant_id = old.role, old.participant_id
            new_id, secret = repo.rotate_api_key(s, key_id, self.clock())
        return IssuedKey(new_id, secret, role, participant_id)

    def bootstrap_operator_key(self, workdir: Path) -> Path | None:
        """On a store without an operator key, issue one and write it to ``operator.key``
        (mode 0600); None when the store has one already."""
        with self.db.session() as s:
            if repo.count_keys(s, "operator"):
                return None
            _, key = repo.issue_api_key(s, "operator", label="bootstrap")
        path = workdir / "operator.key"
        write_private(path, key + "\n")
        return path
