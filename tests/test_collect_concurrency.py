"""One collector per day of a campaign: on SQLite as on Postgres, and across window sizes."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

from sqlalchemy import select

from gettok import claims
from gettok.clients.research_api import RequestLedger
from gettok.db import session_scope
from gettok.models.schema import EngagementSnapshot, WorkClaim
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.state import SandboxState
from gettok.tasks.collect import collect_campaign
from tests.test_collect_faults import (
    CAMPAIGN,
    END,
    START,
    count,
    expected_ids,
    sandbox_with_hook,
    settings_for,
    stored_ids,
    windows,
)


def slow(path: str, state: SandboxState) -> None:
    if path.startswith("/v2/research/"):
        time.sleep(0.05)


def run_together(*settings_list) -> list:
    results = []

    def collector(settings) -> None:
        results.append(collect_campaign(settings, CAMPAIGN, START, END))

    threads = [threading.Thread(target=collector, args=(s,)) for s in settings_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def assert_each_page_once(database_url: str, expected: set[int]) -> None:
    assert stored_ids(database_url) == expected
    # One sighting per video: no day was paged by two collectors.
    assert count(database_url, EngagementSnapshot) == len(expected)
    pages = sum(r.pages for r in windows(database_url).values())
    assert RequestLedger(database_url, 1).used() == pages  # no page asked for twice


def test_two_collectors_on_sqlite_never_page_a_day_twice(sqlite_url, settings_env):
    config = SandboxConfig(fault_seed=1, videos_per_day=400)
    with sandbox_with_hook(config, slow) as sandbox:
        settings = settings_for(sandbox, sqlite_url)
        results = run_together(settings, settings)
        searches = sandbox.state.counters["searches"]
        expected = expected_ids(sandbox)
    outcomes = [w for result in results for w in result.windows]
    assert {w.status for w in outcomes} <= {"done", "skipped", "busy"}
    assert sum(1 for w in outcomes if w.status == "done") == 4
    assert searches == 4
    assert_each_page_once(sqlite_url, expected)
    with session_scope(sqlite_url) as session:
        assert session.scalars(select(WorkClaim)).all() == []  # every day given back


def test_collectors_with_different_window_sizes_never_fetch_a_day_twice(db_url, settings_env):
    config = SandboxConfig(fault_seed=1, videos_per_day=400)
    with sandbox_with_hook(config, slow) as sandbox:
        daily = settings_for(sandbox, db_url, window_days=1)
        two_days = settings_for(sandbox, db_url, window_days=2)
        run_together(daily, two_days)
        # Whatever each left busy, later runs of either size finish without repeating a day.
        collect_campaign(two_days, CAMPAIGN, START, END)
        last = collect_campaign(daily, CAMPAIGN, START, END)
        expected = expected_ids(sandbox)
    assert last.state == "completed" and last.requests == 0
    assert_each_page_once(db_url, expected)


def test_a_day_claimed_by_a_killed_collector_is_taken_over(sandbox, sqlite_url, settings_env):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(dead.stdout)
    settings = settings_for(sandbox, sqlite_url)
    collect_campaign(settings, CAMPAIGN, START, START)  # creates the campaign (id 1)
    day = END.toordinal()
    held = claims.claim(sqlite_url, "collect:1", [day], worker=f"{socket.gethostname()}:{pid}:x")
    assert held == [day]
    result = collect_campaign(settings, CAMPAIGN, END, END)
    assert result.state == "completed", [(w.window, w.status, w.note) for w in result.windows]
    assert stored_ids(sqlite_url) == expected_ids(sandbox, START, START) | expected_ids(
        sandbox, END, END
    )


def test_a_day_held_by_a_live_collector_is_left_to_it(sandbox, sqlite_url, settings_env):
    settings = settings_for(sandbox, sqlite_url)
    collect_campaign(settings, CAMPAIGN, START, START)
    day = END.toordinal()
    claims.claim(sqlite_url, "collect:1", [day], worker=f"{claims.worker_name()}:other")
    result = collect_campaign(settings, CAMPAIGN, END, END)
    (outcome,) = result.windows
    assert outcome.status == "busy" and "another collector" in outcome.note
    assert result.state == "incomplete: 1 window(s) held by another collector"
