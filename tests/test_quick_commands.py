"""Commands that only read or set up the database run without orchestration: Prefect is never
imported, so no temporary Prefect server starts, and they answer in seconds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gettok import db
from tests.dataset_for_outputs import build_dataset

ROOT = Path(__file__).parents[1]
CAMPAIGN = 'name = "peru"\nstart_date = "2022-12-01"\n[query]\nkeywords = ["x"]\n'

# Runs one command in a fresh interpreter, then fails if it imported Prefect or any of the
# heavy libraries the command has no use for (each costs seconds at every call).
PROBE = """
import os, sys
from gettok.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    assert "prefect" not in sys.modules, "the command imported Prefect"
    heavy = [m for m in os.environ["PROBE_FORBIDDEN"].split(",") if m and m in sys.modules]
    assert not heavy, f"the command imported {heavy}"
"""
# What export never needs: the migration tool (the schema is at head), model and metrics
# libraries, and the HTTP clients of the collecting stages.
EXPORT_NEVER_IMPORTS = "alembic,sklearn,scipy,torch,sentence_transformers,openai,httpx"


def run_without_prefect(
    args: list[str], cwd: Path, env: dict[str, str], forbidden: str = ""
) -> tuple[str, float]:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env=env | {"PROBE_FORBIDDEN": forbidden},
        capture_output=True,
        text=True,
        # A hang guard, not a timing: the report loads torch to embed new transcript pairs, which
        # took over 120 s on a 2-core machine that was also building a million-video database.
        timeout=600,
    )
    took = time.monotonic() - began
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    assert "ERROR" not in done.stdout + done.stderr and "WARNING" not in done.stderr
    return done.stdout, took


@pytest.fixture
def quick_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GETTOK_", "PREFECT_"))}
    return env | {
        "GETTOK_DATA_DIR": str(tmp_path / "data"),
        "GETTOK_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'gettok.db'}",
        # Nothing listens here: a command that talked to Prefect would fail.
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }


def test_export_report_and_friends_never_touch_prefect(quick_env, tmp_path):
    url = quick_env["GETTOK_DATABASE_URL"]
    db.upgrade(url)
    data = build_dataset(url, days=2, per_day=14)  # about the quick start's size
    db.get_engine.cache_clear()
    campaign = tmp_path / "peru.toml"
    campaign.write_text(CAMPAIGN)

    out, took = run_without_prefect(
        ["export", "--campaign", str(campaign), "--format", "csv"],
        tmp_path,
        quick_env,
        forbidden=EXPORT_NEVER_IMPORTS,
    )
    assert f"{len(data.videos)} videos" in out
    assert (tmp_path / "data" / "exports" / "peru" / "peru.csv").is_file()
    assert took < 20, f"export took {took:.1f} s"  # ~2.5 s on an idle machine; CI is shared

    # The report may embed new transcript pairs (torch) and fit topics (scikit-learn).
    out, _ = run_without_prefect(["report", "--campaign", str(campaign)], tmp_path, quick_env)
    assert (tmp_path / "data" / "reports" / "peru" / "report.md").is_file()
    light = "torch,sklearn,alembic"
    out, _ = run_without_prefect(["campaign", "show", str(campaign)], tmp_path, quick_env, light)
    assert "campaign peru" in out
    out, _ = run_without_prefect(["db", "upgrade"], tmp_path, quick_env, "torch,sklearn")
    assert "database at revision" in out
    out, _ = run_without_prefect(
        ["enrich", "--campaign", str(campaign), "--dry-run"], tmp_path, quick_env, "torch,sklearn"
    )
    assert "estimated total" in out


def test_status_without_a_prefect_server_says_so_and_counts_stages(quick_env, tmp_path):
    env = {k: v for k, v in quick_env.items() if k != "PREFECT_API_URL"}
    url = env["GETTOK_DATABASE_URL"]
    db.upgrade(url)
    build_dataset(url, days=1, per_day=5)
    db.get_engine.cache_clear()
    campaign = tmp_path / "peru.toml"
    campaign.write_text(CAMPAIGN)
    done = subprocess.run(
        [sys.executable, "-m", "gettok.cli", "status", "--campaign", str(campaign)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no Prefect server configured (PREFECT_API_URL)" in done.stdout
    assert "peru:" in done.stdout and "collect" in done.stdout
