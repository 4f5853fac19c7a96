"""Storing what the Research API returned: videos, engagement snapshots, membership, checkpoints.

Everything is an upsert (INSERT ... ON CONFLICT, on Postgres and SQLite alike), so a page stored
twice (a rerun, a duplicate page, a resumed window) leaves the same rows. A page's videos and its
window's checkpoint are written in one transaction by `store_page`: a crash loses at most the page
in flight, never a page whose cursor was already saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.api import ResearchVideo
from models.campaign import Campaign
from models.schema import (
    ApiRequest,
    CampaignVideo,
    CollectionWindow,
    EngagementSnapshot,
    Video,
    utcnow,
)
from models.schema import Campaign as CampaignRow
from tasks.windows import CollectionWindow as DateWindow

# Columns filled straight from the API record (same names).
API_COLUMNS = (
    "username",
    "video_description",
    "create_time",
    "region_code",
    "view_count",
    "like_count",
    "comment_count",
    "share_count",
    "favourites_count",
    "music_id",
    "hashtag_names",
    "effect_ids",
    "playlist_id",
    "voice_to_text",
    "is_stem_verified",
    "video_duration",
    "hashtag_info_list",
    "video_mention_list",
    "video_label",
)
COUNT_COLUMNS = ("view_count", "like_count", "comment_count", "share_count", "favourites_count")
# A new sighting refreshes what the API says; first_seen_at and the pruning record are kept.
VIDEO_UPDATE_COLUMNS = (*API_COLUMNS, "created_at", "extra_fields", "raw", "last_seen_at")


class StoredPage(BaseModel):
    """What one page added: videos new to the database and new sightings in this window pass."""

    videos: int
    new_videos: int
    new_sightings: int


def _insert(session: Session, table):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def save_campaign(session: Session, campaign: Campaign) -> int:
    """Create or update the campaign's row (keyed by name); returns its id."""
    values = {
        "name": campaign.name,
        "title": campaign.title,
        "query": campaign.query.to_api(),
        "query_hash": campaign.query_hash,
        "start_date": campaign.start_date,
        "end_date": campaign.end_date,
        "region_codes": list(campaign.query.region_codes),
        "language": campaign.language,
        "stance_target": campaign.stance.target if campaign.stance else None,
        "stance_labels": list(campaign.stance.labels) if campaign.stance else None,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    stmt = _insert(session, CampaignRow).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[CampaignRow.name],
        set_={k: stmt.excluded[k] for k in values if k not in ("name", "created_at")},
    )
    session.execute(stmt)
    return session.scalar(select(CampaignRow.id).where(CampaignRow.name == campaign.name))


def ensure_window(
    session: Session, campaign_id: int, query_hash: str, window: DateWindow
) -> CollectionWindow:
    """The window's row, created as pending the first time it is planned."""
    stmt = _insert(session, CollectionWindow).values(
        campaign_id=campaign_id,
        query_hash=query_hash,
        window_start=window.start,
        window_end=window.end,
        status="pending",
        pages=0,
        videos=0,
        requests=0,
        updated_at=utcnow(),
    )
    session.execute(stmt.on_conflict_do_nothing())
    return session.scalars(
        select(CollectionWindow).where(
            CollectionWindow.campaign_id == campaign_id,
            CollectionWindow.query_hash == query_hash,
            CollectionWindow.window_start == window.start,
            CollectionWindow.window_end == window.end,
        )
    ).one()


def video_row(video: ResearchVideo, raw: dict[str, Any], seen_at: datetime) -> dict[str, Any]:
    """The `videos` row of one API record; `raw` is stored as sent (NULs and all)."""
    row = {name: getattr(video, name) for name in API_COLUMNS}
    row["id"] = video.id
    row["created_at"] = video.created_at
    row["extra_fields"] = video.extra_fields or None
    row["raw"] = raw
    row["first_seen_at"] = seen_at
    row["last_seen_at"] = seen_at
    return row


