"""A synthetic campaign of N videos with the rows every stage would have left, for the scale
benchmark and the tests that need more videos than Postgres allows parameters (65,535).

Videos, engagement snapshots and memberships go through the collector's own store
(`upsert_videos`, `record_sightings`, `add_members`) a page of 1,000 at a time; the downstream rows
(downloads, media_info, transcripts, frames, annotations) are bulk inserts through the schema's
tables, with values shaped like the real ones (mentions in captions, TikTok and Whisper
transcripts, failed and empty rows, frames with annotations that point at them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from gettok import db
from gettok.models.api import ResearchVideo
from gettok.models.campaign import Campaign, parse_campaign
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    Download,
    DownloadStatus,
    Frame,
    MediaInfo,
    Transcript,
)
from gettok.tasks.collect import store as collect_store
from gettok.tasks.collect.windows import CollectionWindow as DateWindow
from gettok.tasks.transcribe import store as transcribe_store

PAGE = 1000
FIRST_ID = 7_100_000_000_000_000_000
START = datetime(2024, 3, 1, tzinfo=UTC)
FRAMES_PER_VIDEO = 3
CAMPAIGN = {
    "name": "scale",
    "title": "Scale benchmark",
    "start_date": "2024-03-01",
    "end_date": "2024-06-01",
    "language": "es",
    "query": {"region_codes": ["PE"], "keywords": ["castillo"]},
    "stance": {"target": "Pedro Castillo", "labels": ["support", "no support", "neutral"]},
}
TIKTOK_PROVENANCE = {"engine": "tiktok", "source": "research-api", "field": "voice_to_text"}
WORDS = "castillo peru congreso vacancia lima voto pueblo fuerza presidente hoy".split()


def scale_campaign(name: str = "scale") -> Campaign:
    return parse_campaign({**CAMPAIGN, "name": name})


def _text(i: int, words: int) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(words))


def _api_record(i: int, video_id: int) -> dict[str, Any]:
    return {
        "id": video_id,
        "video_description": f"{_text(i, 12)} @user{i % 997} ＠fan{i % 13} #peru",
        "create_time": int((START + timedelta(seconds=90 * i)).timestamp()),
        "region_code": "PE",
        "view_count": 1000 + i,
        "like_count": 100 + i % 500,
        "comment_count": i % 70,
        "share_count": i % 30,
        "music_id": 7_000_000_000 + i % 5000,
        "hashtag_names": ["peru", f"tag{i % 50}", f"@fan{i % 11}" if i % 9 == 0 else "lima"],
        "username": f"creator_{i % 20_000}",
        "voice_to_text": _text(i + 1, 20) if i % 3 else None,
        "video_duration": 15 + i % 45,
        "video_mention_list": [f"user{i % 997}"],
    }


def add_videos(
    url: str, campaign: Campaign, count: int, first: int = 0, seen: datetime | None = None
) -> list[int]:
    """`count` videos (the `first`-th synthetic video on) collected into the campaign through
    the collector's store, first seen at `seen` (a day into the campaign unless given)."""
    seen = seen or START + timedelta(days=1)
    ids = []
    with db.session_scope(url) as session:
        cid = collect_store.save_campaign(session, campaign)
    for start in range(first, first + count, PAGE):
        end = min(first + count, start + PAGE)
        raws = [_api_record(i, FIRST_ID + i) for i in range(start, end)]
        videos = [ResearchVideo.model_validate(r) for r in raws]
        with db.session_scope(url) as session:
            window = collect_store.ensure_window(
                session, cid, campaign.query_hash, _window(campaign)
            )
            collect_store.upsert_videos(session, videos, raws, seen)
            collect_store.record_sightings(session, videos, seen)
            collect_store.add_members(session, cid, window.id, [v.id for v in videos], seen)
        ids += [v.id for v in videos]
    return ids


def _window(campaign: Campaign) -> DateWindow:
    return DateWindow(start=campaign.start_date, end=campaign.start_date + timedelta(days=29))


def add_downstream(url: str, ids: list[int], frames: bool = True) -> None:
    """Downloads, media_info, transcripts, frames and annotations for `ids`, in bulk."""
    for start in range(0, len(ids), PAGE * 5):
        chunk = list(enumerate(ids[start : start + PAGE * 5], start))
        with db.session_scope(url) as session:
            session.execute(insert(Download), [_download(i, v) for i, v in chunk])
            session.execute(insert(MediaInfo), [_media(i, v) for i, v in chunk if i % 10])
            session.execute(insert(Transcript), [t for i, v in chunk for t in _transcripts(i, v)])
            if frames:
                session.execute(insert(Frame), [f for i, v in chunk for f in _frames(i, v)])
            frame_ids = dict(
                session.execute(
                    select(Frame.video_id, Frame.id).where(
                        Frame.frame_index == 0, Frame.video_id.between(chunk[0][1], chunk[-1][1])
                    )
                ).all()
            )
            session.execute(
                insert(Annotation),
                [a for i, v in chunk for a in _annotations(i, v, frame_ids.get(v))],
            )


