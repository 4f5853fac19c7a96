"""A daily start looks only at what became ready since the stage's watermark, finds every retry
that is due, keeps the mark before anything left undone, and once a week looks at everything
again, which finds an input that slipped behind the mark (a commit later than its time)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bench.scale_data import add_videos, scale_campaign
from gettok import db, watermarks
from gettok.clients.llm_budget import Budget
from gettok.models.schema import (
    Annotation,
    AnnotationStatus,
    Campaign,
    Download,
    DownloadStatus,
    Frame,
    FrameExtraction,
    FrameStatus,
    StageWatermark,
    Transcript,
    Video,
    utcnow,
)
from gettok.settings import get_settings
from gettok.tasks.annotate.annotator import AnnotateResult, plan_for
from gettok.tasks.annotate.campaign import annotate_campaign
from gettok.tasks.download.downloader import download_round
from gettok.tasks.download.store import DownloadResult
from gettok.tasks.frames import store as frames_store
from gettok.tasks.frames.campaign import extract_campaign_frames
from gettok.tasks.frames.extract import FramesResult, frame_settings
from gettok.tasks.transcribe import store as transcribe_store
from gettok.tasks.transcribe.campaign import transcribe_campaign
from gettok.tasks.transcribe.text_language import identify_campaign
from gettok.tasks.transcribe.transcriber import TranscribeResult
from gettok.tasks.transcribe.whisper import WhisperOptions
from gettok.tasks.watch.store import store_outcome, unchecked_frames, watch_annotation

ANY = None  # `_mark`: whatever the fingerprint


def _downloading(url: str, asked: list[list[int]], status=DownloadStatus.ok):
    """A batch runner that records `status` for every video it is given, and notes them."""

    def run(videos: list[tuple[int, str | None]]) -> DownloadResult:
        ids = [i for i, _ in videos]
        asked.append(ids)
        with db.session_scope(url) as session:
            for i in ids:
                row = session.get(Download, i) or Download(video_id=i, attempts=0)
                row.status, row.path, row.next_attempt_at = status, f"videos/{i}.mp4", None
                session.merge(row)
        return DownloadResult(statuses=dict.fromkeys(ids, status))

    return run


def _round(url: str, asked: list[list[int]], **options) -> list[int]:
    asked.clear()
    download_round(url, "scale", 4, _downloading(url, asked), **options)
    return sorted(i for page in asked for i in page)


def _mark(url: str, stage: str, fingerprint: str | None = "") -> StageWatermark:
    query = select(StageWatermark).where(StageWatermark.stage == stage)
    if fingerprint is not None:
        query = query.where(StageWatermark.fingerprint == fingerprint)
    with db.session_scope(url) as session:
        row = session.scalar(query)
        session.expunge(row)
        return row


def _shift(url: str, **by: timedelta) -> None:
    """Move the stored watermarks' times (`mark`, `walked_at`) back by the given amounts."""
    with db.session_scope(url) as session:
        for row in session.scalars(select(StageWatermark)):
            for name, delta in by.items():
                setattr(row, name, getattr(row, name) - delta)


def test_a_daily_download_start_looks_past_its_watermark_and_weekly_at_everything(db_url):
    db.upgrade(db_url)
    campaign, now = scale_campaign(), utcnow()
    old = add_videos(db_url, campaign, 10, seen=now - timedelta(days=3))
    asked: list[list[int]] = []

    assert _round(db_url, asked) == old  # no mark yet: every member
    first = _mark(db_url, "download")
    assert now - watermarks.MARGIN <= first.mark <= utcnow() - watermarks.MARGIN

    # Behind the mark: one member that arrived late (its commit after the pass, its time
    # before) and one dropped connection now due; after it, three new members.
    slipped = add_videos(db_url, campaign, 1, first=10, seen=now - timedelta(days=2))
    with db.session_scope(db_url) as session:
        session.get(Download, old[3]).status = DownloadStatus.transient
    new = add_videos(db_url, campaign, 3, first=20, seen=now)

    assert _round(db_url, asked) == sorted([old[3], *new])  # not the slipped one, not the rest
    assert _round(db_url, asked) == []

    _shift(db_url, walked_at=timedelta(days=8))  # a week on: every member is looked at once more
    assert _round(db_url, asked) == slipped
    assert _mark(db_url, "download").walked_at > now


def test_the_mark_stays_before_what_a_pass_left_undone(db_url):
    db.upgrade(db_url)
    campaign, now = scale_campaign(), utcnow()
    add_videos(db_url, campaign, 2, seen=now - timedelta(days=5))
    asked: list[list[int]] = []
    _round(db_url, asked)
    _shift(db_url, mark=timedelta(days=4))  # as if that pass had been five days ago
    later = [
        add_videos(db_url, campaign, 1, first=10 + k, seen=now - timedelta(days=4 - k))[0]
        for k in range(4)
    ]

    assert _round(db_url, asked, limit=2) == later[:2]  # a limit leaves two for later
    assert _mark(db_url, "download").mark < now - timedelta(days=2)  # before the third
    assert _round(db_url, asked) == later[2:]
    assert _mark(db_url, "download").mark > now - timedelta(days=1)


