"""The database schema (SQLAlchemy 2, typed). The same tables run on Postgres and SQLite.

Ids from TikTok are BIGINT; times are stored as UTC; status columns take a fixed vocabulary.
Alembic migrations in `gettok/migrations/` create exactly these tables.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on Postgres for querying; plain JSON elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# Raw payloads keep NUL escapes exactly as sent: Postgres `json` accepts \u0000, `jsonb` does not.
RawJSON = JSON()
BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite INTEGER is 64-bit already


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on databases with and without time zones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class WindowStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    split = "split"  # persistent 500s: replaced by smaller windows
    quota_exhausted = "quota_exhausted"  # checkpointed; resumes after 00:00 UTC
    failed = "failed"


class DownloadStatus(enum.StrEnum):
    ok = "ok"
    private = "private"
    removed = "removed"
    slideshow = "slideshow"
    invalid = "invalid"
    transient = "transient"
    blocked = "blocked"
    age_restricted = "age_restricted"  # isContentClassified: no media without a login
    unreachable = "unreachable"  # failed the same way on many runs over days: asked no more
    unavailable = "unavailable"  # batch compliance: no longer available (private or removed)


class AnnotationKind(enum.StrEnum):
    description = "description"
    onscreen_text = "onscreen_text"
    stance = "stance"
    sentiment = "sentiment"
    summary = "summary"
    summary_check = "summary_check"  # does the transcript entail the summary? (NLI)
    watch_match = "watch_match"


class AnnotationStatus(enum.StrEnum):
    ok = "ok"
    refused = "refused"
    invalid = "invalid"  # output failed validation after the corrective retry
    failed = "failed"


def _enum(e: type[enum.Enum], name: str) -> Enum:
    return Enum(
        e, name=name, native_enum=False, length=32, values_callable=lambda x: [m.value for m in x]
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


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
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Compliance: set when a re-check found the video no longer public and its media was pruned.
    pruned_at: Mapped[datetime | None]
    pruned_reason: Mapped[str | None] = mapped_column(String(32))
    # When a compliance check last found it public: the next check is due 15 days later.
    compliance_checked_at: Mapped[datetime | None]
    # What that check saw: public (its page), available (batch compliance), age_restricted.
    compliance_status: Mapped[str | None] = mapped_column(String(32))


class CampaignVideo(Base):
    __tablename__ = "campaign_videos"

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


class Download(Base):
    __tablename__ = "downloads"

    video_id: Mapped[int] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[DownloadStatus] = mapped_column(
        _enum(DownloadStatus, "download_status"), index=True
    )
    path: Mapped[str | None] = mapped_column(Text)  # relative to the media directory
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    is_slideshow: Mapped[bool] = mapped_column(Boolean, default=False)
    image_paths: Mapped[list[Any] | None]
    audio_path: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    # The same failure run after run: its kind, since when, and on how many runs (-> unreachable).
    failure_kind: Mapped[str | None] = mapped_column(String(64))
    failing_since: Mapped[datetime | None]
    failed_runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MediaInfo(Base):
    __tablename__ = "media_info"

    video_id: Mapped[int] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True
    )
    duration_s: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float)
    frame_count: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    has_audio: Mapped[bool | None] = mapped_column(Boolean)
    video_codec: Mapped[str | None] = mapped_column(String(32))
    audio_codec: Mapped[str | None] = mapped_column(String(32))
    probed_at: Mapped[datetime] = mapped_column(default=utcnow)


def _text_sha256(context) -> str | None:
    text = context.get_current_parameters().get("text")
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


class Transcript(Base):
    """One transcript per video, engine, model and settings (Whisper's or TikTok's own)."""

    __tablename__ = "transcripts"
    __table_args__ = (UniqueConstraint("video_id", "engine", "model", "settings_hash"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    engine: Mapped[str] = mapped_column(String(32))  # "faster-whisper" or "tiktok"
    model: Mapped[str] = mapped_column(String(256))
    settings: Mapped[dict[str, Any]]
    settings_hash: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | failed
    error: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))  # the language it was made in
    language_probability: Mapped[float | None] = mapped_column(Float)  # of detected_language
    detected_language: Mapped[str | None] = mapped_column(String(8))  # Whisper's detection
    # What decided `language`: detected, hint (detection unsure), forced, model (English-only).
    language_source: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    # Annotations and comparisons name the text by it; filled from `text` on insert.
    text_sha256: Mapped[str | None] = mapped_column(String(64), default=_text_sha256)
    segments: Mapped[list[Any] | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    is_empty: Mapped[bool] = mapped_column(
        Boolean, default=False
    )  # empty / music-only: kept, flagged
    # The video's transcript of this engine that annotations read (older ones: history). A new
    # row is current; the transcribe stage demotes the older ones (and never promotes a failure).
    is_current: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TextLanguage(Base):
    """The language of a caption or transcript by a text identifier (fastText lid.176), beside
    Whisper's audio detection; one row per video, source and text version (its hash) and model:
    a transcript's row is found by its engine and `text_sha256`."""

    __tablename__ = "text_languages"
    __table_args__ = (UniqueConstraint("video_id", "source", "text_sha256", "model"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(32))  # caption, or the transcript's engine
    text_sha256: Mapped[str] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))  # None: no letters to judge
    score: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TranscriptComparison(Base):
    """Whisper's transcript against TikTok's for one video, computed once per pair of text
    versions and embedding model; reports read aggregates of these rows."""

    __tablename__ = "transcript_comparisons"
    __table_args__ = (
        UniqueConstraint(
            "whisper_transcript_id",
            "tiktok_transcript_id",
            "whisper_sha256",
            "tiktok_sha256",
            "embedding_model",
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    whisper_transcript_id: Mapped[int] = mapped_column(
        ForeignKey("transcripts.id", ondelete="CASCADE"), index=True
    )
    tiktok_transcript_id: Mapped[int] = mapped_column(
        ForeignKey("transcripts.id", ondelete="CASCADE"), index=True
    )
    whisper_sha256: Mapped[str] = mapped_column(String(64))
    tiktok_sha256: Mapped[str] = mapped_column(String(64))
    embedding_model: Mapped[str] = mapped_column(String(256))
    cosine: Mapped[float | None] = mapped_column(Float)  # None: a transcript without words
    jaccard: Mapped[float] = mapped_column(Float)
    whisper_words: Mapped[int] = mapped_column(Integer)
    tiktok_words: Mapped[int] = mapped_column(Integer)
    # Word-level differences by kind (compare_transcripts.PairDifferences), summed by reports.
    capitalisation: Mapped[int] = mapped_column(Integer)
    punctuation: Mapped[int] = mapped_column(Integer)
    spelling: Mapped[int] = mapped_column(Integer)
    substituted: Mapped[int] = mapped_column(Integer)
    only_in_whisper: Mapped[int] = mapped_column(Integer)
    only_in_tiktok: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Frame(Base):
    __tablename__ = "frames"
    __table_args__ = (UniqueConstraint("video_id", "frame_index"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    frame_index: Mapped[int] = mapped_column(Integer)  # slideshow: image number
    timestamp_s: Mapped[float | None] = mapped_column(Float)
    path: Mapped[str] = mapped_column(Text)  # relative to the media directory
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16), default="video")  # video | slideshow
    settings: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FrameStatus(enum.StrEnum):
    ok = "ok"
    failed = "failed"


class FrameExtraction(Base):
    """The frames stage's outcome for one video: its frames were kept, or why none could be.

    A failure stands for these settings until the download changes (a new file) or the settings
    do; the `downloads` row keeps only what the download stage knows.
    """

    __tablename__ = "frame_extractions"

    video_id: Mapped[int] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[FrameStatus] = mapped_column(_enum(FrameStatus, "frame_status"), index=True)
    reason: Mapped[str | None] = mapped_column(String(32))  # not_mp4, truncated, missing, ...
    detail: Mapped[str | None] = mapped_column(Text)
    frames: Mapped[int] = mapped_column(Integer, default=0)
    settings_hash: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Annotation(Base):
    """A derived label or text, with the provenance that made it."""

    __tablename__ = "annotations"
    __table_args__ = (UniqueConstraint("video_id", "kind", "model", "prompt_hash", "inputs_key"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    kind: Mapped[AnnotationKind] = mapped_column(_enum(AnnotationKind, "annotation_kind"))
    status: Mapped[AnnotationStatus] = mapped_column(
        _enum(AnnotationStatus, "annotation_status"), default=AnnotationStatus.ok
    )
    value: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(256))
    prompt_id: Mapped[str] = mapped_column(String(64))
    prompt_hash: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any] | None]
    temperature: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    # Runs that asked for this row: an `invalid` one is asked again until `llm_invalid_max_tries`.
    tries: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    is_sandbox: Mapped[bool] = mapped_column(Boolean, default=False)
    # Indexed: deleting a frame sets this to NULL, which without an index scans every annotation.
    frame_id: Mapped[int | None] = mapped_column(
        ForeignKey("frames.id", ondelete="SET NULL"), index=True
    )
    # The provenance chain: the transcript (id, text hash) and frames this was made from. When
    # the video's current transcript or frames change, the row is stale (kept, not exported).
    transcript_id: Mapped[int | None] = mapped_column(BigInteger)
    transcript_sha256: Mapped[str | None] = mapped_column(String(64))
    first_frame_id: Mapped[int | None] = mapped_column(BigInteger)  # lowest frame id it read
    inputs_key: Mapped[str] = mapped_column(String(64), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WatchAlert(Base):
    """One alert for one (campaign, target, video): what makes a match alert once, not per run.

    Claimed before any channel is tried and marked `sent_at` after, so a run killed in between
    sends again on the next run (at least once) and a finished one never does; the daily digest
    lists what it has not listed yet (`digest_sent_at`).
    """

    __tablename__ = "watch_alerts"
    __table_args__ = (UniqueConstraint("campaign", "target", "video_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    campaign: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(64))
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    timestamp_s: Mapped[float | None] = mapped_column(Float)  # time in the video
    score: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]]
    channels: Mapped[dict[str, Any] | None]  # outcome per channel: event, webhook, email
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    digest_sent_at: Mapped[datetime | None]


class PruneRecord(Base):
    """What a compliance run removed, and why (the API terms require deleting non-public data)."""

    __tablename__ = "prune_records"
    __table_args__ = (Index("ix_prune_records_video_id", "video_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    video_id: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    removed_paths: Mapped[list[Any]]
    pruned_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Rows go first, files second: NULL while the files may still be on disk ("pruning"), set
    # once they are gone; the next run finishes a record left NULL by a killed one.
    files_removed_at: Mapped[datetime | None]


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


class WorkClaim(Base):
    """A lease on one video for one stage, so workers on several machines never do it twice.

    Claimed with INSERT … ON CONFLICT DO NOTHING (atomic on Postgres and SQLite); a lease that
    expires (its worker was killed) can be taken over.
    """

    __tablename__ = "work_claims"

    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    video_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    worker: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class DatabaseIdentity(Base):
    """One random id per database, made by the first migration.

    Prefect caches key on it, so a recreated database (same URL, new file) never inherits the
    cached "done" of the old one: the database, not the cache, is the source of truth.
    """

    __tablename__ = "database_identity"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ValidationSample(Base):
    """A seeded random sample of one annotation kind, drawn for people to code (issue 17).

    The seed, stratification and labels are kept so that the same sample can be drawn again and
    its sheets checked against the labels the coders were given.
    """

    __tablename__ = "validation_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # stance, sentiment, summary_check, description
    n: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    stratify: Mapped[str | None] = mapped_column(String(16))  # label | day
    labels: Mapped[list[Any]]  # the codes a coder may give, in the order shown
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ValidationItem(Base):
    """One sampled video and the annotation (model + prompt version) its codes are scored on."""

    __tablename__ = "validation_items"
    __table_args__ = (UniqueConstraint("sample_id", "video_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(
        ForeignKey("validation_samples.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # order on the sheet and the coding page
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"))
    stratum: Mapped[str | None] = mapped_column(String(64))


class ValidationCode(Base):
    """What one coder said about one sampled video; the last answer counts (one row per coder)."""

    __tablename__ = "validation_codes"
    __table_args__ = (UniqueConstraint("item_id", "coder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("validation_items.id", ondelete="CASCADE"))
    coder: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(64))  # None: skipped or not coded yet
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(256))  # "page" or the sheet's file name
    coded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ValidationScore(Base):
    """The agreement figures of one scoring of a sample, as printed (kept for the paper trail)."""

    __tablename__ = "validation_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(
        ForeignKey("validation_samples.id", ondelete="CASCADE"), index=True
    )
    n: Mapped[int] = mapped_column(Integer)
    figures: Mapped[dict[str, Any]]
    scored_at: Mapped[datetime] = mapped_column(default=utcnow)


class CommentStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    done = "done"  # paged to the end, or to the API's 1,000
    quota_exhausted = "quota_exhausted"  # checkpointed; resumes after 00:00 UTC
    failed = "failed"  # checkpoint kept: the next run resumes from its cursor


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
