"""Issue 20 #9: prune killed with SIGKILL at any point never leaves a video that looks public
with its media gone, and the next run finishes what it started (no duplicate records)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gettok.db import session_scope
from gettok.models.schema import Download, DownloadStatus, PruneRecord, Video
from gettok.sandbox.config import SandboxConfig
from gettok.tasks.prune import pending_videos, prune_videos
from tests.test_prune import pick_videos, store

# The child prunes everything and SIGKILLs itself after its Nth committed transaction
# ("commit") or its Nth deleted file ("unlink"): faults injected around the code, not in it.
CHILD = """
import os, pathlib, signal, sys
from sqlalchemy import event
from sqlalchemy.orm import Session
from gettok.tasks.prune import pending_videos, prune_videos

url, media, web, point, n = sys.argv[1:6]
seen = [0]
def tick(*_):
    seen[0] += 1
    if seen[0] == int(n):
        os.kill(os.getpid(), signal.SIGKILL)
if point == "commit":
    event.listen(Session, "after_commit", tick)
else:
    unlink = pathlib.Path.unlink
    def counted(self, *a, **k):
        unlink(self, *a, **k)
        tick()
    pathlib.Path.unlink = counted
prune_videos(url, pathlib.Path(media), web, pending_videos(url), timeout_s=10)
"""


@pytest.fixture
def sandbox_config(tmp_path) -> SandboxConfig:
    return SandboxConfig(
        seed=31,
        fault_seed=5,
        videos_per_day=40,
        private_share=0.3,
        removed_share=0.3,
        slideshow_share=0.1,
        media_cache_dir=tmp_path / "sandbox-media",
    )


def looks_public_without_media(url: str, media_dir: Path, files: dict[int, list[str]]) -> list:
    """Videos not marked pruned whose files are not all there: what must never happen."""
    with session_scope(url) as s:
        alive = set(s.scalars(select(Video.id).where(Video.pruned_at.is_(None))))
    return [v for v in alive if not all((media_dir / p).exists() for p in files[v])]


# commit 2: the first gone video's rows are pruned, none of its files deleted yet; unlink 1: one
# file of it deleted (the old files-first order left an `ok` row here); commit 6: the second
# video's rows, after the first finished.
@pytest.mark.parametrize("point,n", [("commit", 2), ("unlink", 1), ("commit", 6)])
def test_prune_killed_anywhere_is_finished_by_the_next_run(db_url, sandbox, tmp_path, point, n):
    media_dir = tmp_path / "media"
    picked = pick_videos(sandbox.state.corpus)
    videos = [v for vs in picked.values() for v in vs]
    files = store(db_url, media_dir, videos)
    gone = {v.id: v.web_state for v in videos if v.web_state in ("private", "removed")}
    env = os.environ | {"PYTHONPATH": os.getcwd()}
    args = [db_url, str(media_dir), sandbox.base_url, point, str(n)]
    run = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, timeout=120
    )
    assert run.returncode == -9, run.stderr.decode()[-2000:]  # it died mid-way, as planned

    assert looks_public_without_media(db_url, media_dir, files) == []
    from gettok.tasks.prune import finish_pruned  # the next run (imported here: new in issue 20)

    finished = finish_pruned(db_url, media_dir)
    prune_videos(db_url, media_dir, sandbox.base_url, pending_videos(db_url), timeout_s=10)

    for v in videos:
        present = [(media_dir / p).exists() for p in files[v.id]]
        assert not any(present) if v.id in gone else all(present), (v.web_state, present)
    with session_scope(db_url) as s:
        records = s.scalars(select(PruneRecord)).all()
        assert sorted(r.video_id for r in records) == sorted(gone)  # one each: no duplicates
        assert all(r.files_removed_at is not None for r in records)
        for vid, reason in gone.items():
            assert s.get(Video, vid).pruned_reason == reason
            assert s.get(Download, vid).status == DownloadStatus(reason)
            assert s.get(Download, vid).path is None
        assert s.scalar(select(func.count()).where(Video.pruned_at.is_not(None))) == len(gone)
    assert finished.finished <= 1  # at most the one video the kill caught between its steps
