"""What the stages derived from each video: its download and media facts, transcripts (and their
text languages and comparisons), frames and annotations, each with the settings that made it."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from gettok.models.schema.base import (
    AnnotationKind,
    AnnotationStatus,
    Base,
    DownloadStatus,
    FrameStatus,
    _enum,
    utcnow,
)


class Download(Base):
    __tablename__ = "downloads"
    # A daily start's downstream stages read what was downloaded since their watermark (0016).
    __table_args__ = (Index("ix_downloads_updated_at", "updated_at"),)

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
    __table_args__ = (
        UniqueConstraint("video_id", "engine", "model", "settings_hash"),
        # "Not yet transcribed with these settings" for a page of videos: without it the check
        # reads every transcript of the index to find none (see migration 0014).
        Index("ix_transcripts_settings_video", "engine", "model", "settings_hash", "video_id"),
        # What was transcribed since a stage's watermark (annotate; migration 0016).
        Index("ix_transcripts_created_at", "created_at"),
    )

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


class FrameExtraction(Base):
    """The frames stage's outcome for one video: its frames were kept, or why none could be.

    A failure stands for these settings until the download changes (a new file) or the settings
    do; the `downloads` row keeps only what the download stage knows.
    """

    __tablename__ = "frame_extractions"
    # What was framed since a stage's watermark (annotate, watch; migration 0016).
    __table_args__ = (Index("ix_frame_extractions_recorded_at", "recorded_at"),)

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
    __table_args__ = (
        UniqueConstraint("video_id", "kind", "model", "prompt_hash", "inputs_key"),
        # "Not yet annotated (or checked) by this plan" for a page of videos (migration 0014).
        Index("ix_annotations_plan_video", "kind", "model", "prompt_hash", "video_id"),
        # Answered since a stage's watermark; the few a later run asks again (migration 0016).
        Index("ix_annotations_created_at", "created_at"),
        Index("ix_annotations_status", "status"),
    )

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


class TopicFit(Base):
    """A campaign's fitted topic model, kept so that a daily report assigns only the videos that
    are new or changed since (`video_topics`) and its topics keep their numbers from one report
    to the next. Refitted when its settings change or the campaign has doubled."""

    __tablename__ = "topic_fits"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the settings that decide the fit
    provenance: Mapped[dict[str, Any]]
    members: Mapped[int] = mapped_column(Integer)  # the campaign's videos when it was fitted
    model: Mapped[bytes] = mapped_column(LargeBinary)  # the pickled scikit-learn model
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VideoTopic(Base):
    """A video's topic under one fit; read as current while the video was not seen again and no
    transcript was made for it after `assigned_at`."""

    __tablename__ = "video_topics"

    fit_id: Mapped[int] = mapped_column(
        ForeignKey("topic_fits.id", ondelete="CASCADE"), primary_key=True
    )
    # Indexed: deleting a video deletes its rows, which without an index scans them all.
    video_id: Mapped[int] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    topic: Mapped[int] = mapped_column(Integer)  # -1: the text has no counted word
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
