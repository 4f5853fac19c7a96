"""What runs the project: watchlist alerts, prune records, work claims, the database's identity,
and validation samples, codes and scores."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gettok.models.schema.base import (
    Base,
    utcnow,
)


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


class StageWatermark(Base):
    """How far a stage's work for one campaign and one settings fingerprint is known settled.

    Every input that became ready for the stage (collected, downloaded) at or before `mark` has
    its outcome row, so a daily start looks only at inputs ready after it (`gettok.watermarks`);
    `walked_at` is the last pass that looked at every member, the check that nothing slipped.
    """

    __tablename__ = "stage_watermarks"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    mark: Mapped[datetime]
    walked_at: Mapped[datetime]


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