def test_retry_failed_looks_at_every_member(db_url):
    db.upgrade(db_url)
    campaign, now = scale_campaign(), utcnow()
    ids = add_videos(db_url, campaign, 5, seen=now - timedelta(days=3))
    asked: list[list[int]] = []
    download_round(db_url, "scale", 4, _downloading(db_url, asked, DownloadStatus.private))
    assert _round(db_url, asked) == []
    assert _round(db_url, asked, retry_failed=True) == ids


def _downloaded(url: str, ids: list[int], at) -> None:
    """Good downloads of `ids`, last changed at `at`."""
    with db.session_scope(url) as session:
        for i in ids:
            row = session.get(Download, i) or Download(video_id=i, attempts=1)
            row.status, row.path, row.updated_at = DownloadStatus.ok, f"videos/{i}.mp4", at
            session.merge(row)


def _transcribing(url: str, settings, asked: list[list[int]]):
    options = WhisperOptions()

    def run_batch(ids, settings, options_, retry_failed):
        asked.append(list(ids))
        for i in ids:
            transcribe_store.record_failure(url, i, options, "audio: unreadable")
        return TranscribeResult()

    return lambda: transcribe_campaign(settings, options, "scale", run_batch)


def _extracting(url: str, settings, asked: list[list[int]]):
    digest = frames_store.settings_hash(frame_settings(settings))

    def run_frames(url_, settings_, ids, limit):
        asked.append(list(ids))
        with db.session_scope(url) as session:
            for i in ids:
                session.merge(
                    FrameExtraction(
                        video_id=i,
                        status=FrameStatus.failed,
                        reason="missing",
                        settings_hash=digest,
                    )
                )
        return FramesResult()

    return lambda: extract_campaign_frames(url, settings, "scale", run_frames, batch_size=4)


@pytest.mark.parametrize(
    ("stage", "runner"), [("transcribe", _transcribing), ("frames", _extracting)]
)
def test_a_stage_after_download_looks_at_what_was_downloaded_or_joined_since(
    db_url, settings_env, monkeypatch, stage, runner
):
    """Past the mark: a new download of an old member, and a video downloaded long ago for
    another campaign that joins this one now. Behind it, one download whose commit came late
    is left for the weekly pass over every member."""
    monkeypatch.setenv("GETTOK_DATABASE_URL", db_url)
    db.upgrade(db_url)
    now, day = utcnow(), timedelta(days=1)
    old = add_videos(db_url, scale_campaign(), 12, seen=now - 3 * day)
    _downloaded(db_url, old[:8], now - 3 * day)
    elsewhere = add_videos(db_url, scale_campaign("other"), 2, first=30, seen=now - 3 * day)
    _downloaded(db_url, elsewhere, now - 3 * day)
    asked: list[list[int]] = []
    run = runner(db_url, get_settings(), asked)

    def done() -> list[int]:
        asked.clear()
        run()
        return sorted(i for batch in asked for i in batch)

    assert done() == old[:8]  # no mark yet: every member
    assert _mark(db_url, stage, fingerprint=ANY).walked_at > now

    _downloaded(db_url, [old[8]], now)  # downloaded today
    joined = add_videos(db_url, scale_campaign(), 1, first=30, seen=now)  # from "other", today
    _downloaded(db_url, [old[9]], now - 2 * day)  # its commit after the last pass: slipped
    assert done() == sorted([old[8], *joined])
    assert done() == []

    _shift(db_url, walked_at=timedelta(days=8))
    assert done() == [old[9]]


def _transcribed(url: str, ids: list[int], at) -> None:
    """TikTok's transcript for each of `ids`, made at `at`."""
    with db.session_scope(url) as session:
        for i in ids:
            session.add(
                Transcript(
                    video_id=i,
                    engine=transcribe_store.TIKTOK_ENGINE,
                    model=transcribe_store.TIKTOK_MODEL,
                    settings={},
                    settings_hash="tiktok",
                    text=f"hola {i}",
                    created_at=at,
                )
            )


