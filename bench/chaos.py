"""Benchmark: crash-and-resume trials of the whole pipeline; nothing may be lost or done twice.

Each trial runs `gettok run` on a small sandbox campaign, SIGKILLs it at a seeded point of one
stage (collect, download, transcribe, frames, annotate in turn; SQLite and Postgres in turn),
reruns it, and compares with an uninterrupted run (tests/chaos_trials.py). Every seventh trial
in turn is one of two scenarios (tests/chaos_scenarios.py): `restore` (killed, backed up,
finished, the backup restored, run again: nothing lost) and `quota_days` (a day needing several
days' quota, collected day after day: every video once, no page fetched twice).
The naive baseline is that uninterrupted run: `lost` and `duplicates` count the items the
killed-and-rerun campaigns miss or hold twice against it (both must be 0; in `quota_days`, videos
missing and videos served again), `rerun_overhead` is how much longer a killed run plus its rerun
took than the uninterrupted run. Prints one JSON object last.

    python bench/chaos.py [--trials 5] [--seed 1] [--postgres postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.chaos_scenarios import SCENARIOS, run_any  # noqa: E402
from tests.chaos_trials import STAGES, Trial, run_baseline  # noqa: E402
from tests.chaos_world import World  # noqa: E402


def postgres_database(server: str) -> tuple[str, callable]:
    name = f"gettok_chaos_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        f"{server}/postgres".replace("postgresql://", "postgresql+psycopg://"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from gettok import db

        db.get_engine.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return f"{server}/{name}", drop


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    world = World()
    kinds = STAGES + SCENARIOS
    trials = [
        Trial(args.seed + n, kinds[n % len(kinds)], ("sqlite", "postgres")[n // len(kinds) % 2])
        for n in range(args.trials)
    ]
    reports = []
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        api = PREFECT_API_URL.value()
        folder = Path(tmp) / "baseline"
        folder.mkdir()
        baseline = run_baseline(world, f"sqlite:///{folder / 'gettok.db'}", folder, api)
        for trial in trials:
            report = run_trial(trial, world, baseline, Path(tmp) / str(trial), api, args.postgres)
            reports.append(report)
            print(
                f"{trial}: killed={report.killed} at {report.kill} {report.at_kill}; "
                f"{report.seconds} s; problems: {report.problems or 'none'}",
                flush=True,
            )
    print(json.dumps(summary(reports, baseline)))


def run_trial(trial: Trial, world: World, baseline, folder: Path, api: str, postgres: str):
    """One trial in its own folder, on a fresh database of its backend (a Postgres one dropped
    afterwards)."""
    folder.mkdir()
    drop = None
    if trial.backend == "postgres":
        url, drop = postgres_database(postgres)
    else:
        url = f"sqlite:///{folder / 'gettok.db'}"
    try:
        return run_any(trial, world, baseline, url, folder, api)
    finally:
        if drop:
            drop()


def summary(reports: list, baseline) -> dict:
    """The final JSON line: where the kills hit, what was lost or doubled against the baseline."""
    return {
        "benchmark": "chaos",
        "trials": len(reports),
        "faults_injected": sum(r.killed for r in reports),
        "kills_by_stage": {
            s: sum(r.killed and r.trial.stage == s for r in reports) for s in STAGES
        },
        "scenarios": {s: sum(r.trial.stage == s for r in reports) for s in SCENARIOS},
        # The first stage with work left when the process died (stages overlap across windows).
        "kills_landed_in": dict(
            Counter(
                next((s for s in STAGES if r.at_kill[s] < baseline.totals[s]), "end")
                for r in reports
                if r.killed and r.at_kill and r.trial.stage in STAGES
            )
        ),
        "lost": sum(r.lost for r in reports),
        "duplicates": sum(r.duplicates for r in reports),
        "trials_with_problems": sum(bool(r.problems) for r in reports),
        "baseline_run_s": baseline.seconds,
        "median_killed_plus_rerun_s": statistics.median(r.seconds for r in reports)
        if reports
        else None,
        "rerun_overhead": round(statistics.median(r.seconds for r in reports) / baseline.seconds, 2)
        if reports
        else None,
        "baseline_items": {k: len(v) for k, v in baseline.stored.items().items()},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


if __name__ == "__main__":
    main()
