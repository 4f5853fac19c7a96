"""Every query of the comments stage: which videos, their checkpoints, comments and users.

A page's comments and its video's checkpoint are written in one transaction (`store_comments`),
so a kill -9 loses at most the page in flight, never a page whose cursor was saved. Comments are
upserts keyed by id: a page fetched twice, or a duplicate page, leaves the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gettok.db import dialect_insert, upsert_rows
from gettok.models.api import ResearchComment, ResearchUser, UserInfo
from gettok.models.schema import (
    CampaignVideo,
    Comment,
    CommentCheckpoint,
    TikTokUser,
    Video,
    utcnow,
)

COMMENT_COLUMNS = ("video_id", "parent_comment_id", "text", "like_count", "reply_count")
# A new sighting refreshes what the API says; first_seen_at is kept.
COMMENT_UPDATE_COLUMNS = (
    *COMMENT_COLUMNS,
    "create_time",
    "created_at",
    "extra_fields",
    "raw",
    "last_seen_at",
)
USER_COLUMNS = tuple(ResearchUser.model_fields)


def campaign_id(session: Session, name: str) -> int:
    """The campaign's id, or CampaignNotFound (nothing collected for it yet)."""
    from gettok.tasks.export.dataset import campaign_id as videos_campaign_id  # imports us

    return videos_campaign_id(session, name)


def chosen_videos(
    session: Session, campaign: str, top_n: int | None, video_ids: Sequence[int] = ()
) -> tuple[list[int], list[int]]:
    """(videos to page, videos of the campaign known to have no comments).

    All the campaign's videos, or its `top_n` by `comment_count` (ties by id), or the given ids
    (which must belong to the campaign). Pruned videos are left out: they are no longer public.
    """
    cid = campaign_id(session, campaign)
    query = (
        select(Video.id, Video.comment_count)
        .join(CampaignVideo, CampaignVideo.video_id == Video.id)
        .where(CampaignVideo.campaign_id == cid, Video.pruned_at.is_(None))
        .order_by(Video.comment_count.desc().nulls_last(), Video.id)
    )
    if video_ids:
        rows = session.execute(query.where(Video.id.in_(list(video_ids)))).all()
        unknown = sorted(set(video_ids) - {r.id for r in rows})
        if unknown:
            raise LookupError(
                f"not videos of campaign {campaign!r} (or pruned): {', '.join(map(str, unknown))}"
            )
        return [r.id for r in rows], []
    rows = session.execute(query).all()
    if top_n is not None:
        rows = rows[:top_n]
    return [r.id for r in rows if r.comment_count != 0], [
        r.id for r in rows if r.comment_count == 0
    ]


def open_checkpoint(session: Session, video_id: int) -> CommentCheckpoint:
    """The video's checkpoint, created as pending the first time its comments are asked for."""
    stmt = dialect_insert(session, CommentCheckpoint).values(
        video_id=video_id, status="pending", pages=0, comments=0, requests=0, updated_at=utcnow()
    )
    session.execute(stmt.on_conflict_do_nothing())
    return session.get(CommentCheckpoint, video_id, populate_existing=True)


def move_checkpoint(session: Session, video_id: int, **values: Any) -> None:
    values["updated_at"] = utcnow()
    session.execute(
        update(CommentCheckpoint).where(CommentCheckpoint.video_id == video_id).values(values)
    )


def comment_row(comment: ResearchComment, raw: dict[str, Any], seen_at: datetime) -> dict:
    row = {name: getattr(comment, name) for name in COMMENT_COLUMNS}
    created = comment.create_time
    row.update(
        id=comment.id,
        create_time=created,
        created_at=datetime.fromtimestamp(created, tz=seen_at.tzinfo) if created else None,
        extra_fields=dict(comment.model_extra or {}) or None,
        raw=raw,
        first_seen_at=seen_at,
        last_seen_at=seen_at,
    )
    return row


