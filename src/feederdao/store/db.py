"""Open a database by URL and bring its schema to the latest migration.

SQLite (the embedded default) runs in WAL mode with ``synchronous=NORMAL``: a commit survives the
process being killed at any point (only a power cut can lose the last commits), readers never
block the writer, and foreign keys are enforced. Its file (and the WAL beside it) is readable by
its owner only (mode 0600). A unit of work that writes starts with ``BEGIN IMMEDIATE``: it holds
the write lock from its first read, so what it reads (an interval's state) cannot change before
it commits; ``read()`` units start a plain deferred transaction and never block the writer.

PostgreSQL is used as given by its URL (``postgresql+psycopg://user@host:port/db``); rows that
must not change under a unit of work are locked with ``SELECT … FOR SHARE / FOR UPDATE`` by the
repositories.

A lock is waited for ``busy_timeout_s`` at most; then, and when the database cannot be written
(read-only, disk full, gone), the unit of work raises a :class:`StoreBusyError` or
:class:`StoreUnavailableError` that carries a ``retry_after_s``. No error raised here carries SQL
or its parameters.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from feederdao.store.errors import (
    DuplicateKeyError,
    StoreBusyError,
    StoreError,
    StoreIntegrityError,
    StoreUnavailableError,
)
from feederdao.store.models import KeyValueRow

DEFAULT_URL = "sqlite:///feederdao.db"
MIGRATIONS = Path(__file__).parent / "migrations"
FILE_MODE = 0o600

StoreState = Literal["ok", "busy", "read-only", "unreachable"]


def _sqlite_setup(busy_timeout_s: float) -> Any:
    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun by ``_sqlite_begin``
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.close()

    return connect


def _sqlite_begin(conn: Connection) -> None:
    reading = conn.get_execution_options().get("feederdao_read", False)
    conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def _private_file(path: Path) -> None:
    """Create ``path`` (and tighten it and its WAL files) to mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077:
            p.chmod(FILE_MODE)


