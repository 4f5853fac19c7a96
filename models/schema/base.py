"""What every table shares: the declarative base and its naming convention, column types that
behave the same on Postgres and SQLite (UTC times, 64-bit ids, JSON), and the status
vocabularies."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    Integer,
    MetaData,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

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


class FrameStatus(enum.StrEnum):
    ok = "ok"
    failed = "failed"


class CommentStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    done = "done"  # paged to the end, or to the API's 1,000
    quota_exhausted = "quota_exhausted"  # checkpointed; resumes after 00:00 UTC
    failed = "failed"  # checkpoint kept: the next run resumes from its cursor
