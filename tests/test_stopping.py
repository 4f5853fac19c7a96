"""Ctrl-C and SIGTERM stop a command within seconds, leaving nothing held (issue 20 #5).

Found by pressing Ctrl-C in `gettok download`: it went on downloading (Python waited for
Prefect's task threads), and in `gettok run` the temporary Prefect server died first while the
run went on for minutes against it. Here `gettok download` runs in a subprocess on a slow
sandbox CDN with its own temporary Prefect server, gets the signal mid-transfer, and must exit
at once with a clear line, no work claim left, no child process left, and a rerun that finishes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from gettok import db
from gettok.models.schema import DownloadStatus, WorkClaim
from gettok.sandbox.media_cache import clip_for
from gettok.sandbox.server import running_sandbox
from gettok.settings import get_settings
from gettok.tasks.download.downloader import download_pending, partial_dir
from tests.chaos_world import NO_WAITS, ROOT
from tests.test_download import (
    CAMPAIGN,
    media_cache,  # noqa: F401  (fixture)
    pick_videos,
    rows,
    sandbox_config,
    store,
    use_sandbox,
)

STOP_WITHIN_S = 15


def claims_left(url: str) -> list[WorkClaim]:
    with db.session_scope(url) as session:
        return list(session.scalars(select(WorkClaim)))


def session_processes(session_id: int) -> list[int]:
    """Processes still alive in the command's session (it was started as a session leader)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(state[3]) == session_id and state[0] != "Z":
                alive.append(int(entry.name))
    return alive


def start_download(tmp_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),  # a temporary server of its own
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, str(NO_WAITS), "gettok.cli", "download", "--campaign", str(CAMPAIGN)],
        env=env,
        cwd=ROOT,
        stdout=open(tmp_path / "download.log", "w"),  # noqa: SIM115  (closed with the process)
        stderr=subprocess.STDOUT,
        start_new_session=True,  # as a terminal's job: Ctrl-C goes to the whole group
    )


@pytest.mark.parametrize(
    ("signum", "to_group"), [(signal.SIGINT, True), (signal.SIGTERM, False)], ids=["ctrl-c", "term"]
)
def test_a_signal_stops_the_command_at_once_and_a_rerun_finishes(
    db_url,
    settings_env,
    monkeypatch,
    media_cache,  # noqa: F811
    signum,
    to_group,
):
    config = sandbox_config(media_cache, web={"media_bytes_per_s": 60_000})  # ~6 s a clip
    with running_sandbox(config) as sandbox:
        videos = pick_videos(sandbox, {"public": 6})
        for video in videos:
            clip_for(video, media_cache)
        name = store(db_url, videos)
        use_sandbox(monkeypatch, sandbox, db_url, download_concurrency=2)
        media_dir = get_settings().resolved_media_dir
        command = start_download(settings_env)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and command.poll() is None:
                in_flight = [p for p in partial_dir(media_dir).glob("*") if p.stat().st_size]
                if in_flight and claims_left(db_url):
                    break
                time.sleep(0.1)
            assert command.poll() is None, "the download ended before the signal"
            assert claims_left(db_url), "no download in flight when the signal came"
            sent = time.monotonic()
            if to_group:
                os.killpg(command.pid, signum)
            else:
                os.kill(command.pid, signum)
            command.wait(STOP_WITHIN_S)
            took = time.monotonic() - sent
            time.sleep(0.5)
            left = session_processes(command.pid)
        finally:
            if command.poll() is None:
                os.killpg(command.pid, signal.SIGKILL)
                command.wait(30)
        log = (settings_env / "download.log").read_text()
        assert command.returncode == 128 + signum, log[-3000:]
        assert took < STOP_WITHIN_S
        assert f"stopped by {signal.Signals(signum).name}" in log
        assert claims_left(db_url) == []
        assert left == [], f"processes left behind: {left}"  # the Prefect server among them
        assert len(rows(db_url)) < len(videos)  # it did stop mid-run

        sandbox.state.update_config({"web": {"media_bytes_per_s": 0}})
        result = download_pending(get_settings(), name)
        assert result.busy == 0
        final = rows(db_url)
        assert len(final) == len(videos)
        assert {r.status for r in final.values()} == {DownloadStatus.ok}