def test_annotation_looks_at_what_was_transcribed_since_and_what_it_asks_again(
    db_url, settings_env, monkeypatch
):
    monkeypatch.setenv("GETTOK_DATABASE_URL", db_url)
    db.upgrade(db_url)
    now, day = utcnow(), timedelta(days=1)
    campaign, settings = scale_campaign(), get_settings()
    plan = plan_for("summary", campaign, settings)
    old = add_videos(db_url, campaign, 8, seen=now - 3 * day)
    _transcribed(db_url, old[:5], now - 3 * day)
    asked: list[list[int]] = []

    def run_batch(url, settings, campaign, kind, video_ids, *, client, budget):
        """An ok summary for each, but an invalid one (asked again) for the first video."""
        asked.append(list(video_ids))
        with db.session_scope(url) as session:
            for i in video_ids:
                row = session.scalar(select(Annotation).where(Annotation.video_id == i))
                row = row or Annotation(
                    video_id=i,
                    kind=plan.kind,
                    model=plan.model,
                    prompt_id="summary",
                    prompt_hash=plan.prompt_hash,
                )
                invalid = i == old[0] and row.id is None
                row.status = AnnotationStatus.invalid if invalid else AnnotationStatus.ok
                row.value = {"summary": "x"}
                session.add(row)
        return AnnotateResult(kind=kind, model=plan.model, prompt_hash=plan.prompt_hash)

    def done() -> list[int]:
        asked.clear()
        annotate_campaign(campaign, settings, Budget(1.0), kinds=["summary"], run_batch=run_batch)
        return sorted(i for batch in asked for i in batch)

    assert done() == old[:5]  # no mark yet: every member
    with db.session_scope(db_url) as session:  # the invalid answer was given days ago
        session.execute(update(Annotation).values(created_at=now - 2 * day))
    _transcribed(db_url, [old[5]], now)  # transcribed today
    _transcribed(db_url, [old[6]], now - 2 * day)  # its commit after the last pass: slipped
    assert done() == [old[0], old[5]]  # and the invalid answer, asked again
    assert done() == []

    _shift(db_url, walked_at=timedelta(days=8))
    assert done() == [old[6]]


def _framed(url: str, ids: list[int], at) -> None:
    with db.session_scope(url) as session:
        for i in ids:
            session.add(Frame(video_id=i, frame_index=0, path=f"f/{i}.jpg", width=8, height=8))
            session.merge(
                FrameExtraction(
                    video_id=i, status=FrameStatus.ok, frames=1, settings_hash="x", recorded_at=at
                )
            )


def test_a_watch_target_looks_at_what_was_framed_or_joined_since(db_url):
    db.upgrade(db_url)
    now, day = utcnow(), timedelta(days=1)
    old = add_videos(db_url, scale_campaign(), 8, seen=now - 3 * day)
    _framed(db_url, old[:5], now - 3 * day)
    elsewhere = add_videos(db_url, scale_campaign("other"), 1, first=30, seen=now - 3 * day)
    _framed(db_url, elsewhere, now - 3 * day)
    with db.session_scope(db_url) as session:
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == "scale"))

    def done() -> list[int]:
        checked = []
        for video_id, _frames in unchecked_frames(db_url, campaign_id, "orb", "target-1"):
            row = watch_annotation(
                video_id, {"matched": False}, model="orb", prompt_id="t", prompt_hash="target-1",
                settings={},
            )  # fmt: skip
            store_outcome(db_url, row)
            checked.append(video_id)
        return checked

    assert done() == old[:5]
    _framed(db_url, [old[5]], now)  # framed today
    joined = add_videos(db_url, scale_campaign(), 1, first=30, seen=now)  # framed for "other"
    _framed(db_url, [old[6]], now - 2 * day)  # slipped
    assert done() == sorted([old[5], *joined])
    assert done() == []
    _shift(db_url, walked_at=timedelta(days=8))
    assert done() == [old[6]]


def test_the_tiktok_transcript_copy_reads_what_was_seen_since(db_url):
    db.upgrade(db_url)
    now, day = utcnow(), timedelta(days=1)
    old = add_videos(db_url, scale_campaign(), 9, seen=now - 3 * day)  # every third: no text
    copied = transcribe_store.record_tiktok_transcripts(db_url, "scale")
    assert copied == 6

    def reword(video_id: int, seen) -> None:
        with db.session_scope(db_url) as session:
            video = session.get(Video, video_id)
            video.voice_to_text, video.last_seen_at = f"nuevo {video_id}", seen

    reword(old[1], now)  # seen again today, with new words
    reword(old[2], now - 2 * day)  # its commit after the last copy: slipped
    assert transcribe_store.record_tiktok_transcripts(db_url, "scale") == 1
    _shift(db_url, walked_at=timedelta(days=8))
    assert transcribe_store.record_tiktok_transcripts(db_url, "scale") == 1


def test_the_text_identifier_reads_what_was_transcribed_or_seen_since(db_url):
    db.upgrade(db_url)
    now, day = utcnow(), timedelta(days=1)
    old = add_videos(db_url, scale_campaign(), 4, seen=now - 3 * day)
    with db.session_scope(db_url) as session:  # collected days ago
        for video in session.scalars(select(Video)):
            video.last_seen_at = now - 3 * day
    _transcribed(db_url, old[:2], now - 3 * day)
    assert identify_campaign(db_url, "scale") == 4 + 2  # every caption, two transcripts

    _transcribed(db_url, [old[2]], now)  # transcribed today
    _transcribed(db_url, [old[3]], now - 2 * day)  # its commit after the last run: slipped
    assert identify_campaign(db_url, "scale") == 1
    _shift(db_url, walked_at=timedelta(days=8))
    assert identify_campaign(db_url, "scale") == 1
