"""Two chaos scenarios beside the kills (issue 20 #2, #3), shared by tests/test_chaos.py and
bench/chaos.py.

- restore: `gettok run` is killed at a seeded point of collection, a backup of the database is
  taken, the run is finished, the backup is restored (the database forgets what the finished
  run stored) and `gettok run` runs again. Nothing may be missing against the uninterrupted
  run: no cache (of Prefect or anyone) may say that what the restored database lacks is done.
- quota_days: one day whose videos need more than a day's quota (seeded size and quota),
  collected by `gettok collect` once per simulated day (the sandbox forgets its searches at each
  midnight, as the live API does). It must finish within a few days with every video of the day
  once, and no video served twice: a stored page is never fetched again.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import sys
import time
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, select, text

from gettok import db
from gettok.models.campaign import load_campaign
from gettok.models.schema import CampaignVideo
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.research_api import _compile
from tests.chaos_trials import (
    Baseline,
    Trial,
    TrialReport,
    differences,
    media_problems,
    progress,
    run_trial,
    stored,
)
from tests.chaos_world import (
    NO_WAITS,
    KillPoint,
    World,
    ledgered_sandbox,
    pipeline_env,
    run_gettok,
)

SCENARIOS = ("restore", "quota_days")
QUOTA_DAY = date(2022, 12, 7)
MAX_QUOTA_DAYS = 6


def run_any(
    trial: Trial, world: World, baseline: Baseline, db_url: str, data_dir: Path, api: str
) -> TrialReport:
    """A kill trial, or one of the scenarios, by the trial's stage."""
    if trial.stage == "restore":
        return run_restore_trial(trial, world, baseline, db_url, data_dir, api)
    if trial.stage == "quota_days":
        return run_quota_days_trial(trial, world, db_url, data_dir, api)
    return run_trial(trial, world, baseline, db_url, data_dir, api)


# --- restore ------------------------------------------------------------------------------


def _admin(db_url: str):
    server = db_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")


def _copy_postgres(db_url: str, source: str, target: str) -> None:
    db.get_engine.cache_clear()  # our own pooled connections would block the copy
    with _admin(db_url).connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": source},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{source}"'))


def backup(db_url: str, folder: Path) -> str:
    """A consistent copy of the database; returns what `restore` takes."""
    if db_url.startswith("sqlite"):
        path = folder / "backup.db"
        with sqlite3.connect(db_url.split("///", 1)[1]) as source, sqlite3.connect(path) as copy:
            source.backup(copy)
        return str(path)
    name = db_url.rsplit("/", 1)[1] + "_backup"
    _copy_postgres(db_url, db_url.rsplit("/", 1)[1], name)
    return name


def restore(db_url: str, copy: str) -> None:
    """The database becomes the backup again (same address, same identity)."""
    db.get_engine.cache_clear()
    if db_url.startswith("sqlite"):
        path = Path(db_url.split("///", 1)[1])
        for leftover in (path.with_name(path.name + s) for s in ("-wal", "-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(copy, path)
        return
    _copy_postgres(db_url, copy, db_url.rsplit("/", 1)[1])
    with _admin(db_url).connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))