def _download(i: int, video_id: int) -> dict[str, Any]:
    ok = i % 10 != 0
    return {
        "video_id": video_id,
        "status": DownloadStatus.ok if ok else DownloadStatus.private,
        "path": f"videos/{video_id}.mp4" if ok else None,
        "bytes": 2_000_000 + i if ok else None,
        "sha256": f"{i:064x}" if ok else None,
        "attempts": 1,
        "last_error": None if ok else "private video",
        "is_slideshow": False,
    }


def _media(i: int, video_id: int) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "duration_s": 15.0 + i % 45,
        "fps": 30.0,
        "frame_count": 30 * (15 + i % 45),
        "width": 720,
        "height": 1280,
        "has_audio": True,
        "video_codec": "h264",
        "audio_codec": "aac",
    }


def _transcripts(i: int, video_id: int) -> list[dict[str, Any]]:
    if i % 10 == 0:
        return []
    whisper = {
        "video_id": video_id,
        "engine": "faster-whisper",
        "model": "small",
        "settings": {"beam_size": 5},
        "settings_hash": "a1b2c3",
        "status": "ok" if i % 50 else "failed",
        "language": "es",
        "language_probability": 0.97,
        "text": f"{_text(i + 2, 30)} @{WORDS[i % 10]}" if i % 50 else None,
        "is_empty": i % 17 == 0,
    }
    rows = [whisper]
    if i % 3:  # TikTok's voice_to_text, copied by an earlier transcription run
        rows.append(
            {
                "video_id": video_id,
                "engine": "tiktok",
                "model": "research-api voice_to_text",
                "settings": TIKTOK_PROVENANCE,
                "settings_hash": transcribe_store.settings_hash(TIKTOK_PROVENANCE),
                "status": "ok",
                "text": _text(i + 1, 20),
                "is_empty": False,
            }
        )
    return rows


def _frames(i: int, video_id: int) -> list[dict[str, Any]]:
    if i % 10 == 0:
        return []
    return [
        {
            "video_id": video_id,
            "frame_index": k,
            "timestamp_s": 2.0 * k,
            "path": f"frames/{video_id}/{k}.jpg",
            "width": 360,
            "height": 640,
            "source": "video",
        }
        for k in range(FRAMES_PER_VIDEO)
    ]


def _annotations(i: int, video_id: int, frame_id: int | None) -> list[dict[str, Any]]:
    if i % 10 == 0:
        return []
    labels = ["support", "no support", "neutral"]
    values = {
        AnnotationKind.description: {"description": _text(i, 15), "onscreen_text": "fuera @x"},
        AnnotationKind.stance: {"label": labels[i % 3], "confidence": 0.5 + (i % 5) / 10},
        AnnotationKind.sentiment: {"label": "negative", "confidence": 0.8, "low_confidence": False},
        AnnotationKind.summary: {"summary": _text(i + 5, 10)},
    }
    return [
        {
            "video_id": video_id,
            "kind": kind,
            "status": AnnotationStatus.ok if i % 23 else AnnotationStatus.refused,
            "value": value,
            "model": "sandbox-vision",
            "prompt_id": kind.value,
            "prompt_hash": f"{kind.value:0<16}",
            "is_sandbox": False,
            "frame_id": frame_id if kind is AnnotationKind.description else None,
            "input_tokens": 900,
            "output_tokens": 60,
            "cost_usd": 0.0004,
        }
        for kind, value in values.items()
    ]


# The model stored comparisons are recorded under: benchmarks measure a daily report, whose pairs
# an earlier report compared (embedding every pair is a once-per-pair cost, about linear).
COMPARISON_MODEL = "none"


def build(url: str, count: int, name: str = "scale") -> tuple[Campaign, list[int]]:
    """A migrated database at `url` holding a campaign of `count` videos and their rows, the
    transcript pairs compared as the report stores them (without embeddings)."""
    from gettok.tasks.report.comparisons import compare_campaign

    db.upgrade(url)
    campaign = scale_campaign(name)
    ids = add_videos(url, campaign, count)
    add_downstream(url, ids)
    analyze(url)
    compare_campaign(url, name, COMPARISON_MODEL)
    analyze(url)
    return campaign, ids


def analyze(url: str) -> None:
    """Fresh planner statistics after the bulk load, as autovacuum gives a live database: on
    none, Postgres guesses a few rows per table and plans each query as if it were tiny."""
    if url.startswith("postgresql"):
        from sqlalchemy import text

        engine = db.get_engine(url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
