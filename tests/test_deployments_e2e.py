"""The production topology without Docker: a real `prefect server` on the machine's Postgres,
the deployments of deployments/prefect.yaml, a `cpu` and a `gpu` process worker, and a backfill
triggered from the CLI. Every expected video must end with transcripts and annotations, once."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from gettok import db
from gettok.local_mode import shipped_whisper_model
from gettok.models.campaign import load_campaign
from gettok.models.schema import (
    Annotation,
    CampaignVideo,
    CollectionWindow,
    Download,
    DownloadStatus,
    Transcript,
)
from tests.conftest import create_postgres_database, drop_postgres_database

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
DAY = date(2022, 12, 8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prefect_server(tmp_path):
    """A Prefect server on its own Postgres database; its scheduler off (no run may start)."""
    with running_prefect_server(tmp_path, scheduler=False) as api:
        yield api


@pytest.fixture
def scheduling_prefect_server(tmp_path):
    """A Prefect server whose own scheduler service creates the scheduled runs."""
    with running_prefect_server(tmp_path, scheduler=True) as api:
        yield api


@contextmanager
def running_prefect_server(tmp_path, scheduler: bool):
    """`prefect server start` backed by its own fresh Postgres database and PREFECT_HOME."""
    url = create_postgres_database()
    port = free_port()
    env = os.environ | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": url.replace(
            "postgresql://", "postgresql+asyncpg://"
        ),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": str(scheduler).lower(),
        # A deployment deployed a moment ago is scheduled within seconds (the default loop).
        "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "2",
    }
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("prefect server did not start in 180 s")
        yield api
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        drop_postgres_database(url)


def run(args, env, timeout=300) -> str:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def worker_env(api_url: str, sandbox, database_url: str, tmp_path) -> dict[str, str]:
    """What a worker machine sets: the server, the database, the checkout, the services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GETTOK_", "OPENAI_"))}
    return (
        env
        | sandbox.env()
        | {
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(tmp_path / "client-home"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "GETTOK_PROJECT_DIR": str(ROOT),
            "GETTOK_DATABASE_URL": database_url,
            "GETTOK_DATA_DIR": str(tmp_path / "data"),
            "GETTOK_WHISPER_MODEL": shipped_whisper_model(),
            "GETTOK_LLM_MODEL": "sandbox-vision",
            "GETTOK_DOWNLOAD_TRANSIENT_BACKOFF_S": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )


@contextmanager
def started_workers(pools: list[str], env: dict[str, str], tmp_path):
    """One `prefect worker` process per pool, logging to tmp_path/worker-<pool>.log."""
    workers = []
    try:
        for pool in pools:
            log = open(tmp_path / f"worker-{pool}.log", "w")
            command = [BIN / "prefect", "worker", "start", "--pool", pool, "--type", "process"]
            workers.append(
                (subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log), log)
            )
        yield
    finally:
        for worker, log in workers:
            worker.terminate()
            worker.wait(30)
            log.close()


def test_backfill_deployment_on_two_workers(prefect_server, sandbox, pg_url, tmp_path):
    env = worker_env(prefect_server, sandbox, pg_url, tmp_path)
    run([sys.executable, "-m", "gettok.cli", "setup"], env)
    run([sys.executable, "-m", "gettok.cli", "setup"], env)  # idempotent
    run(
        [
            BIN / "prefect",
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            "deployments/prefect.yaml",
        ],
        env,
    )

    with httpx.Client(base_url=prefect_server, timeout=30) as api:
        daily = api.get("/deployments/name/pipeline/peru-2022-daily").json()
        assert [s["schedule"]["cron"] for s in daily["schedules"]] == ["0 6 * * *"]
        assert daily["schedules"][0]["schedule"]["timezone"] == "UTC"
        assert daily["parameters"]["campaign_file"] == "campaigns/peru_2022.toml"
        assert daily["parameters"]["transcribe_deployment"] == "transcribe/transcribe-gpu"
        assert daily["work_pool_name"] == "cpu"
        assert (
            api.get("/deployments/name/transcribe/transcribe-gpu").json()["work_pool_name"] == "gpu"
        )
        limits = {c["name"]: c["limit"] for c in api.post("/v2/concurrency_limits/filter").json()}
        assert {"gpu", "download-rate", "llm-rate"} <= limits.keys()

    with started_workers(["cpu", "gpu"], env, tmp_path):
        out = run(
            [
                BIN / "prefect",
                "deployment",
                "run",
                "pipeline/backfill",
                "-p",
                "campaign_file=campaigns/peru_2022.toml",
                "-p",
                f"start_date={DAY}",
                "-p",
                f"end_date={DAY}",
            ],
            env,
        )
        run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
        state = wait_for_final_state(prefect_server, run_id, tmp_path)
        assert state == "COMPLETED", _logs(tmp_path)
        with httpx.Client(base_url=prefect_server, timeout=30) as api:
            runs = api.post(
                "/flow_runs/filter", json={"flow_runs": {"parent_task_run_id": None}}
            ).json()
        by_deployment = {r["name"]: (r["work_pool_name"], r["state_type"]) for r in runs}
        assert ("gpu", "COMPLETED") in by_deployment.values()  # transcription ran on the gpu pool

    peru = load_campaign(ROOT / "campaigns" / "peru_2022.toml")
    from gettok.sandbox.research_api import _compile

    matches = _compile(peru.query.to_api())
    expected = {v.id for v in sandbox.state.corpus.videos_on(DAY) if v.api_visible and matches(v)}
    with db.session_scope(pg_url) as session:
        members = set(session.scalars(select(CampaignVideo.video_id)))
        statuses = dict(session.execute(select(Download.video_id, Download.status)).all())
        transcripts = session.execute(
            select(Transcript.video_id, func.count())
            .where(Transcript.engine == "faster-whisper")
            .group_by(Transcript.video_id)
        ).all()
        annotations = session.execute(
            select(Annotation.video_id, Annotation.kind, func.count()).group_by(
                Annotation.video_id, Annotation.kind
            )
        ).all()
    assert members == expected and len(expected) > 5
    assert set(statuses) == expected
    playable = {
        i for i, s in statuses.items() if s in (DownloadStatus.ok, DownloadStatus.slideshow)
    }
    assert {i for i, _ in transcripts} == playable and all(n == 1 for _, n in transcripts)
    described = {i for i, kind, _ in annotations if kind == "description"}
    assert described == playable
    assert all(n == 1 for _, _, n in annotations)


def wait_for_final_state(api_url: str, run_id: str, tmp_path, timeout_s: float = 600) -> str:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=api_url, timeout=30) as api:
        while time.monotonic() < deadline:
            run = api.get(f"/flow_runs/{run_id}").json()
            if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return run["state_type"]
            time.sleep(2)
    pytest.fail(f"flow run {run_id} did not finish in {timeout_s:.0f} s\n{_logs(tmp_path)}")


