"""Every stage loop reads its pending work a page at a time (keyset: past the last id seen).

A backlog larger than one page, batches that leave some videos pending (failed in a way that is
asked again, held by another worker): each pending video is met exactly once in the run, in the
order of the stage's pending query, nothing is lost, `limit` holds, and no query asks for more
than a page.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from bench.scale_data import START, add_downstream, add_videos, scale_campaign
from gettok import db, keyset
from gettok.clients.llm import Budget
from gettok.models.schema import (
    Annotation,
    AnnotationStatus,
    CampaignVideo,
    DownloadStatus,
    Frame,
    utcnow,
)
from gettok.settings import get_settings
from gettok.tasks.annotate import store as annotate_store
from gettok.tasks.annotate.annotator import AnnotateResult, plan_for
from gettok.tasks.annotate.campaign import annotate_campaign
from gettok.tasks.download import store as download_store
from gettok.tasks.download.downloader import download_round
from gettok.tasks.download.store import DownloadResult, Outcome, record_outcome
from gettok.tasks.frames import store as frames_store
from gettok.tasks.frames.campaign import extract_campaign_frames
from gettok.tasks.frames.extract import FramesResult, frame_settings
from gettok.tasks.transcribe import store as transcribe_store
from gettok.tasks.transcribe.campaign import transcribe_campaign
from gettok.tasks.transcribe.transcriber import TranscribeResult
from gettok.tasks.transcribe.whisper import WhisperOptions

VIDEOS = 60
PAGE = 7


@pytest.fixture
def backlog(db_url, settings_env, monkeypatch):
    """A campaign of 60 videos whose downloads and transcripts exist (no frames), looked at
    in ranges of 9 ids, so that pages of 7 cross range borders."""
    monkeypatch.setenv("GETTOK_DATABASE_URL", db_url)
    monkeypatch.setattr(keyset, "ID_RANGE", 9)
    db.upgrade(db_url)
    ids = add_videos(db_url, scale_campaign(), VIDEOS)
    return db_url, ids


def spy(monkeypatch, module, name: str, size_of=len) -> list[tuple[int | None, int]]:
    """Record (limit asked, rows returned) of every call of `module.name`."""
    calls: list[tuple[int | None, int]] = []
    real = getattr(module, name)

    def recorded(*args, **kwargs):
        rows = real(*args, **kwargs)
        limit = kwargs.get("limit", args[4] if name == "_pending_rows" else None)
        calls.append((limit, size_of(rows)))
        return rows

    monkeypatch.setattr(module, name, recorded)
    return calls


def meet(seen: list[int], batch: list[int]) -> None:
    """A batch's videos, none met before in this run (a loop that re-reads would never end)."""
    assert not set(batch) & set(seen), "a video met twice in one run"
    seen.extend(batch)


def assert_paged(calls: list[tuple[int | None, int]], page: int, read: int) -> None:
    assert calls and all(limit is not None and limit <= page for limit, _ in calls)
    assert all(rows <= limit for limit, rows in calls)
    assert sum(rows for _, rows in calls) == read


def test_transcription_meets_each_pending_video_once(backlog, monkeypatch):
    url, ids = backlog
    add_downstream(url, ids, frames=False)
    monkeypatch.setenv("GETTOK_TRANSCRIPTION_TASK_VIDEOS", str(PAGE))
    settings = get_settings()
    options = WhisperOptions()
    before = transcribe_store.pending_videos(url, options, "scale", retry_failed=True)
    assert len(before) > 3 * PAGE
    seen: list[int] = []

    def batch(video_ids, settings, options, retry_failed):
        """A failed row for every other video: with `retry_failed` it stays pending."""
        assert retry_failed and len(video_ids) <= PAGE
        meet(seen, video_ids)
        for video_id in video_ids[::2]:
            transcribe_store.record_failure(url, video_id, options, "audio: unreadable")
        return TranscribeResult(failed={i: "audio: unreadable" for i in video_ids[::2]})

    calls = spy(monkeypatch, transcribe_store, "pending_videos")
    result = transcribe_campaign(settings, options, "scale", batch, retry_failed=True)
    assert_paged(calls, PAGE, len(before))
    assert seen == before  # each once, in id order, though every one is still pending
    assert transcribe_store.pending_videos(url, options, "scale", retry_failed=True) == before
    assert len(result.failed) == sum(len(before[i : i + PAGE][::2]) for i in range(0, 99, PAGE))

    seen.clear()
    calls.clear()
    transcribe_campaign(settings, options, "scale", batch, retry_failed=True, limit=2 * PAGE + 3)
    assert seen == before[: 2 * PAGE + 3]
    # No query asks for more than a page, nor for more than the limit leaves (a page may take
    # two queries where it crosses a range of ids).
    asked = 0
    for limit, rows in calls:
        assert limit <= min(PAGE, 2 * PAGE + 3 - asked)
        asked += rows
    assert asked == 2 * PAGE + 3


