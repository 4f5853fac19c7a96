"""One collector per day of a campaign, whatever the window size.

Two collectors started on one campaign (a cron run overlapping a manual one, or runs with
different GETTOK_WINDOW_DAYS) must never page the same day twice. A collector holds every day
of the window it pages:
- Postgres: one session advisory lock per (campaign, day); the database frees them by itself
  when a killed collector's connection drops.
- SQLite (no advisory locks): a `work_claims` row per (campaign, day) naming the holder
  (host:pid:token); a claim of a process proven dead is taken over at once, others after a lease.
A window whose days were all collected by other windows (another window size) is not paged
again; one partly collected is narrowed to the days still missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from sqlalchemy import text

from gettok import claims
from gettok.db import get_engine
from gettok.retry import RetryPolicy, retrying
from gettok.tasks.collect.windows import CollectionWindow

# Postgres advisory lock namespace for collection days ("gt"), high bits of a one-bigint key.
DAY_LOCK = 0x6774
# A few tries a second apart: the lock of a collector killed a moment ago may outlive it briefly.
CLAIM_RETRY = RetryPolicy(attempts=3, wait_initial_s=1, wait_max_s=1, wait_jitter_s=0)
# A SQLite day claim of a collector on another host outlives it by at most this long.
DAY_LEASE_S = 6 * 3600


class DaysBusy(Exception):
    """Another collector holds one of the window's days."""


def day_lock_key(campaign_id: int, day: date) -> int:
    """One signed 64-bit key per (campaign, day): namespace, campaign id, day ordinal."""
    return (DAY_LOCK << 48) | ((campaign_id & 0xFFFFFF) << 24) | day.toordinal()


@contextmanager
def claim_days(database_url: str, campaign_id: int, window: CollectionWindow) -> Iterator[bool]:
    """Hold every day of `window` for this collector; yields False if another holds one."""
    engine = get_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            keys = [day_lock_key(campaign_id, d) for d in window.each_day()]
            with _held(lambda: _lock_all(conn, keys), lambda: _unlock(conn, keys)) as held:
                yield held
        return
    stage, days = f"collect:{campaign_id}", [d.toordinal() for d in window.each_day()]
    worker = f"{claims.worker_name()}:{uuid.uuid4().hex[:8]}"

    def take() -> bool:
        got = claims.claim(database_url, stage, days, lease_s=DAY_LEASE_S, worker=worker)
        if len(got) < len(days):
            claims.release(database_url, stage, got, worker=worker)
            return False
        return True

    with _held(take, lambda: claims.release(database_url, stage, days, worker=worker)) as held:
        yield held


@contextmanager
def _held(take, give_back) -> Iterator[bool]:
    def attempt_once() -> None:
        if not take():
            raise DaysBusy

    try:
        for attempt in retrying(CLAIM_RETRY, on=DaysBusy):
            with attempt:
                attempt_once()
        held = True
    except DaysBusy:
        held = False
    try:
        yield held
    finally:
        if held:
            give_back()


def _lock_all(conn, keys: list[int]) -> bool:
    """All the keys or none (a partial set is given back at once)."""
    taken = []
    for key in keys:
        if not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}):
            _unlock(conn, taken)
            return False
        taken.append(key)
    conn.commit()
    return True


def _unlock(conn, keys: list[int]) -> None:
    for key in keys:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    conn.commit()


def missing_runs(window: CollectionWindow, done: set[date]) -> list[CollectionWindow]:
    """The window's days not in `done`, as windows of consecutive days."""
    runs: list[list[date]] = []
    for day in window.each_day():
        if day in done:
            continue
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return [CollectionWindow(start=r[0], end=r[-1], part=window.part) for r in runs]