def _logs(tmp_path) -> str:
    return "\n".join(
        json.dumps(p.name) + "\n" + p.read_text()[-4000:] for p in sorted(tmp_path.glob("*.log"))
    )


def test_daily_schedule_fires_and_collects_its_day(
    scheduling_prefect_server, sandbox, pg_url, tmp_path
):
    """The daily deployment of deployments/prefect.yaml with its cron moved to every minute:
    the server's scheduler creates the run, a cpu worker executes it, and the run collects the
    last whole UTC day that ended `lag_days` before its scheduled time."""
    api_url = scheduling_prefect_server
    env = worker_env(api_url, sandbox, pg_url, tmp_path)
    assert f"Prefect API: {api_url}" in run([sys.executable, "-m", "gettok.cli", "setup"], env)
    campaign_file = ongoing_copy_of_peru(tmp_path)
    prefect_file = every_minute_copy_of_daily(tmp_path, campaign_file)
    run([BIN / "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", prefect_file], env)
    status = wait_for_status_line(env, "pipeline/peru-2022-daily: cron * * * * * UTC")
    assert re.search(r"next runs: \d{4}-\d\d-\d\d \d\d:\d\d UTC", status), status

    with started_workers(["cpu"], env, tmp_path):
        flow_run = wait_for_scheduled_run(api_url, "pipeline/peru-2022-daily", tmp_path)
    assert flow_run["state_type"] == "COMPLETED", _logs(tmp_path)
    assert flow_run["auto_scheduled"] is True  # created by the server's scheduler, not by us

    at = datetime.fromisoformat(flow_run["expected_start_time"]).astimezone(UTC)
    day = (at - timedelta(days=2)).date() - timedelta(days=1)  # lag_days=2 in the yaml
    campaign = load_campaign(campaign_file)
    from gettok.sandbox.research_api import _compile

    matches = _compile(campaign.query.to_api())
    expected = {v.id for v in sandbox.state.corpus.videos_on(day) if v.api_visible and matches(v)}
    with db.session_scope(pg_url) as session:
        windows = session.execute(
            select(CollectionWindow.window_start, CollectionWindow.window_end)
        ).all()
        members = set(session.scalars(select(CampaignVideo.video_id)))
    assert windows == [(day, day)]
    assert members == expected and expected