def test_frames_meet_each_pending_video_once(backlog, monkeypatch):
    url, ids = backlog
    add_downstream(url, ids, frames=False)
    settings = get_settings()
    digest = frames_store.settings_hash(frame_settings(settings))
    before = [d.video_id for d in frames_store.pending_videos(url, digest, "scale", limit=None)]
    assert len(before) > 3 * PAGE
    seen: list[int] = []

    def run_frames(url, settings, video_ids, limit):
        """Frames for every third video; the others are held by another worker (still pending)."""
        assert limit == len(video_ids) <= PAGE
        meet(seen, video_ids)
        with db.session_scope(url) as session:
            session.add_all(
                Frame(video_id=i, frame_index=0, path=f"frames/{i}/0.jpg", width=1, height=1)
                for i in video_ids[::3]
            )
        return FramesResult(videos_done=len(video_ids[::3]))

    calls = spy(monkeypatch, frames_store, "pending_videos", size_of=lambda rows: len(list(rows)))
    result = extract_campaign_frames(url, settings, "scale", run_frames, batch_size=PAGE)
    assert_paged(calls, PAGE, len(before))
    assert seen == before
    left = [d.video_id for d in frames_store.pending_videos(url, digest, "scale", limit=None)]
    done = {i for start in range(0, len(before), PAGE) for i in before[start : start + PAGE][::3]}
    assert left == [i for i in before if i not in done]
    assert result.videos_done == len(done)


def test_annotation_meets_each_pending_video_once_and_counts_what_the_budget_leaves(
    backlog, monkeypatch
):
    url, ids = backlog
    add_downstream(url, ids, frames=False)
    monkeypatch.setenv("GETTOK_LLM_BATCH_SIZE", str(PAGE))
    settings = get_settings()
    campaign = scale_campaign()
    plan = plan_for("summary", campaign, settings)
    with db.session_scope(url) as session:
        before = annotate_store.pending_videos(session, "scale", plan)
    assert len(before) > 3 * PAGE
    seen: list[int] = []

    def run_batch(url, settings, campaign, kind, video_ids, *, client, budget):
        """An invalid answer for every other video (asked again by a later run), ok for the
        rest; the budget runs out after the third batch."""
        assert kind == "summary" and len(video_ids) <= PAGE
        meet(seen, video_ids)
        with db.session_scope(url) as session:
            session.add_all(
                Annotation(
                    video_id=i,
                    kind=plan.kind,
                    status=AnnotationStatus.invalid if n % 2 else AnnotationStatus.ok,
                    value={"summary": "x"},
                    model=plan.model,
                    prompt_id="summary",
                    prompt_hash=plan.prompt_hash,
                    tries=1,
                )
                for n, i in enumerate(video_ids)
            )
        if len(seen) == 3 * PAGE:
            budget.reached = True
        return AnnotateResult(
            kind=kind, model=plan.model, prompt_hash=plan.prompt_hash, done=len(video_ids[::2])
        )

    calls = spy(monkeypatch, annotate_store, "pending_videos")
    [result] = annotate_campaign(
        campaign, settings, Budget(1.0), kinds=["summary"], run_batch=run_batch
    )
    assert seen == before[: 3 * PAGE]
    # The fourth page was read, then the rest counted: what the budget left, never lost.
    assert result.skipped_budget == len(before) - 3 * PAGE
    assert result.done == sum(len(before[i : i + PAGE][::2]) for i in range(0, 3 * PAGE, PAGE))
    assert_paged(calls, PAGE, 4 * PAGE)
    with db.session_scope(url) as session:
        left = annotate_store.pending_videos(session, "scale", plan)
    asked_again = {i for s in range(0, 3 * PAGE, PAGE) for i in before[s : s + PAGE][1::2]}
    assert left == [i for i in before if i in asked_again or i not in seen]


