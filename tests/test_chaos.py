"""Crash and resume: `gettok run` SIGKILLed at seeded points of each stage, rerun, and compared
with an uninterrupted run (tests/chaos_trials.py says what a trial checks).

Three trials run in CI; the other twenty run with GETTOK_FULL_TESTS=1 (marked `slow`). The whole
reliability suite, in full (about 25 minutes on two cores):

    GETTOK_FULL_TESTS=1 pytest tests/test_chaos*.py tests/test_bad_input*.py \
        tests/test_secrets*.py tests/test_postgres_down*.py
"""

from __future__ import annotations

import os

import pytest

from tests.chaos_scenarios import run_any
from tests.chaos_trials import STAGES, Trial, run_baseline
from tests.chaos_world import World, prefect_api_url
from tests.conftest import create_postgres_database, drop_postgres_database

FULL = os.environ.get("GETTOK_FULL_TESTS") == "1"
WORLD = World()

CI_TRIALS = [
    Trial(seed=11, stage="download", backend="sqlite"),
    Trial(seed=12, stage="transcribe", backend="postgres"),
    Trial(seed=13, stage="annotate", backend="sqlite"),
]
# Four more per stage, on both backends: with the three above, 23 trials in all.
FULL_TRIALS = [
    Trial(seed=100 + 10 * n + i, stage=stage, backend=("sqlite", "postgres")[(n + i) % 2])
    for n, stage in enumerate(STAGES)
    for i in range(4)
]
# The scenarios of tests/chaos_scenarios.py: a restored backup, a day needing several days' quota.
SCENARIO_TRIALS = [
    Trial(seed=21, stage="restore", backend="sqlite"),
    Trial(seed=22, stage="quota_days", backend="postgres"),
    Trial(seed=23, stage="quota_days", backend="sqlite"),
]


def database(backend: str, folder) -> str:
    if backend == "postgres":
        return create_postgres_database()
    return f"sqlite:///{folder / 'gettok.db'}"


@pytest.fixture(scope="module")
def baseline(prefect_harness, tmp_path_factory):
    """The same campaign run once without a kill (SQLite; its content is backend-independent)."""
    folder = tmp_path_factory.mktemp("chaos-baseline")
    return run_baseline(WORLD, database("sqlite", folder), folder, prefect_api_url())


def check(trial: Trial, baseline, tmp_path) -> None:
    url = database(trial.backend, tmp_path)
    try:
        report = run_any(trial, WORLD, baseline, url, tmp_path, prefect_api_url())
    finally:
        if trial.backend == "postgres":
            drop_postgres_database(url)
    print(f"{trial}: {report.kill}; stored rows at the kill: {report.at_kill}; {report.seconds} s")
    assert report.killed, f"{trial}: the run finished before the kill point {report.kill}"
    assert report.problems == [], f"{trial} killed at {report.kill} ({report.at_kill})"
    assert report.lost == 0 and report.duplicates == 0


def test_the_uninterrupted_run_is_a_useful_reference(baseline):
    statuses = {row[0] for row in baseline.stored.downloads.values()}
    assert {"ok", "slideshow", "private"} <= statuses  # every path a kill can cut through
    assert baseline.totals["transcribe"] >= 4 and baseline.totals["annotate"] >= 10
    assert baseline.stored.duplicates == 0 and baseline.stored.claims == 0


@pytest.mark.parametrize("trial", CI_TRIALS, ids=str)
def test_a_killed_run_resumes_to_the_same_result(trial, baseline, tmp_path):
    check(trial, baseline, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="set GETTOK_FULL_TESTS=1 for the full chaos trials")
@pytest.mark.parametrize("trial", FULL_TRIALS, ids=str)
def test_every_stage_survives_kills_at_seeded_points(trial, baseline, tmp_path):
    check(trial, baseline, tmp_path)


@pytest.mark.parametrize("trial", SCENARIO_TRIALS, ids=str)
def test_a_restored_backup_and_a_day_over_the_quota_end_complete(trial, request, tmp_path):
    needs_baseline = trial.stage == "restore"  # quota_days compares with the sandbox's corpus
    baseline = request.getfixturevalue("baseline") if needs_baseline else None
    if not needs_baseline:
        request.getfixturevalue("prefect_harness")
    check(trial, baseline, tmp_path)
