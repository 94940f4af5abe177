"""The schema the migrations build is the schema the models describe, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from feederdao.store import repositories as repo
from feederdao.store.db import Database, safe_url
from feederdao.store.errors import ConflictError, StoreError
from feederdao.store.models import Base


def test_migrations_match_the_models(database_url: str) -> None:
    db = Database(database_url)
    Database(database_url).dispose()  # upgrading a current schema is a no-op
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    db.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_times_come_back_in_utc_and_intervals_do_not_overlap(database_url: str) -> None:
    db = Database(database_url)
    start = datetime(2026, 6, 21, 14, 0, tzinfo=UTC).astimezone()  # any zone in, UTC out
    with db.session() as s:
        row = repo.open_interval(s, start, 4, 15, start - timedelta(minutes=5))
    with db.session() as s:
        back = repo.get_interval(s, row.id)
        assert back.start == start and back.start.tzinfo is UTC
        with pytest.raises(ConflictError, match="already covers"):
            repo.open_interval(s, start + timedelta(minutes=45), 4, 15, start)
    with pytest.raises(StoreError, match="naive"), db.session() as s:
        repo.open_interval(s, datetime(2027, 1, 1), 4, 15, datetime(2027, 1, 1))
    db.dispose()


def test_passwords_are_masked_in_messages() -> None:
    assert safe_url("postgresql://op:secret@db:5432/m") == "postgresql://op:***@db:5432/m"
    assert safe_url("sqlite:///m.db") == "sqlite:///m.db"
