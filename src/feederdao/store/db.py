"""Open a database by URL and bring its schema to the latest migration.

SQLite (the embedded default) runs in WAL mode with ``synchronous=NORMAL``: a commit survives the
process being killed at any point (only a power cut can lose the last commits), readers never
block the writer, and foreign keys are enforced. PostgreSQL is used as given by its URL
(``postgresql+psycopg://user@host:port/db``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from feederdao.store.errors import ConflictError, DuplicateKeyError, StoreError

DEFAULT_URL = "sqlite:///feederdao.db"
MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their folder and the pragmas above."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
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
        raise StoreError(f"cannot migrate database {safe_url(str(engine.url))}: {exc}") from exc


class Database:
    """An engine with its session factory; ``session()`` commits on success, rolls back on error."""

    def __init__(self, url: str = DEFAULT_URL, upgrade: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if upgrade:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work; the driver's errors leave it as the store's (see ``translate``)."""
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException as exc:
                s.rollback()
                if isinstance(exc, SQLAlchemyError):
                    raise translate(exc) from exc
                raise

    def tables(self) -> set[str]:
        return set(inspect(self.engine).get_table_names())

    def ping(self) -> bool:
        try:
            with self.engine.connect() as c:
                c.exec_driver_sql("SELECT 1")
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


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
    if isinstance(exc, IntegrityError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate == "23505" or "UNIQUE constraint failed" in str(exc.orig):
            return DuplicateKeyError(
                f"a row with the same key is already stored ({_constraint(exc)})"
            )
        return ConflictError("the change contradicts what is stored (an integrity constraint)")
    orig = getattr(exc, "orig", None)
    if isinstance(exc, DBAPIError) or orig is None:
        return StoreError(f"database error ({type(orig or exc).__name__})")
    return StoreError(f"cannot store a value: {orig}")  # ours, e.g. a naive datetime
