"""Prune through the Research API's batch compliance (sandbox), on both databases: unavailable
videos pruned and comments deleted, open tasks resumed after a kill, the daily budget kept, and
page checks where the endpoints are not offered. Also: age-restricted pages are kept."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gettok.clients.research_api import RequestLedger
from gettok.db import session_scope
from gettok.models.schema import (
    Comment,
    ComplianceTask,
    Download,
    PruneRecord,
    Video,
    utcnow,
)
from gettok.sandbox.compliance import _gone
from gettok.sandbox.config import SandboxConfig
from gettok.tasks.prune import check_page, pending_videos, prune_videos
from gettok.tasks.prune.batch import BatchRun
from gettok.tasks.prune.batch_store import waiting_ids
from tests.test_compliance_client import sandbox_client
from tests.test_prune import pick_videos, store


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


def stored_world(url, sandbox, media_dir, comments_per_video: int = 6):
    """The picked videos with their files, and comments on each."""
    picked = pick_videos(sandbox.state.corpus)
    videos = [v for vs in picked.values() for v in vs]
    files = store(url, media_dir, videos)
    comment_ids = []
    with session_scope(url) as s:
        for v in videos:
            for n in range(comments_per_video):
                cid = (v.create_time << 32) | (v.id % 1000) * 10 + n
                s.add(Comment(id=cid, video_id=v.id, text="hola", raw={"id": cid}))
                comment_ids.append(cid)
    return videos, files, comment_ids


def batch_run(url, sandbox, media_dir, budget=1000, **kwargs) -> BatchRun:
    client = sandbox_client(sandbox, url, budget)
    return BatchRun(url, media_dir, client, poll_s=0, sleep=lambda s: None, **kwargs)


def test_batch_compliance_prunes_what_the_api_calls_unavailable(db_url, sandbox, tmp_path):
    media_dir = tmp_path / "media"
    videos, files, comment_ids = stored_world(db_url, sandbox, media_dir)
    gone = {v.id for v in videos if v.web_state in ("private", "removed")}
    comments_gone = {c for c in comment_ids if _gone(sandbox.state, "comment", c)}
    assert gone and comments_gone and len(comments_gone) < len(comment_ids)

    outcome = batch_run(db_url, sandbox, media_dir, task_size=5).run()

    assert outcome.offered and not outcome.stopped, outcome.stopped
    n_tasks = -(-len(videos) // 5) + -(-len(comment_ids) // 5)
    assert outcome.tasks_created == outcome.tasks_applied == n_tasks
    assert outcome.result.pruned == {"unavailable": len(gone)}
    assert outcome.comments_deleted == len(comments_gone)
    for v in videos:
        present = [(media_dir / p).exists() for p in files[v.id]]
        assert not any(present) if v.id in gone else all(present), v.web_state
    with session_scope(db_url) as s:
        for v in videos:
            row = s.get(Video, v.id)
            if v.id in gone:
                assert row.pruned_reason == "unavailable" and row.pruned_at is not None
                assert s.get(Download, v.id).status == "unavailable"
            else:
                assert (row.compliance_status, row.pruned_at) == ("available", None)
                assert row.compliance_checked_at is not None
        left = set(s.scalars(select(Comment.id)))
        assert left == set(comment_ids) - comments_gone
        assert s.scalar(select(func.count()).where(Comment.compliance_checked_at.is_(None))) == 0
        tasks = s.scalars(select(ComplianceTask)).all()
        assert {t.state for t in tasks} == {"applied"} and all(t.task_id for t in tasks)
    # Nothing is due any more: neither the pages nor a second batch run ask again.
    assert pending_videos(db_url, checked_before=utcnow() - timedelta(days=7)) == []
    again = batch_run(db_url, sandbox, media_dir).run()
    assert again.tasks_created == 0
    # every request, tokens aside, is in the ledger: creates, and two polls per task
    assert RequestLedger(db_url, 1000).used() == 3 * n_tasks


def test_without_the_endpoints_prune_checks_pages(db_url, sandbox, tmp_path):
    media_dir = tmp_path / "media"
    videos, files, _ = stored_world(db_url, sandbox, media_dir, comments_per_video=1)
    sandbox.state.config.compliance.offered = False

    outcome = batch_run(db_url, sandbox, media_dir).run()

    assert not outcome.offered and outcome.stopped.startswith("not offered")
    assert waiting_ids(db_url, "video") == set()  # nothing held back from the page checks
    result = prune_videos(db_url, media_dir, sandbox.base_url, pending_videos(db_url))
    gone = {v.id: v.web_state for v in videos if v.web_state in ("private", "removed")}
    assert result.pruned == {"private": 4, "removed": 2} and len(gone) == 6
    with session_scope(db_url) as s:
        assert {s.get(Video, v).pruned_reason for v in gone} == {"private", "removed"}
        assert s.scalar(select(func.count()).select_from(Comment)) == len(videos)  # kept


def test_an_unfinished_task_waits_for_the_next_run_inside_the_budget(db_url, sandbox, tmp_path):
    media_dir = tmp_path / "media"
    videos, _, _ = stored_world(db_url, sandbox, media_dir, comments_per_video=0)
    sandbox.state.config.compliance.processing_polls = 3

    first = batch_run(db_url, sandbox, media_dir, wait_s=0).run()

    assert first.stopped == "tasks still processing: next run"
    assert waiting_ids(db_url, "video") == {v.id for v in videos}  # not page-checked meanwhile
    # The budget runs out at the next poll: the task stays open, no request past the budget.
    used = RequestLedger(db_url, 1000).used()
    stopped = batch_run(db_url, sandbox, media_dir, budget=used).run()
    assert stopped.stopped.startswith("daily quota") and stopped.tasks_applied == 0
    assert RequestLedger(db_url, 1000).used() == used
    # Tomorrow (a fresh budget) the same task is polled to the end, not sent again.
    last = batch_run(db_url, sandbox, media_dir).run()
    assert (last.tasks_created, last.tasks_applied) == (0, 1)
    assert sandbox.state.counters["compliance_tasks"] == 1
    assert waiting_ids(db_url, "video") == set()


# The child runs the batch phase and SIGKILLs itself right after a step: "task_id" = once the
# task id is stored (nothing polled yet); "apply" = after the first video of a done task was
# pruned, before the others and before the task is closed. Faults around the code, not in it.
CHILD = """
import os, pathlib, signal, sys
from pydantic import SecretStr
from gettok.clients.research_api import RequestLedger, ResearchApiClient
from gettok.tasks.prune import batch, batch_store
url, media, base, key, secret, point = sys.argv[1:7]
def then_die(step):
    def wrapped(*args, **kwargs):
        done = step(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return done
    return wrapped
if point == "task_id":
    batch_store.set_task_id = then_die(batch_store.set_task_id)
else:
    batch.prune_video = then_die(batch.prune_video)
client = ResearchApiClient(base_url=base, client_key=SecretStr(key),
    client_secret=SecretStr(secret), fields=["id"], ledger=RequestLedger(url, 1000))
batch.BatchRun(url, pathlib.Path(media), client, poll_s=0).run()
"""


@pytest.mark.parametrize("point", ["task_id", "apply"])
def test_a_batch_run_killed_anywhere_is_finished_by_the_next(db_url, sandbox, tmp_path, point):
    media_dir = tmp_path / "media"
    videos, files, _ = stored_world(db_url, sandbox, media_dir, comments_per_video=0)
    gone = {v.id for v in videos if v.web_state in ("private", "removed")}
    cfg = sandbox.state.config
    args = [db_url, str(media_dir), sandbox.base_url, cfg.client_key, cfg.client_secret, point]
    env = os.environ | {"PYTHONPATH": os.getcwd()}
    run = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, timeout=120
    )
    assert run.returncode == -9, run.stderr.decode()[-2000:]

    outcome = batch_run(db_url, sandbox, media_dir).run()

    assert outcome.tasks_created == 0 and outcome.tasks_applied == 1  # polled, not sent again
    assert sandbox.state.counters["compliance_tasks"] == 1
    with session_scope(db_url) as s:
        records = s.scalars(select(PruneRecord)).all()
        assert sorted(r.video_id for r in records) == sorted(gone)  # one each: no duplicates
        assert all(r.files_removed_at is not None for r in records)
    for v in videos:
        present = [(media_dir / p).exists() for p in files[v.id]]
        assert not any(present) if v.id in gone else all(present), v.web_state


def test_an_age_restricted_page_is_kept_with_its_own_status(db_url, sandbox, tmp_path):
    media_dir = tmp_path / "media"
    public = pick_videos(sandbox.state.corpus)["public"]
    store(db_url, media_dir, public)
    sandbox.state.config.web.age_restricted = 1.0
    assert {check_page(sandbox.base_url, v.id, v.username, 10).verdict for v in public} == {
        "age_restricted"
    }

    result = prune_videos(db_url, media_dir, sandbox.base_url, pending_videos(db_url))

    assert (result.age_restricted, result.transient, result.pruned) == (len(public), 0, {})
    with session_scope(db_url) as s:
        for v in public:
            row = s.get(Video, v.id)
            assert (row.compliance_status, row.pruned_at) == ("age_restricted", None)
            assert row.compliance_checked_at is not None  # not due again for 15 days
    assert pending_videos(db_url, checked_before=utcnow() - timedelta(days=7)) == []


def test_a_page_showing_another_video_proves_nothing(sandbox):
    public = pick_videos(sandbox.state.corpus)["public"][0]
    sandbox.state.config.web.wrong_video = 1.0
    check = check_page(sandbox.base_url, public.id, public.username, 10)
    assert check.verdict == "transient" and "wrong video" in check.reason