def _shuffle_first_seen(url: str, ids: list[int]) -> None:
    """Collected over four days, not in id order, many on the same instant (keyset ties)."""
    with db.session_scope(url) as session:
        for n, video_id in enumerate(ids):
            session.execute(
                update(CampaignVideo)
                .where(CampaignVideo.video_id == video_id)
                .values(first_seen_at=START + timedelta(days=(n * 5) % 4))
            )


def test_downloads_meet_each_pending_video_once_first_collected_first(backlog, monkeypatch):
    url, ids = backlog
    _shuffle_first_seen(url, ids)
    before = download_store.pending_videos(url, "scale")
    assert len(before) == VIDEOS and [i for i, _ in before] != sorted(ids)
    seen: list[int] = []

    def run_batch(videos):
        """Every other video drops the connection, due again at once: it stays pending."""
        assert len(videos) <= PAGE
        meet(seen, [i for i, _ in videos])
        statuses = {}
        for n, (video_id, _) in enumerate(videos):
            status = DownloadStatus.transient if n % 2 else DownloadStatus.private
            statuses[video_id] = record_outcome(url, Outcome(video_id, status, kind="dropped"))
        return DownloadResult(statuses=statuses)

    calls = spy(monkeypatch, download_store, "_pending_rows")
    result = download_round(url, "scale", PAGE, run_batch)
    assert_paged(calls, PAGE, VIDEOS)
    assert seen == [i for i, _ in before]
    assert len(result.statuses) == VIDEOS and result.skipped == 0
    left = {i for i, _ in download_store.pending_videos(url, "scale")}
    assert left == {i for i, s in result.statuses.items() if s == DownloadStatus.transient}


def test_a_throttled_download_round_puts_off_the_rest_without_asking(backlog, monkeypatch):
    url, ids = backlog
    _shuffle_first_seen(url, ids)
    before = [i for i, _ in download_store.pending_videos(url, "scale")]
    seen: list[int] = []
    until = utcnow() + timedelta(hours=1)

    def run_batch(videos):
        """The second batch is throttled after its first video; the rest of it is deferred."""
        meet(seen, [i for i, _ in videos])
        if len(seen) <= PAGE:
            return DownloadResult(
                statuses={
                    i: record_outcome(url, Outcome(i, DownloadStatus.private)) for i, _ in videos
                }
            )
        first = videos[0][0]
        record_outcome(url, Outcome(first, DownloadStatus.blocked, next_attempt_at=until))
        return DownloadResult(
            statuses={first: DownloadStatus.blocked},
            deferred=[i for i, _ in videos[1:]],
            blocked_until=until,
        )

    limit = 4 * PAGE + 2
    result = download_round(url, "scale", PAGE, run_batch, limit=limit)
    assert seen == before[: 2 * PAGE]
    assert result.blocked_until is not None and len(result.statuses) == PAGE + 1
    # Put off: the second batch's deferred videos, then the rest up to the limit, counted.
    assert result.put_off == limit - 2 * PAGE and result.skipped == limit - PAGE - 1
    assert "put off (throttled until" in result.summary()

    # Still throttled at the next start: nothing is asked, everything pending is put off.
    seen.clear()
    calls = spy(monkeypatch, download_store, "_pending_rows")
    again = download_round(url, "scale", PAGE, run_batch)
    assert_paged(calls, PAGE, again.put_off)
    assert seen == [] and again.statuses == {} and again.blocked_until == until
    assert (
        again.put_off == len(before) - PAGE - 1 == len(download_store.pending_videos(url, "scale"))
    )
