"""Schema upgrades: serialised across processes, and all-or-nothing when a process is killed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from gettok import db
from tests.conftest import BACKENDS, create_postgres_database, drop_postgres_database

UPGRADE = "import sys; from gettok.db import upgrade; upgrade(sys.argv[1])"

# Kills its own process (SIGKILL, no cleanup) at the Nth CREATE TABLE of the upgrade.
KILLED_UPGRADE = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from gettok.db import upgrade

seen = 0

@event.listens_for(Engine, "before_cursor_execute")
def kill_midway(conn, cursor, statement, *args):
    global seen
    if statement.lstrip().upper().startswith("CREATE TABLE"):
        seen += 1
        if seen == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

upgrade(sys.argv[1])
"""


@pytest.fixture(params=BACKENDS)
def empty_url(request, tmp_path):
    """A database with no schema at all."""
    if request.param == "postgres":
        url = create_postgres_database()
        yield url
        drop_postgres_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'gettok.db'}"
        db.get_engine.cache_clear()


def tables(url: str) -> set[str]:
    engine = create_engine(db.normalise_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[1],
    )


def test_concurrent_upgrades_of_a_fresh_database_all_succeed(empty_url):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE, empty_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[1],
        )
        for _ in range(6)
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert [code for code, _ in outcomes] == [0] * 6, [err[-800:] for _, err in outcomes]
    assert db.current_revision(empty_url) is not None
    db.upgrade(empty_url)  # and again: nothing to do


@pytest.mark.parametrize("nth_table", [3, 12])
def test_an_upgrade_killed_midway_leaves_no_half_schema(empty_url, nth_table):
    killed = run(KILLED_UPGRADE, empty_url, str(nth_table))
    assert killed.returncode == -9, killed.stderr[-2000:]
    # Nothing of the killed upgrade survives: no tables, no version.
    assert tables(empty_url) - {"alembic_version"} == set()
    db.get_engine.cache_clear()
    assert db.current_revision(empty_url) is None
    # The next upgrade builds the whole schema.
    assert run(UPGRADE, empty_url).returncode == 0
    assert {"videos", "downloads", "transcripts", "annotations"} <= tables(empty_url)


def test_the_quick_head_check_agrees_with_alembic():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert db.head_revision() == script.get_current_head()


def test_ensure_schema_migrates_a_database_behind_head_and_leaves_one_at_head(empty_url):
    db.upgrade(empty_url, "0001")
    db.ensure_schema(empty_url)
    assert db.current_revision(empty_url) == db.head_revision()
    assert "annotations" in inspect(db.get_engine(empty_url)).get_table_names()
    db.ensure_schema(empty_url)  # at head: one query, nothing applied
    assert db.current_revision(empty_url) == db.head_revision()
