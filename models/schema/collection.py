"""What the Research API gave us: campaigns and their windows, videos and their engagement over
time, the request ledger, refused records, comments, users and batch compliance tasks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gettok.models.schema.base import (
    Base,
    BigId,
    CommentStatus,
    RawJSON,
    WindowStatus,
    _enum,
    utcnow,
)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text, default="")
    query: Mapped[dict[str, Any]]
    query_hash: Mapped[str] = mapped_column(String(32))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    region_codes: Mapped[list[Any]]
    language: Mapped[str | None] = mapped_column(String(8))
    stance_target: Mapped[str | None] = mapped_column(Text)
    stance_labels: Mapped[list[Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CollectionWindow(Base):
    """One date window of a campaign's query, paged to the end: the unit of resumable collection."""

    __tablename__ = "collection_windows"
    __table_args__ = (UniqueConstraint("campaign_id", "query_hash", "window_start", "window_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    query_hash: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[date] = mapped_column(Date)  # inclusive, UTC
    window_end: Mapped[date] = mapped_column(Date)  # inclusive, UTC
    status: Mapped[WindowStatus] = mapped_column(
        _enum(WindowStatus, "window_status"), default=WindowStatus.pending
    )
    cursor: Mapped[int | None] = mapped_column(Integer)
    search_id: Mapped[str | None] = mapped_column(String(64))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    videos: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Video(Base):
    """A video as the Research API last described it, with its raw payload."""

    __tablename__ = "videos"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(Text)
    video_description: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime | None] = mapped_column(index=True)
    region_code: Mapped[str | None] = mapped_column(String(8))
    view_count: Mapped[int | None] = mapped_column(BigInteger)
    like_count: Mapped[int | None] = mapped_column(BigInteger)
    comment_count: Mapped[int | None] = mapped_column(BigInteger)
    share_count: Mapped[int | None] = mapped_column(BigInteger)
    favorites_count: Mapped[int | None] = mapped_column(BigInteger)
    music_id: Mapped[int | None] = mapped_column(BigInteger)
    hashtag_names: Mapped[list[Any] | None]
    effect_ids: Mapped[list[Any] | None]
    playlist_id: Mapped[int | None] = mapped_column(BigInteger)
    voice_to_text: Mapped[str | None] = mapped_column(Text)
    is_stem_verified: Mapped[bool | None] = mapped_column(Boolean)
    video_duration: Mapped[int | None] = mapped_column(Integer)
    hashtag_info_list: Mapped[list[Any] | None]
    sticker_info_list: Mapped[list[Any] | None]
    effect_info_list: Mapped[list[Any] | None]
    video_mention_list: Mapped[list[Any] | None]
    video_label: Mapped[dict[str, Any] | None]
    video_tag: Mapped[dict[str, Any] | None]  # any JSON value the API sends
    extra_fields: Mapped[dict[str, Any] | None]
    raw: Mapped[dict[str, Any]] = mapped_column(RawJSON)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Indexed: the TikTok transcript copy reads the videos seen again since its watermark.
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Compliance: set when a re-check found the video no longer public and its media was pruned.
    pruned_at: Mapped[datetime | None]
    pruned_reason: Mapped[str | None] = mapped_column(String(32))
    # When a compliance check last found it public: the next check is due 15 days later.
    compliance_checked_at: Mapped[datetime | None]
    # What that check saw: public (its page), available (batch compliance), age_restricted.
    compliance_status: Mapped[str | None] = mapped_column(String(32))


class CampaignVideo(Base):
    __tablename__ = "campaign_videos"
    # Download pages walk the members in the order they were first seen (migration 0014).
    __table_args__ = (
        Index("ix_campaign_videos_first_seen", "campaign_id", "first_seen_at", "video_id"),
    )

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    video_id: Mapped[int] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True
    )
    window_id: Mapped[int | None] = mapped_column(
        ForeignKey("collection_windows.id", ondelete="SET NULL")
    )
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class EngagementSnapshot(Base):
    """Counts at one sighting; re-collection builds a time series per video."""

    __tablename__ = "engagement_snapshots"
    __table_args__ = (UniqueConstraint("video_id", "collected_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    collected_at: Mapped[datetime]
    view_count: Mapped[int | None] = mapped_column(BigInteger)
    like_count: Mapped[int | None] = mapped_column(BigInteger)
    comment_count: Mapped[int | None] = mapped_column(BigInteger)
    share_count: Mapped[int | None] = mapped_column(BigInteger)
    favorites_count: Mapped[int | None] = mapped_column(BigInteger)


class ApiRequest(Base):
    """One request to the Research API, for the daily quota (which 500s count against too)."""

    __tablename__ = "api_requests"
    __table_args__ = (Index("ix_api_requests_day", "day"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date)  # UTC day the request counts against
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    endpoint: Mapped[str] = mapped_column(String(64))
    window_id: Mapped[int | None] = mapped_column(
        ForeignKey("collection_windows.id", ondelete="SET NULL")
    )
    status_code: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64))
    videos: Mapped[int] = mapped_column(Integer, default=0)


class RejectedRecord(Base):
    """An API record that could not be stored as a video (e.g. an id beyond 64 bits): kept."""

    __tablename__ = "rejected_records"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    window_id: Mapped[int | None] = mapped_column(
        ForeignKey("collection_windows.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(String(64))  # e.g. "video_query"
    raw: Mapped[dict[str, Any]] = mapped_column(RawJSON)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Comment(Base):
    """A comment (or reply) as the Research API last described it, with its raw payload."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    # Top-level comments name the video here (as the API sends them); replies name their comment.
    parent_comment_id: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str | None] = mapped_column(Text)
    like_count: Mapped[int | None] = mapped_column(BigInteger)
    reply_count: Mapped[int | None] = mapped_column(BigInteger)
    create_time: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime | None]
    extra_fields: Mapped[dict[str, Any] | None]
    raw: Mapped[dict[str, Any]] = mapped_column(RawJSON)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When batch compliance last said it is still available: due again 15 days later.
    compliance_checked_at: Mapped[datetime | None]


class CommentCheckpoint(Base):
    """How far a video's comments were paged: the unit of resumable comment collection."""

    __tablename__ = "comment_checkpoints"

    video_id: Mapped[int] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[CommentStatus] = mapped_column(
        _enum(CommentStatus, "comment_status"), default=CommentStatus.pending
    )
    cursor: Mapped[int | None] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    comments: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TikTokUser(Base):
    """What user info said about an author, when; `status` says why a user has no details."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # ok | not_found | refused | private
    display_name: Mapped[str | None] = mapped_column(Text)
    bio_description: Mapped[str | None] = mapped_column(Text)
    avatar_url: Mapped[str | None] = mapped_column(Text)
    bio_url: Mapped[str | None] = mapped_column(Text)
    is_verified: Mapped[bool | None] = mapped_column(Boolean)
    follower_count: Mapped[int | None] = mapped_column(BigInteger)
    following_count: Mapped[int | None] = mapped_column(BigInteger)
    likes_count: Mapped[int | None] = mapped_column(BigInteger)
    video_count: Mapped[int | None] = mapped_column(BigInteger)
    extra_fields: Mapped[dict[str, Any] | None]
    raw: Mapped[dict[str, Any] | None] = mapped_column(RawJSON)
    reason: Mapped[str | None] = mapped_column(Text)  # the API's words for a non-ok status
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class ComplianceTask(Base):
    """One batch compliance task: the ids sent, the API's task id, and where it stands.

    The row (with its ids) is written before the task is created and the task id right after,
    so a run killed at any point leaves either a task the next run polls or a row it re-sends.
    """

    __tablename__ = "compliance_tasks"
    __table_args__ = (Index("ix_compliance_tasks_state", "state"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(16))  # video | comment
    task_id: Mapped[str | None] = mapped_column(String(40))  # documented ids exceed 64 bits
    item_ids: Mapped[list[Any]]  # as text: ids exceed 2^53
    # creating | processing | applied | failed | expired
    state: Mapped[str] = mapped_column(String(16))
    available: Mapped[int] = mapped_column(Integer, default=0)
    unavailable: Mapped[int] = mapped_column(Integer, default=0)
    undecided: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