def ongoing_copy_of_peru(tmp_path) -> Path:
    """The Peru campaign, started ten days ago and still running (scheduled days are recent)."""
    text = (ROOT / "campaigns" / "peru_2022.toml").read_text()
    start = datetime.now(UTC).date() - timedelta(days=10)
    text = re.sub(r"(?m)^start_date = .*$", f"start_date = {start}", text)
    text = re.sub(r"(?m)^end_date = .*\n", "", text)
    path = tmp_path / "peru_ongoing.toml"
    path.write_text(text)
    # Its watchlist's example photos are read relative to the campaign file.
    shutil.copytree(ROOT / "campaigns" / "watch", tmp_path / "watch")
    return path


def every_minute_copy_of_daily(tmp_path, campaign_file: Path) -> Path:
    """deployments/prefect.yaml with only the Peru daily deployment, due every minute, no catch-up
    days, transcription in the same run (one worker), on the ongoing campaign."""
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    daily = next(d for d in spec["deployments"] if d["name"] == "peru-2022-daily")
    assert daily["parameters"]["lag_days"] == 2
    daily["schedules"] = [{"cron": "* * * * *", "timezone": "UTC"}]
    daily["parameters"] |= {"campaign_file": str(campaign_file), "catch_up_days": 0}
    daily["parameters"].pop("transcribe_deployment")
    spec["deployments"] = [daily]
    spec.pop("definitions", None)
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def wait_for_scheduled_run(api_url: str, deployment: str, tmp_path, timeout_s=240) -> dict:
    """The deployment's first flow run, once final (the scheduler makes it within a minute)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=api_url, timeout=30) as api:
        deployment_id = api.get(f"/deployments/name/{deployment}").json()["id"]
        while time.monotonic() < deadline:
            runs = api.post(
                "/flow_runs/filter",
                json={
                    "flow_runs": {"deployment_id": {"any_": [deployment_id]}},
                    "sort": "EXPECTED_START_TIME_ASC",
                    "limit": 1,
                },
            ).json()
            if runs and runs[0]["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return runs[0]
            time.sleep(2)
    pytest.fail(f"no scheduled run of {deployment} finished in {timeout_s} s\n{_logs(tmp_path)}")


def wait_for_status_line(env, line: str, timeout_s: float = 60) -> str:
    """`gettok status` output once it lists scheduled runs under `line` (scheduling takes ~2 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = run([sys.executable, "-m", "gettok.cli", "status"], env)
        if (line in out and "next runs: none" not in out) or time.monotonic() > deadline:
            return out
        time.sleep(2)