def make_engine(url: str, busy_timeout_s: float = 2.0) -> Engine:
    """An engine for ``url``; SQLite files get their folder, mode 0600 and the pragmas above."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:" and not path.startswith("file:"):
                _private_file(Path(path))
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_setup(busy_timeout_s))
            event.listen(engine, "begin", _sqlite_begin)
        else:
            timeout_ms = int(busy_timeout_s * 1000)
            engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=20,
                pool_timeout=busy_timeout_s,
                connect_args={
                    "connect_timeout": max(1, round(busy_timeout_s)),
                    "options": f"-c lock_timeout={timeout_ms}",
                },
            )
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise StoreError(f"cannot open database {safe_url(url)}: {exc}") from exc
    return engine


def safe_url(url: str) -> str:
    """``url`` with any password masked."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return url


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision (a no-op when it is current)."""
    try:
        command.upgrade(alembic_config(engine), "head")
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot migrate database {safe_url(str(engine.url))}: {translate(exc)}"
        ) from exc


class Database:
    """An engine with its session factories: ``session()`` for a unit of work that may write,
    ``read()`` for one that only reads; both commit on success and roll back on error."""

    def __init__(
        self, url: str = DEFAULT_URL, upgrade: bool = True, busy_timeout_s: float = 2.0
    ) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout_s)
        if upgrade:
            migrate(self.engine)
        if self.engine.dialect.name == "sqlite":
            path = self.engine.url.database
            if path and path != ":memory:" and not path.startswith("file:"):
                _private_file(Path(path))  # the WAL files the migration created
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time; this process's writers queue on a lock of its own
        # rather than in SQLite's busy handler (which sleeps in steps of up to 100 ms)
        self._writer: threading.Lock | None = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else None
        )
        self.busy_timeout_s = busy_timeout_s
        self._reads = sessionmaker(
            self.engine.execution_options(feederdao_read=True), expire_on_commit=False
        )

    @contextmanager
    def _unit(self, factory: sessionmaker[Session]) -> Iterator[Session]:
        with factory() as s:
            try:
                yield s
                s.commit()
            except BaseException as exc:
                with suppress(SQLAlchemyError):  # the connection is gone: the error says why
                    s.rollback()
                if isinstance(exc, SQLAlchemyError):
                    raise translate(exc) from exc
                raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work that may write (on SQLite it holds the write lock throughout)."""
        writer = self._writer
        if writer is None:
            with self._unit(self._sessions) as s:
                yield s
            return
        if not writer.acquire(timeout=self.busy_timeout_s):
            raise StoreBusyError("the database is busy (locked by another writer); retry shortly")
        try:
            with self._unit(self._sessions) as s:
                yield s
        finally:
            writer.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A unit of work that only reads (it never waits for a writer on SQLite)."""
        with self._unit(self._reads) as s:
            yield s

    def tables(self) -> set[str]:
        return set(inspect(self.engine).get_table_names())

    def ping(self) -> bool:
        try:
            with self.engine.execution_options(feederdao_read=True).connect() as c:
                c.exec_driver_sql("SELECT 1")
            return True
        except SQLAlchemyError:
            return False

    def probe(self) -> StoreState:
        """Whether the store can write now: one small committed write (``ok``), or why not."""
        try:
            with self.session() as s:
                row = s.get(KeyValueRow, "health-probe")
                now = datetime.now(UTC)
                if row is None:
                    s.add(KeyValueRow(name="health-probe", value="", updated_at=now))
                else:
                    row.updated_at = now
        except StoreBusyError:
            return "busy"
        except StoreUnavailableError as exc:
            return "read-only" if exc.read_only else "unreachable"
        except StoreError:
            return "unreachable"
        return "ok"

    def dispose(self) -> None:
        self.engine.dispose()


# -- the driver's errors as the store's -------------------------------------------------------

#: PostgreSQL SQLSTATEs: a lock or a conflicting transaction (retry soon) ...
_BUSY = {"55P03", "40P01", "40001", "57014"}
#: ... and a database that cannot be written or reached now (retry later)
_READ_ONLY = {"25006"}
_UNAVAILABLE_CLASSES = ("08", "53", "57P", "58")
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
_SQLITE_READ_ONLY = ("readonly database", "read-only", "disk i/o error", "disk is full")


def _constraint(exc: IntegrityError) -> str:
    """The unique constraint or index an integrity error names, as far as the driver says."""
    diag = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if diag:
        return str(diag)
    text = str(exc.orig)
    return text.split("UNIQUE constraint failed: ", 1)[1] if "UNIQUE constraint" in text else ""


def translate(exc: SQLAlchemyError) -> Exception:
    """A store error for SQLAlchemy's ``exc``. The message never carries the SQL statement or
    its parameters (they may hold unpublished prices)."""
    orig = getattr(exc, "orig", None)
    sqlstate = str(getattr(orig, "sqlstate", "") or "")
    text = str(orig).lower() if orig is not None else str(exc).lower()
    if isinstance(exc, IntegrityError):
        if sqlstate == "23505" or "unique constraint failed" in text:
            return DuplicateKeyError(
                f"a row with the same key is already stored ({_constraint(exc)})"
            )
        return StoreIntegrityError("the database refused the change (an integrity constraint)")
    if sqlstate in _BUSY or any(w in text for w in _SQLITE_BUSY):
        return StoreBusyError("the database is busy (locked by another writer); retry shortly")
    if sqlstate in _READ_ONLY or any(w in text for w in _SQLITE_READ_ONLY):
        return StoreUnavailableError("the database cannot be written now (read-only)", True)
    if sqlstate.startswith(_UNAVAILABLE_CLASSES) or "unable to open" in text:
        return StoreUnavailableError("the database cannot be reached now")
    if exc.connection_invalidated if isinstance(exc, DBAPIError) else False:
        return StoreUnavailableError("the database connection was lost")
    if isinstance(exc, DBAPIError) or orig is None:
        return StoreError(f"database error ({type(orig or exc).__name__})")
    return StoreError(f"cannot store a value: {orig}")  # ours, e.g. a naive datetime