def run_restore_trial(
    trial: Trial, world: World, baseline: Baseline, db_url: str, data_dir: Path, api: str
) -> TrialReport:
    # Killed mid-collection: the backup lacks windows that the finished run then records done.
    kill = Trial(trial.seed, "collect", trial.backend).kill_point(baseline.totals)
    started = time.monotonic()
    db.upgrade(db_url)
    problems: list[str] = []
    with ledgered_sandbox(world.sandbox_config()) as served:
        env = pipeline_env(served, db_url, data_dir, api)
        first = run_gettok(
            world.args(), env, data_dir / "killed.log", kill, poll=lambda: progress(db_url)
        )
        time.sleep(0.5)
        copy = backup(db_url, data_dir)
        finished = run_gettok(world.args(), env, data_dir / "finished.log")
        restore(db_url, copy)
        queries = len([r for r in served.requests if r.kind == "query"])
        again = run_gettok(world.args(), env, data_dir / "after-restore.log")
        asked = len([r for r in served.requests if r.kind == "query"]) - queries
    for name, outcome in (("the run after the kill", finished), ("the rerun", again)):
        if outcome.returncode != 0:
            problems.append(f"{name} failed (rc {outcome.returncode}): {outcome.log[-2000:]}")
    final = stored(db_url)
    diff, lost = differences(baseline.stored, final)
    problems += diff + media_problems(data_dir / "media", final)
    if final.claims:
        problems.append(f"{final.claims} work claims left after the rerun")
    # The backup holds fewer collect requests than a whole run: the rerun must ask again.
    if first.at_kill and first.at_kill["collect"] < baseline.totals["collect"] and not asked:
        problems.append("the backup lacked windows, yet the rerun asked the API nothing")
    return TrialReport(
        trial,
        kill,
        first.killed,
        first.at_kill,
        problems,
        lost,
        final.duplicates,
        round(time.monotonic() - started, 1),
    )


# --- quota over several days ---------------------------------------------------------------


def quota_config(seed: int) -> SandboxConfig:
    """A day of five or six pages (slots of invisible videos included) and 3-4 requests a day:
    more than a day's quota, and room for a page besides each day's lost resume."""
    rng = random.Random(seed)
    return SandboxConfig(
        videos_per_day=rng.randint(1300, 1600),
        daily_quota=rng.randint(3, 4),
        fault_seed=seed,
    )


def expected_videos(config: SandboxConfig, campaign_file: Path) -> set[int]:
    from gettok.sandbox.state import SandboxState

    state = SandboxState(config)
    matches = _compile(load_campaign(campaign_file).query.to_api())
    return {v.id for v in state.corpus.videos_on(QUOTA_DAY) if v.api_visible and matches(v)}


def run_quota_days_trial(
    trial: Trial, world: World, db_url: str, data_dir: Path, api: str
) -> TrialReport:
    started = time.monotonic()
    db.upgrade(db_url)
    config = quota_config(trial.seed)
    expected = expected_videos(config, world.campaign)
    args = [sys.executable, str(NO_WAITS), "gettok.cli", "collect", "--campaign"]
    args += [str(world.campaign), "--start", str(QUOTA_DAY), "--end", str(QUOTA_DAY)]
    problems, served_videos, codes = [], 0, []
    with ledgered_sandbox(config) as served:
        env = pipeline_env(served, db_url, data_dir, api, GETTOK_DAILY_REQUEST_BUDGET="100000")
        for day in range(MAX_QUOTA_DAYS):
            outcome = run_gettok(args, env, data_dir / f"day-{day}.log")
            codes.append(outcome.returncode)
            served_videos += served.state.counters["videos_served"]
            if outcome.returncode != 75:
                break
            served.state.reset_usage()  # midnight UTC: a new quota, every search forgotten
    if codes[-1] != 0:
        problems.append(f"not done after {len(codes)} days (exit codes {codes})")
    with db.session_scope(db_url) as session:
        have = set(session.scalars(select(CampaignVideo.video_id)))
    missing, extra = expected - have, have - expected
    if missing or extra:
        problems.append(f"{len(missing)} videos missing, {len(extra)} not of the day")
    refetched = served_videos - len(have)
    if refetched:
        problems.append(f"{refetched} videos served again (of {len(have)}) over {len(codes)} days")
    if len(codes) < 2:
        problems.append(f"the day fit in one day's quota ({config.daily_quota} requests)")
    return TrialReport(
        trial,
        KillPoint("collect", 0, 0.0),
        True,  # the quota stops are the faults
        None,
        problems,
        len(missing),
        max(0, refetched),
        round(time.monotonic() - started, 1),
    )
