"""The collect flow on the real Prefect engine; `gettok collect` killed with SIGKILL mid-window."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select, text

from gettok import db
from gettok.db import session_scope
from gettok.models.schema import ApiRequest, CampaignVideo, EngagementSnapshot, Video
from gettok.models.schema import CollectionWindow as WindowRow
from gettok.sandbox.app import create_app
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.server import RunningSandbox, sandbox_env
from gettok.sandbox.state import SandboxState
from gettok.settings import get_settings
from gettok.tasks.collect import collect_campaign
from tests import no_waits
from tests.conftest import FIXTURES

CAMPAIGN_FILE = FIXTURES.parent.parent / "campaigns" / "peru_2022.toml"
START, END = date(2022, 12, 6), date(2022, 12, 8)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(fault_seed=20221207, videos_per_day=400)


@pytest.fixture
def flow_env(sandbox_env, pg_url, monkeypatch):
    monkeypatch.setenv("GETTOK_DATABASE_URL", pg_url)
    return sandbox_env


def test_collect_flow_reports_windows_and_days_and_skips_done_windows(
    prefect_harness, flow_env, pg_url
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL

    from gettok.flows.collect import collect

    state = collect(str(CAMPAIGN_FILE), START, END, return_state=True)
    result = state.result()
    assert state.is_completed() and result.state == "completed"
    assert result.windows_done == 3 and result.videos > 300

    APILogWorker.drain_all()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
            ),
            limit=200,
            offset=0,
        )
        messages = [log.message for log in logs]
    for window in result.windows:
        assert any(
            m.startswith(f"window {window.window}: done, {window.videos} videos") for m in messages
        )
    with session_scope(pg_url) as session:
        per_day = session.scalar(
            select(func.count()).select_from(Video).where(Video.create_time < 1670371200)
        )  # created before 2022-12-07 00:00 UTC: the first day
    assert f"day 2022-12-06: {per_day} videos stored for peru_2022" in messages
    # Prefect's own client sends nulls this server version refuses; ask the API directly.
    found = httpx.post(
        f"{PREFECT_API_URL.value()}/artifacts/filter",
        json={
            "artifacts": {
                "key": {"any_": ["collect-peru-2022"]},
                # Other tests' runs share the key and server: without this filter the
                # first page may hold only theirs (ids sort in no useful order).
                "flow_run_id": {"any_": [str(state.state_details.flow_run_id)]},
            },
            "limit": 5,
            "offset": 0,
        },
    ).json()
    (artifact,) = [a for a in found if a["flow_run_id"] == str(state.state_details.flow_run_id)]
    assert artifact["type"] == "table"
    rows = json.loads(artifact["data"]) if isinstance(artifact["data"], str) else artifact["data"]
    assert [r["window"] for r in rows][:3] == ["2022-12-06", "2022-12-07", "2022-12-08"]
    assert rows[0]["videos"] == result.windows[0].videos

    again = collect(str(CAMPAIGN_FILE), START, END, return_state=True).result()
    assert again.windows_skipped == 3 and again.requests == 0


def test_collect_flow_ends_quota_exhausted_with_a_completed_state(
    prefect_harness, flow_env, sandbox
):
    from gettok.flows.collect import collect

    sandbox.state.update_config({"daily_quota": 3})
    state = collect(str(CAMPAIGN_FILE), START, END, return_state=True)
    assert state.is_completed()
    assert state.message.startswith("quota exhausted, resumes at 00:00 UTC")
    assert state.result().quota_exhausted

    sandbox.state.update_config({"daily_quota": 1000})  # the next day
    resumed = collect(str(CAMPAIGN_FILE), START, END, return_state=True).result()
    assert resumed.state == "completed"
    assert resumed.windows_skipped == 1  # done before the quota ran out (in the database)


def test_a_restored_backup_is_collected_again_not_skipped(prefect_harness, flow_env, pg_url):
    """The database is the only judge of what is done: restore a backup taken before a collect
    (same database, same identity) and the next collect fetches the windows again."""
    from gettok.flows.collect import collect
    from tests.conftest import _admin_engine

    source = pg_url.rsplit("/", 1)[1]
    backup = f"{source}_backup"
    db.get_engine.cache_clear()
    with _admin_engine().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{backup}" TEMPLATE "{source}"'))
    try:
        first = collect(str(CAMPAIGN_FILE), START, START, return_state=True).result()
        assert first.windows_done == 1 and first.videos > 0

        # Restore: the database now is the backup (its tables as before the collect).
        restored = pg_url.rsplit("/", 1)[0] + "/" + backup
        os.environ["GETTOK_DATABASE_URL"] = restored
        again = collect(str(CAMPAIGN_FILE), START, START, return_state=True).result()
        assert again.windows_done == 1 and again.windows_skipped == 0
        assert again.videos == first.videos
        with session_scope(restored) as session:
            stored = session.scalar(select(func.count()).select_from(CampaignVideo))
        assert stored == first.videos
    finally:
        os.environ["GETTOK_DATABASE_URL"] = pg_url
        db.get_engine.cache_clear()
        with _admin_engine().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{backup}" WITH (FORCE)'))


def test_failed_windows_fail_the_flow_after_publishing_the_summary(
    prefect_harness, flow_env, sandbox
):
    from gettok.flows.collect import CollectIncomplete, collect

    sandbox.state.update_config({"api": {"invalid_cursor": 1.0}})
    state = collect(str(CAMPAIGN_FILE), START, START, return_state=True)
    assert state.is_failed()
    with pytest.raises(CollectIncomplete) as raised:
        state.result()
    assert raised.value.result.windows_failed == 1


# -- SIGKILL mid-window ---------------------------------------------------------------------


@contextmanager
def slow_sandbox(config: SandboxConfig, delay_s: float) -> Iterator[RunningSandbox]:
    """The sandbox with every Research API answer delayed, so a kill can land mid-window."""
    state = SandboxState(config)
    app = create_app(state)

    @app.middleware("http")
    async def delay(request, call_next):
        if request.url.path.startswith("/v2/research/"):
            await asyncio.sleep(delay_s)
        return await call_next(request)

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield RunningSandbox(f"http://127.0.0.1:{sock.getsockname()[1]}", state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def snapshot(database_url: str) -> dict:
    with session_scope(database_url) as session:
        return {
            "videos": set(session.scalars(select(Video.id))),
            "members": set(session.execute(select(CampaignVideo.video_id)).scalars()),
            "snapshots": session.scalar(select(func.count()).select_from(EngagementSnapshot)),
            "windows": {
                (w.window_start, w.window_end): (w.status.value, w.pages, w.videos)
                for w in session.scalars(select(WindowRow))
            },
            "requests": session.scalar(
                select(func.count())
                .select_from(ApiRequest)
                .where(ApiRequest.endpoint == "research/video/query")
            ),
        }


def test_collect_killed_mid_window_and_rerun_ends_like_an_uninterrupted_run(
    prefect_harness, pg_url, sqlite_url, settings_env, tmp_path
):
    from prefect.settings import PREFECT_API_URL

    # ~480 matching videos a day: five or six pages per window.
    config = SandboxConfig(fault_seed=1, videos_per_day=1500)
    with slow_sandbox(config, delay_s=0.15) as sandbox:
        env_vars = sandbox_env(sandbox.base_url, config)
        reference_settings = get_settings(
            database_url=sqlite_url,
            tiktok_api_url=sandbox.base_url,
            tiktok_client_key=config.client_key,
            tiktok_client_secret=config.client_secret,
        )
        from gettok.models.campaign import load_campaign

        reference_result = collect_campaign(
            reference_settings, load_campaign(CAMPAIGN_FILE), START, END
        )
        assert reference_result.state == "completed"
        reference = snapshot(sqlite_url)
        counters_before = dict(sandbox.state.counters)

        env = {
            **os.environ,
            **env_vars,
            "GETTOK_DATABASE_URL": pg_url,
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / "prefect-results"),
        }
        command = [
            sys.executable,
            str(Path(no_waits.__file__)),  # retries without their waits, as in this process
            "gettok.cli",
            "collect",
            "--campaign",
            str(CAMPAIGN_FILE),
            "--start",
            START.isoformat(),
            "--end",
            END.isoformat(),
        ]
        log = (tmp_path / "killed.log").open("w")
        killed = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        mid_window = wait_until_mid_window(pg_url, killed, timeout_s=120)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert mid_window, Path(log.name).read_text()[-3000:]
        interrupted = snapshot(pg_url)
        assert any(status == "running" for status, _, _ in interrupted["windows"].values())

        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        assert "peru_2022: completed" in rerun.stdout
        counters = {k: v - counters_before.get(k, 0) for k, v in sandbox.state.counters.items()}

    final = snapshot(pg_url)
    assert final["videos"] == final["members"] == reference["videos"]
    assert final["snapshots"] == len(reference["videos"])
    assert final["windows"] == reference["windows"]  # same pages and videos per window, all done
    # Nothing asked twice beyond the page in flight at the kill; no search restarted.
    assert final["requests"] <= reference["requests"] + 1
    assert counters["research_requests"] <= reference["requests"] + 1
    assert counters["searches"] == len(reference["windows"])


def wait_until_mid_window(database_url: str, process: subprocess.Popen, timeout_s: float) -> bool:
    """Poll the checkpoint until a window has stored some pages but is not finished."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with session_scope(database_url) as session:
                running = session.scalar(
                    select(func.count())
                    .select_from(WindowRow)
                    .where(WindowRow.status == "running", WindowRow.pages >= 2)
                )
        except Exception:  # the schema may not exist yet while the CLI migrates
            running = 0
        if running:
            return True
        time.sleep(0.02)
    return False


def test_cli_collect_exits_75_when_the_quota_stops_it(prefect_harness, flow_env, sandbox):
    from typer.testing import CliRunner

    from gettok.cli import app

    sandbox.state.update_config({"daily_quota": 3})
    args = ["collect", "--campaign", str(CAMPAIGN_FILE), "--start", "2022-12-06"]
    result = CliRunner().invoke(app, [*args, "--end", "2022-12-08"])
    assert result.exit_code == 75, result.output
    assert "peru_2022: quota exhausted, resumes at 00:00 UTC" in result.output
    assert "2022-12-07             quota_exhausted" in result.output

    bad = CliRunner().invoke(app, [*args, "--end", "2022-12-0x"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
