"""Storing what the Research API returned: videos, engagement snapshots, membership, checkpoints.

Everything is an upsert (INSERT ... ON CONFLICT, on Postgres and SQLite alike), so a page stored
twice (a rerun, a duplicate page, a resumed window) leaves the same rows. A page's videos and its
window's checkpoint are written in one transaction by `store_page`: a crash loses at most the page
in flight, never a page whose cursor was already saved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gettok.db import dialect_insert, session_scope, upsert_rows
from gettok.membership import campaign_videos
from gettok.models.api import ResearchVideo
from gettok.models.campaign import Campaign
from gettok.models.schema import Campaign as CampaignRow
from gettok.models.schema import (
    CampaignVideo,
    CollectionWindow,
    EngagementSnapshot,
    RejectedRecord,
    Video,
    WindowStatus,
    utcnow,
)
from gettok.tasks.collect.postgres_page import store_page_postgres
from gettok.tasks.collect.video_rows import (
    COUNT_COLUMNS,
    VIDEO_UPDATE_COLUMNS,
    unique_by_id,
    video_row,
)
from gettok.tasks.collect.windows import CollectionWindow as DateWindow


class StoredPage(BaseModel):
    """What one page added: videos new to the database and new sightings in this window pass."""

    videos: int
    new_videos: int
    new_sightings: int


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
    stmt = dialect_insert(session, CampaignRow).values(values)
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
    stmt = dialect_insert(session, CollectionWindow).values(
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


def window_started(session: Session, campaign_id: int, query_hash: str, window: DateWindow) -> bool:
    """Whether the window's row exists and is past `pending` (its checkpoint must be kept)."""
    status = session.scalar(
        select(CollectionWindow.status).where(
            CollectionWindow.campaign_id == campaign_id,
            CollectionWindow.query_hash == query_hash,
            CollectionWindow.window_start == window.start,
            CollectionWindow.window_end == window.end,
        )
    )
    return status is not None and status != WindowStatus.pending


def done_days(session: Session, campaign_id: int, query_hash: str, window: DateWindow) -> set[date]:
    """The window's days that `done` windows of the same query (any size) already collected."""
    rows = session.execute(
        select(CollectionWindow.window_start, CollectionWindow.window_end).where(
            CollectionWindow.campaign_id == campaign_id,
            CollectionWindow.query_hash == query_hash,
            CollectionWindow.status == WindowStatus.done,
            CollectionWindow.window_start <= window.end,
            CollectionWindow.window_end >= window.start,
        )
    )
    days = set(window.each_day())
    return {
        start + timedelta(days=i) for start, end in rows for i in range((end - start).days + 1)
    } & days


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
    upsert_rows(session, Video.__table__, rows, ["id"], VIDEO_UPDATE_COLUMNS)
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
    table = EngagementSnapshot.__table__
    return len(upsert_rows(session, table, rows, ["video_id", "collected_at"], (), "video_id"))


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
    upsert_rows(session, CampaignVideo.__table__, rows, ["campaign_id", "video_id"])


def checkpoint_window(session: Session, window_id: int, **values: Any) -> None:
    """Update a window's status, cursor, search_id, counters or error."""
    values["updated_at"] = utcnow()
    session.execute(update(CollectionWindow).where(CollectionWindow.id == window_id).values(values))


def keep_rejected(
    session: Session, window_id: int, raws: Sequence[dict[str, Any]], reasons: Sequence[str]
) -> int:
    """Keep the records a page sent that cannot be videos (an id beyond 64 bits, a float id...)
    with their reason, once per window even when a page is fetched again; returns how many."""
    if not raws:
        return 0
    known = {
        json.dumps(raw, sort_keys=True)
        for raw in session.scalars(
            select(RejectedRecord.raw).where(RejectedRecord.window_id == window_id)
        )
    }
    added = 0
    for raw, reason in zip(raws, reasons, strict=True):
        key = json.dumps(raw, sort_keys=True)
        if key not in known:
            known.add(key)
            session.add(
                RejectedRecord(window_id=window_id, source="video_query", raw=raw, reason=reason)
            )
            added += 1
    return added


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

    `checkpoint` holds the new cursor, search_id, requests...; pages and videos are counted here.
    """
    videos, raws = unique_by_id(videos, raws)
    seen_at = utcnow()
    if not videos:
        new_videos = new_sightings = 0
    elif session.get_bind().dialect.name == "postgresql":
        new_videos, new_sightings = store_page_postgres(
            session, campaign_id, window_id, videos, raws, seen_at, sighting_at, checkpoint
        )
        checkpoint = None  # moved by that same statement
    else:
        new_videos = upsert_videos(session, videos, raws, seen_at)
        new_sightings = record_sightings(session, videos, sighting_at)
        add_members(session, campaign_id, window_id, [v.id for v in videos], seen_at)
    if checkpoint is not None:
        values = dict(checkpoint)
        values["videos"] = CollectionWindow.videos + new_sightings
        values["pages"] = CollectionWindow.pages + 1
        checkpoint_window(session, window_id, **values)
    return StoredPage(videos=len(videos), new_videos=new_videos, new_sightings=new_sightings)


def daily_counts(database_url: str, campaign_name: str, start: date, end: date) -> dict[date, int]:
    """Videos of the campaign per UTC creation day in `start`..`end`, days with none included."""
    counts = {start + timedelta(days=i): 0 for i in range((end - start).days + 1)}
    low = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    high = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    with session_scope(database_url) as session:
        rows = session.scalars(
            select(Video.created_at).where(
                Video.id.in_(campaign_videos(campaign_name, with_pruned=True)),
                Video.created_at >= low,
                Video.created_at < high,
            )
        )
        for created_at in rows:
            counts[created_at.date()] += 1
    return counts
