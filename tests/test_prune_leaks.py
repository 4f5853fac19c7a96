"""Issue 20 #1: a video known private or removed at any stage never reaches the public export,
and prune deletes its derived text (transcripts, annotations, frames) as it does its media."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from sqlalchemy import func, select

from gettok.db import session_scope
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    Campaign,
    CampaignVideo,
    Download,
    DownloadStatus,
    Frame,
    PruneRecord,
    Transcript,
    Video,
    utcnow,
)
from gettok.tasks.export.dataset import export_dataset
from gettok.tasks.prune import finish_pruned, known_gone, pending_videos, unfinished

CAPTION = "caption of video {}"
SPOKEN = "spoken words of video {}"


def six_videos(url: str, media_dir) -> dict[str, list[int]]:
    """The reproduction: 6 videos, 2 found private at download (media deleted by the download
    stage, never marked pruned), each with a caption, a TikTok transcript, a Whisper transcript
    and an annotation."""
    ids = {"public": [101, 102, 103, 104], "private": [105, 106]}
    with session_scope(url) as s:
        campaign = Campaign(
            name="leak", query={}, query_hash="q", start_date=date(2022, 12, 1), region_codes=[]
        )
        s.add(campaign)
        s.flush()
        for vid in ids["public"] + ids["private"]:
            s.add(
                Video(
                    id=vid,
                    username=f"user{vid}",
                    video_description=CAPTION.format(vid),
                    voice_to_text=SPOKEN.format(vid),
                    raw={"id": vid},
                )
            )
            s.flush()
            s.add(CampaignVideo(campaign_id=campaign.id, video_id=vid))
            private = vid in ids["private"]
            path = None if private else f"videos/{vid}.mp4"
            status = DownloadStatus.private if private else DownloadStatus.ok
            s.add(Download(video_id=vid, status=status, path=path))
            s.add(
                Transcript(
                    video_id=vid,
                    engine="faster-whisper",
                    model="small",
                    settings={},
                    settings_hash="h",
                    text=f"whisper text {vid}",
                )
            )
            s.add(
                Annotation(
                    video_id=vid,
                    kind=AnnotationKind.summary,
                    value={"summary": f"summary {vid}"},
                    model="m",
                    prompt_id="summary",
                    prompt_hash="p" * 12,
                )
            )
            if not private:
                (media_dir / "videos").mkdir(parents=True, exist_ok=True)
                (media_dir / path).write_bytes(b"media")
                s.add(Frame(video_id=vid, frame_index=0, path=f"f/{vid}.jpg", width=1, height=1))
    # A frame the frames stage wrote for a private video before the download stage found it so.
    stray = media_dir / "frames" / "105" / "000000.jpg"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"frame")
    return ids


def test_public_export_leaves_out_videos_found_private_at_download(db_url, tmp_path):
    ids = six_videos(db_url, tmp_path / "media")

    result = export_dataset(db_url, "leak", tmp_path / "out", "csv", public=True)

    exported = pl.read_csv(result.path)
    assert sorted(exported["video_id"].to_list()) == ids["public"]  # was 6 rows: 2 leaked
    assert result.excluded_pruned == 2
    text = result.path.read_text()
    for vid in ids["private"]:
        assert CAPTION.format(vid) not in text and SPOKEN.format(vid) not in text


def test_prune_finishes_videos_known_private_without_asking_again(db_url, tmp_path):
    media_dir = tmp_path / "media"
    ids = six_videos(db_url, media_dir)
    # Prune covers every video, with files or not (the two private ones have none).
    assert [v for v, _ in pending_videos(db_url)] == ids["public"] + ids["private"]
    assert known_gone(db_url) == [(vid, "private") for vid in ids["private"]]

    result = finish_pruned(db_url, media_dir)  # no page is read: nothing to reach

    assert result.finished == 2 and result.files_removed == 1  # the stray frame
    assert not (media_dir / "frames" / "105").exists()
    assert known_gone(db_url) == [] and unfinished(db_url) == []
    assert [v for v, _ in pending_videos(db_url)] == ids["public"]
    with session_scope(db_url) as s:
        for vid in ids["private"]:
            video = s.get(Video, vid)
            assert video.pruned_at is not None and video.pruned_reason == "private"
        for table in (Transcript, Annotation):
            left = s.scalars(select(table.video_id).order_by(table.video_id)).all()
            assert left == ids["public"], table.__name__
        records = s.scalars(select(PruneRecord)).all()
        assert sorted(r.video_id for r in records) == ids["private"]
        assert all(r.files_removed_at is not None for r in records)
    again = finish_pruned(db_url, media_dir)
    assert again.finished == 0
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(PruneRecord)) == 2


def test_due_videos_only_and_recently_checked_skipped(sqlite_url, tmp_path):
    from gettok.tasks.prune.store import mark_checked

    ids = six_videos(sqlite_url, tmp_path / "media")
    mark_checked(sqlite_url, ids["public"][:2])
    due = utcnow() - timedelta(days=7)
    pending = [v for v, _ in pending_videos(sqlite_url, checked_before=due)]
    assert pending == ids["public"][2:] + ids["private"]
    later = utcnow() + timedelta(seconds=1)
    assert [v for v, _ in pending_videos(sqlite_url, checked_before=later)] == sorted(
        ids["public"] + ids["private"]
    )
    assert [v for v, _ in pending_videos(sqlite_url, None, 2, after_id=102)] == [103, 104]


def test_prune_keeps_annotations_people_coded(sqlite_url, tmp_path):
    """Deleting a coded annotation would cascade to the coders' answers: it stays, withheld."""
    from gettok.models.schema import ValidationItem, ValidationSample

    ids = six_videos(sqlite_url, tmp_path / "media")
    with session_scope(sqlite_url) as s:
        sample = ValidationSample(campaign_id=1, kind="summary_check", n=1, seed=1, labels=["a"])
        s.add(sample)
        s.flush()
        coded = s.scalar(select(Annotation.id).where(Annotation.video_id == 105))
        s.add(ValidationItem(sample_id=sample.id, position=0, video_id=105, annotation_id=coded))

    finish_pruned(sqlite_url, tmp_path / "media")

    with session_scope(sqlite_url) as s:
        left = s.scalars(select(Annotation.video_id).order_by(Annotation.video_id)).all()
        assert left == [*ids["public"], 105]
        assert s.scalar(select(func.count()).select_from(ValidationItem)) == 1
