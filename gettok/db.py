"""Database engines, sessions and migrations, for Postgres (production) and SQLite (embedded)."""

from __future__ import annotations

import atexit
import re
import sys
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url  # noqa: F401  (re-exported for the CLI)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from gettok.sql_text import register_sqlite_functions

if TYPE_CHECKING:  # alembic is imported only by the commands that migrate (about a second)
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs; create SQLite's folder."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL per process (each holds a connection pool)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_connection)
        atexit.register(_checkpoint_at_exit, weakref.ref(engine))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_connection(dbapi_connection, _record) -> None:
    register_sqlite_functions(dbapi_connection)  # what Postgres computes natively
    # WAL lets readers and one writer work at once; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def checkpoint_sqlite(engine: Engine) -> None:
    """Move the WAL's pages into the database file and close the pool, so the `.db` file alone
    holds the data (researchers copy that one file). Runs at every process exit."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def _checkpoint_at_exit(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is None:  # dropped earlier (tests clear the engine cache): nothing left open
        return
    try:
        checkpoint_sqlite(engine)
    except Exception as exc:  # noqa: BLE001 - at exit the data is safe in the WAL either way
        sys.stderr.write(
            f"note: the SQLite WAL was not folded into {engine.url.database} ({exc}); "
            "copy its -wal file with it\n"
        )


def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def without_jit(session: Session) -> None:
    """Turn Postgres' JIT off for the rest of this transaction (no-op elsewhere).

    For campaign-wide aggregates over CTEs Postgres has no statistics for, so it guesses row
    counts in the millions and JIT-compiles hundreds of functions: 6 s of a 27 s dry-run query
    at 100k videos, and the whole dry run took 40 s with JIT and 23 s without."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


# Any constant shared by every gettok process: pg_advisory_xact_lock's key for schema upgrades.
MIGRATION_LOCK_KEY = 0x6765_74746F6B  # "gettok"


def migration_engine(url: str) -> Engine:
    """An engine for upgrades only, whose transactions really cover DDL.

    pysqlite does not open a transaction before CREATE/ALTER, so each statement would commit on
    its own and a killed upgrade would leave half a schema. Here the driver's own transaction
    handling is off and every transaction is `BEGIN IMMEDIATE`: atomic, and it takes SQLite's write
    lock at once, so a second upgrader waits instead of building the same tables.
    """
    url = normalise_url(url)
    if not url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool)
    engine = create_engine(url, connect_args={"timeout": 60}, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record) -> None:
        dbapi_connection.isolation_level = None
        _sqlite_connection(dbapi_connection, record)

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration, read from the migration files' `revision`/`down_revision` lines:
    what Alembic would call head, without importing Alembic (about half a second)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revisions.update(_REVISION.findall(text))
        parents.update(_DOWN_REVISION.findall(text))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


_REVISION = re.compile(r'^revision(?:: str)? = "([^"]+)"', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision(?:: str \| None)? = "([^"]+)"', re.MULTILINE)


def ensure_schema(url: str) -> None:
    """Migrate only when the database is not at head: the commands people run many times a day
    (export, report, status) then cost one query, not an Alembic start."""
    from sqlalchemy import inspect

    engine = get_engine(url)
    with engine.connect() as connection:
        if inspect(connection).has_table("alembic_version"):
            current = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            if [row[0] for row in current] == [head_revision()]:
                return
    upgrade(url)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def database_identity(url: str) -> str:
    """The random id the first migration gave this database (for cache keys)."""

    with get_engine(url).connect() as connection:
        return connection.execute(text("SELECT id FROM database_identity")).scalar_one()


def dialect_insert(bind: Session | Engine, table):
    """`INSERT` with the dialect's `ON CONFLICT` clauses (Postgres and SQLite share them)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def upsert_rows(
    session: Session,
    table,
    rows: list[dict],
    conflict: list[str],
    update: Sequence[str] = (),
    returning: str | None = None,
) -> list[tuple]:
    """INSERT rows ... ON CONFLICT (`conflict`) DO UPDATE `update` (or DO NOTHING), executemany."""
    stmt = dialect_insert(session, table)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=conflict, set_={c: stmt.excluded[c] for c in update}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=conflict)
    if returning:
        return list(session.connection().execute(stmt.returning(table.c[returning]), rows))
    session.connection().execute(stmt, rows)
    return []
