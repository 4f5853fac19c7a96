"""Ctrl-C and SIGTERM stop `gettok run` and `gettok enrich` within seconds too (issue 20 #5).

`gettok run` was where the temporary Prefect server died first and the run went on for 10+
minutes recording "ConcurrencySlotAcquisitionError"; `gettok enrich` holds LLM requests in
flight. Each runs in a subprocess with a temporary Prefect server of its own, gets the signal
while its work is claimed, and must exit at once with a clear line, no work claim and no child
process (the server) left, and a rerun that finishes without waiting for the claims' leases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gettok import db
from gettok.models.schema import Annotation, AnnotationKind, CampaignVideo, Download
from gettok.settings import get_settings
from gettok.tasks.download.downloader import partial_dir
from tests.chaos_world import NO_WAITS, ROOT, World, ledgered_sandbox, pipeline_env
from tests.enrich_rows import add_videos, campaign_file, point_at_sandbox
from tests.test_stopping import STOP_WITHIN_S, claims_left, session_processes

SIGNALS = pytest.mark.parametrize(
    ("signum", "to_group"), [(signal.SIGINT, True), (signal.SIGTERM, False)], ids=["ctrl-c", "term"]
)


def own_prefect_server(env: dict[str, str], folder: Path) -> dict[str, str]:
    """The environment with no Prefect API: the command starts a temporary server of its own."""
    env = {k: v for k, v in env.items() if not k.startswith("PREFECT_")}
    return env | {
        "PREFECT_HOME": str(folder / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PYTHONUNBUFFERED": "1",
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(NO_WAITS), "gettok.cli", *args],
        env=env,
        cwd=ROOT,
        stdout=open(log, "w"),  # noqa: SIM115  (closed with the process)
        stderr=subprocess.STDOUT,
        start_new_session=True,  # as a terminal's job: Ctrl-C goes to the whole group
    )


def signal_when(
    command: subprocess.Popen, ready: Callable[[], bool], signum: int, to_group: bool
) -> tuple[float, list[int]]:
    """Send the signal once `ready()`; (seconds it took to exit, processes left in its session)."""
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and command.poll() is None and not ready():
            time.sleep(0.1)
        assert command.poll() is None, "the command ended before the signal"
        assert ready(), "no work in flight when the signal came"
        sent = time.monotonic()
        (os.killpg if to_group else os.kill)(command.pid, signum)
        command.wait(STOP_WITHIN_S)
        took = time.monotonic() - sent
        time.sleep(0.5)
        return took, session_processes(command.pid)
    finally:
        if command.poll() is None:
            os.killpg(command.pid, signal.SIGKILL)
            command.wait(30)


def assert_stopped(command, took: float, left: list[int], log: Path, url: str, signum) -> None:
    text = log.read_text(errors="replace")
    assert command.returncode == 128 + signum, text[-3000:]
    assert took < STOP_WITHIN_S
    assert f"stopped by {signal.Signals(signum).name}" in text
    assert "ConcurrencySlotAcquisitionError" not in text
    assert claims_left(url) == []
    assert left == [], f"processes left behind: {left}"  # the Prefect server among them


def count(url: str, stmt) -> int:
    with db.session_scope(url) as session:
        return session.scalar(stmt) or 0


@pytest.mark.parametrize(
    ("signum", "to_group", "db_url"),
    [(signal.SIGINT, True, "sqlite"), (signal.SIGTERM, False, "postgres")],
    ids=["ctrl-c-sqlite", "term-postgres"],
    indirect=["db_url"],
)
def test_a_signal_stops_gettok_run_mid_download(
    db_url, tmp_path, signum, to_group, prefect_harness
):
    world = World()
    config = world.sandbox_config(web={"media_bytes_per_s": 40_000})  # seconds a clip
    with ledgered_sandbox(config) as served:
        env = pipeline_env(served, db_url, tmp_path, "unused")
        media = tmp_path / "media"

        def downloading() -> bool:
            partials = partial_dir(media).glob("*") if partial_dir(media).is_dir() else []
            return any(p.stat().st_size for p in partials) and bool(claims_left(db_url))

        log = tmp_path / "run.log"
        command = start(world.args()[3:], own_prefect_server(env, tmp_path), log)
        took, left = signal_when(command, downloading, signum, to_group)
        assert_stopped(command, took, left, log, db_url, signum)
        members = count(db_url, select(func.count()).select_from(CampaignVideo))
        assert count(db_url, select(func.count()).select_from(Download)) < members

        # The rerun (on the shared test server) downloads the rest at once: nothing was held.
        served.patch({"web": {"media_bytes_per_s": 0}})
        args = ["download", "--campaign", str(world.campaign)]
        rerun = subprocess.run(
            [sys.executable, str(NO_WAITS), "gettok.cli", *args],
            env=pipeline_env(served, db_url, tmp_path, _prefect_api_url()),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
        assert count(db_url, select(func.count()).select_from(Download)) == members
        assert claims_left(db_url) == []


def _prefect_api_url() -> str:
    from tests.chaos_world import prefect_api_url

    return prefect_api_url()


@SIGNALS
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_signal_stops_enrich_mid_request(
    db_url, sandbox_env, monkeypatch, tmp_path, signum, to_group
):
    from gettok.flows.enrich import enrich_campaign

    point_at_sandbox(monkeypatch, db_url, tmp_path / "media", GETTOK_LLM_TIMEOUT_S="30")
    fixture = add_videos(db_url, tmp_path / "media", count=6)  # 5 with speech, 1 music-only
    sandbox_env.state.update_config({"llm": {"timeout": 1.0, "timeout_s": 1.5}})  # slow answers
    summaries = select(func.count()).where(Annotation.kind == AnnotationKind.summary)

    def answering() -> bool:
        return sandbox_env.state.counters["llm_requests"] >= 1 and bool(claims_left(db_url))

    log = tmp_path / "enrich.log"
    args = ["enrich", "--campaign", campaign_file(tmp_path), "--kind", "summary"]
    command = start(args, own_prefect_server(dict(os.environ), tmp_path), log)
    took, left = signal_when(command, answering, signum, to_group)
    assert_stopped(command, took, left, log, db_url, signum)
    before = count(db_url, summaries)
    assert before < 5  # it did stop mid-run

    sandbox_env.state.update_config({"llm": {"timeout": 0.0}})
    result = enrich_campaign(fixture.campaign, get_settings(), kinds=["summary"], frames=False)
    assert result.kinds[0].skipped_taken == 0  # no claim of the stopped run in the way
    assert count(db_url, summaries) == 5
