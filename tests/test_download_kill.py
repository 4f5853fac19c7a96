"""A download killed with SIGKILL mid-transfer, then rerun: no partial file, no ok row unbacked."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from gettok import db
from gettok.models.schema import Download, DownloadStatus, WorkClaim
from gettok.sandbox.media_cache import clip_for
from gettok.sandbox.server import running_sandbox
from gettok.settings import get_settings
from gettok.tasks.download.downloader import download_pending, partial_dir, video_file
from gettok.tasks.download.media import probe_media
from tests.test_download import (
    assert_media_consistent,
    media_cache,  # noqa: F401  (fixture)
    pick_videos,
    rows,
    sandbox_config,
    store,
    use_sandbox,
)

WORKER = """
from gettok.settings import get_settings
from gettok.tasks.download.downloader import download_pending
download_pending(get_settings(), {name!r})
"""


def test_killed_download_leaves_nothing_half_done(db_url, settings_env, monkeypatch, media_cache):  # noqa: F811
    # A slow CDN (about 3 s a clip) so the kill lands mid-transfer.
    config = sandbox_config(media_cache, web={"media_bytes_per_s": 120_000})
    with running_sandbox(config) as sandbox:
        videos = pick_videos(sandbox, {"public": 4})
        for video in videos:
            clip_for(video, media_cache)  # generated before the clock starts
        name = store(db_url, videos)
        use_sandbox(monkeypatch, sandbox, db_url, download_concurrency=2)
        settings = get_settings()
        media_dir = settings.resolved_media_dir

        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER.format(name=name)],
            env=dict(os.environ),
            cwd=Path(__file__).parents[1],
        )
        deadline = time.monotonic() + 60
        try:
            # Kill once one video is recorded and another is half-written.
            while time.monotonic() < deadline and worker.poll() is None:
                written = [p for p in partial_dir(media_dir).glob("*") if p.stat().st_size > 0]
                if written and rows(db_url):
                    break
                time.sleep(0.05)
            assert worker.poll() is None, "the worker finished before it could be killed"
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()

        left = list(partial_dir(media_dir).iterdir())
        assert left, "the kill landed between transfers: nothing was half-written"
        recorded = rows(db_url)
        assert 1 <= len(recorded) < 4
        for row in recorded.values():
            assert row.status == DownloadStatus.ok
            probe_media(media_dir / row.path)
        for path in (media_dir / "videos").glob("*"):
            probe_media(path)  # whatever is in place is complete, row or not
        with db.session_scope(db_url) as session:
            assert session.scalars(select(WorkClaim)).all()  # the dead worker's leases remain

        sandbox.state.update_config({"web": {"media_bytes_per_s": 0}})
        result = download_pending(settings, name)
        assert result.busy == 0
        assert set(result.statuses) == {v.id for v in videos} - set(recorded)
        final = rows(db_url)
        assert {r.status for r in final.values()} == {DownloadStatus.ok} and len(final) == 4
        assert_media_consistent(media_dir, db_url)
        for video in videos:
            served = hashlib.sha256(clip_for(video, media_cache).read_bytes()).hexdigest()
            assert final[video.id].sha256 == served
            stored = video_file(media_dir, video.id).read_bytes()
            assert hashlib.sha256(stored).hexdigest() == served
        with db.session_scope(db_url) as session:
            assert session.scalars(select(WorkClaim)).all() == []
            assert session.scalar(select(Download).where(Download.status != "ok")) is None