def store_comments(
    session: Session,
    video_id: int,
    comments: Sequence[ResearchComment],
    raws: Sequence[dict[str, Any]],
    checkpoint: dict[str, Any],
) -> int:
    """Upsert one page's comments and move the video's checkpoint; returns comments new here."""
    seen_at = utcnow()
    rows: dict[int, dict] = {}
    for comment, raw in zip(comments, raws, strict=True):
        rows.setdefault(comment.id, comment_row(comment, raw, seen_at))  # a page may repeat one
    new = 0
    if rows:
        known = session.scalar(
            select(func.count()).select_from(Comment).where(Comment.id.in_(list(rows)))
        )
        new = len(rows) - known
        upsert_rows(session, Comment.__table__, list(rows.values()), ["id"], COMMENT_UPDATE_COLUMNS)
    values = dict(checkpoint)
    values["pages"] = CommentCheckpoint.pages + 1
    values["comments"] = CommentCheckpoint.comments + new
    move_checkpoint(session, video_id, **values)
    return new


def checkpoint_counts(session: Session, video_ids: Sequence[int]) -> dict[str, int]:
    """How many of these videos' comment checkpoints are in each status."""
    rows = session.execute(
        select(CommentCheckpoint.status, func.count())
        .where(CommentCheckpoint.video_id.in_(list(video_ids)))
        .group_by(CommentCheckpoint.status)
    ).all()
    return {str(status): n for status, n in rows}


def campaign_authors(session: Session, campaign: str) -> list[str]:
    """The distinct usernames of the campaign's videos, sorted."""
    cid = campaign_id(session, campaign)
    return list(
        session.scalars(
            select(Video.username)
            .join(CampaignVideo, CampaignVideo.video_id == Video.id)
            .where(CampaignVideo.campaign_id == cid, Video.username.is_not(None))
            .distinct()
            .order_by(Video.username)
        )
    )


def fresh_users(session: Session, usernames: Sequence[str], since: datetime) -> set[str]:
    """Which of these users were asked about at or after `since` (the cache)."""
    return set(
        session.scalars(
            select(TikTokUser.username).where(
                TikTokUser.username.in_(list(usernames)), TikTokUser.fetched_at >= since
            )
        )
    )


def save_user(session: Session, info: UserInfo) -> None:
    """Insert or replace what user info said about one user, with the time it said it."""
    user = info.user
    row = {name: getattr(user, name) if user else None for name in USER_COLUMNS}
    row.update(
        username=info.username,
        status=info.status,
        extra_fields=(dict(user.model_extra or {}) or None) if user else None,
        raw=info.raw,
        reason=info.reason,
        fetched_at=utcnow(),
    )
    columns = [c for c in row if c != "username"]
    upsert_rows(session, TikTokUser.__table__, [row], ["username"], columns)


def campaign_comments(session: Session, campaign: str, *, public: bool) -> list[dict[str, Any]]:
    """The comments of the campaign's videos as plain dicts, by video then time; public
    exports leave out the comments of pruned videos (no longer public) and the raw payloads."""
    cid = campaign_id(session, campaign)
    in_campaign = select(CampaignVideo.video_id).where(CampaignVideo.campaign_id == cid)
    query = (
        select(Comment)
        .join(Video, Video.id == Comment.video_id)
        .where(Comment.video_id.in_(in_campaign))
        .order_by(Comment.video_id, Comment.create_time, Comment.id)
    )
    if public:
        query = query.where(Video.pruned_at.is_(None))
    return [
        {
            "comment_id": c.id,
            "video_id": c.video_id,
            "parent_comment_id": c.parent_comment_id,
            "is_reply": c.parent_comment_id not in (None, c.video_id),
            "text": c.text,
            "like_count": c.like_count,
            "reply_count": c.reply_count,
            "created_at": c.created_at,
            "first_seen_at": c.first_seen_at,
            "last_seen_at": c.last_seen_at,
            "raw": None if public else c.raw,
        }
        for c in session.scalars(query)
    ]
