"""Shared fixtures: fresh databases on SQLite and the machine's Postgres, and Prefect's harness.

`GETTOK_TEST_BACKENDS` (default "sqlite,postgres") chooses where `db_url` tests run; Postgres is
at GETTOK_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432), trust auth.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gettok import db
from tests.no_waits import no_waits

# Every retry keeps its policy's tries and loses its waits (stamina's testing mode), before any
# Prefect task decorator reads `task_retries`. A test that measures a real wait turns it off for
# a moment: `with stamina.set_testing(False): ...`.
no_waits()

pytest_plugins = ["tests.sandbox_fixtures"]

POSTGRES = os.environ.get("GETTOK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
BACKENDS = [
    b.strip()
    for b in os.environ.get("GETTOK_TEST_BACKENDS", "sqlite,postgres").split(",")
    if b.strip()
]
FIXTURES = Path(__file__).parent / "fixtures"


def _admin_engine():
    return create_engine(
        f"{POSTGRES}/postgres".replace("postgresql://", "postgresql+psycopg://"),
        isolation_level="AUTOCOMMIT",
    )


def create_postgres_database() -> str:
    name = f"gettok_test_{uuid.uuid4().hex[:12]}"
    with _admin_engine().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return f"{POSTGRES}/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    db.get_engine.cache_clear()
    with _admin_engine().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database; dropped afterwards."""
    if backend == "postgres":
        url = create_postgres_database()
        try:
            db.upgrade(url)
            yield url
        finally:
            drop_postgres_database(url)
    else:
        url = f"sqlite:///{tmp_path / 'gettok.db'}"
        db.upgrade(url)
        yield url
        db.get_engine.cache_clear()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> Iterator[str]:
    """A fresh migrated database on each configured backend."""
    yield from fresh_database(request.param, tmp_path)


@pytest.fixture
def pg_url(tmp_path) -> Iterator[str]:
    """A fresh migrated Postgres database (for tests of Postgres-only behaviour)."""
    yield from fresh_database("postgres", tmp_path)


@pytest.fixture
def sqlite_url(tmp_path) -> Iterator[str]:
    yield from fresh_database("sqlite", tmp_path)


@pytest.fixture(scope="session")
def prefect_harness():
    """A throwaway Prefect server for the whole session (started only if a test asks for it)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def settings_env(monkeypatch, tmp_path):
    """Isolate a test from the developer's .env and GETTOK_ variables; data under tmp_path."""
    for key in list(os.environ):
        if key.startswith("GETTOK_") and not key.startswith("GETTOK_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GETTOK_DATA_DIR", str(tmp_path / "data"))
    return tmp_path