def unique_by_id(
    videos: Sequence[ResearchVideo], raws: Sequence[dict[str, Any]]
) -> tuple[list[ResearchVideo], list[dict[str, Any]]]:
    """Drop repeats of an id within a page (ON CONFLICT may not touch one row twice)."""
    seen: set[int] = set()
    kept_videos, kept_raws = [], []
    for video, raw in zip(videos, raws, strict=True):
        if video.id not in seen:
            seen.add(video.id)
            kept_videos.append(video)
            kept_raws.append(raw)
    return kept_videos, kept_raws


def upsert_videos(
    session: Session,
    videos: Sequence[ResearchVideo],
    raws: Sequence[dict[str, Any]],
    seen_at: datetime,
) -> int:
    """Insert or refresh videos (first_seen_at kept); returns how many were new to the database."""
    if not videos:
        return 0
    rows = [video_row(v, r, seen_at) for v, r in zip(videos, raws, strict=True)]
    ids = [row["id"] for row in rows]
    known = len(session.scalars(select(Video.id).where(Video.id.in_(ids))).all())
    stmt = _insert(session, Video)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Video.id], set_={c: stmt.excluded[c] for c in VIDEO_UPDATE_COLUMNS}
    )
    session.execute(stmt, rows)
    return len(rows) - known


def record_sightings(
    session: Session, videos: Sequence[ResearchVideo], sighting_at: datetime
) -> int:
    """One engagement snapshot per video per window pass; returns how many were new."""
    if not videos:
        return 0
    rows = [
        {"video_id": v.id, "collected_at": sighting_at, **{c: getattr(v, c) for c in COUNT_COLUMNS}}
        for v in videos
    ]
    stmt = _insert(session, EngagementSnapshot).on_conflict_do_nothing(
        index_elements=[EngagementSnapshot.video_id, EngagementSnapshot.collected_at]
    )
    inserted = session.execute(stmt.returning(EngagementSnapshot.video_id), rows)
    return len(inserted.all())


def add_members(
    session: Session, campaign_id: int, window_id: int, video_ids: Sequence[int], seen_at: datetime
) -> None:
    if not video_ids:
        return
    rows = [
        {
            "campaign_id": campaign_id,
            "video_id": i,
            "window_id": window_id,
            "first_seen_at": seen_at,
        }
        for i in video_ids
    ]
    stmt = _insert(session, CampaignVideo).on_conflict_do_nothing(
        index_elements=[CampaignVideo.campaign_id, CampaignVideo.video_id]
    )
    session.execute(stmt, rows)


def requests_for_window(session: Session, window_id: int) -> int:
    """Requests the ledger holds for a window (the truth even after a crash between pages)."""
    return session.scalar(
        select(func.count()).select_from(ApiRequest).where(ApiRequest.window_id == window_id)
    )


def checkpoint_window(session: Session, window_id: int, **values: Any) -> None:
    """Update a window's status, cursor, search_id...; requests are recounted from the ledger."""
    values["requests"] = requests_for_window(session, window_id)
    values["updated_at"] = utcnow()
    session.execute(update(CollectionWindow).where(CollectionWindow.id == window_id).values(values))


def store_page(
    session: Session,
    *,
    campaign_id: int,
    window_id: int,
    videos: Sequence[ResearchVideo],
    raws: Sequence[dict[str, Any]],
    sighting_at: datetime,
    checkpoint: dict[str, Any] | None = None,
) -> StoredPage:
    """Store one page and, in the same (the caller's) transaction, move the window's checkpoint.

    `checkpoint` holds the new cursor/search_id/status; pages and videos are counted up here.
    """
    videos, raws = unique_by_id(videos, raws)
    seen_at = utcnow()
    new_videos = upsert_videos(session, videos, raws, seen_at)
    new_sightings = record_sightings(session, videos, sighting_at)
    add_members(session, campaign_id, window_id, [v.id for v in videos], seen_at)
    if checkpoint is not None:
        values = dict(checkpoint)
        values["videos"] = CollectionWindow.videos + new_sightings
        values["pages"] = CollectionWindow.pages + 1
        checkpoint_window(session, window_id, **values)
    return StoredPage(videos=len(videos), new_videos=new_videos, new_sightings=new_sightings)
