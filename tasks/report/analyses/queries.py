"""The analyses' reads: SQL aggregates where SQL can say it, else rows streamed in batches.

Nothing here holds a campaign's rows at once: a 100,000-video campaign is read `BATCH` rows at a
time (a server-side cursor on Postgres), and samples are the videos first in a seeded order of
their ids, read from the database without streaming the campaign's texts.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from itertools import islice
from typing import Any

from sqlalchemy import Select, case, func, select, tuple_
from sqlalchemy.orm import Session

from gettok.membership import campaign_videos
from gettok.models.schema import Annotation, AnnotationKind, AnnotationStatus, Transcript, Video

BATCH = 5000
ENGAGEMENT = ("views", "likes", "comments", "shares")


def utc_day(session: Session):
    """The UTC posting day of a video as SQL (Postgres stores aware times; SQLite UTC text)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", Video.created_at))
    return func.date(Video.created_at)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def in_campaign(campaign: str):
    return Video.id.in_(campaign_videos(campaign))


def campaign_extent(session: Session, campaign: str) -> tuple[int, date | None, date | None]:
    """How many videos the campaign has, and its first and last UTC posting days."""
    day = utc_day(session)
    n, first, last = session.execute(
        select(func.count(), func.min(day), func.max(day)).where(in_campaign(campaign))
    ).one()
    return int(n), (as_date(first) if first else None), (as_date(last) if last else None)


def pruned_videos(session: Session, campaign: str) -> int:
    """The campaign's videos that compliance pruned (the analyses leave them out)."""
    mine = Video.id.in_(campaign_videos(campaign, with_pruned=True))
    query = select(func.count()).where(mine, Video.pruned_at.is_not(None))
    return int(session.execute(query).scalar_one())


def daily_engagement(session: Session, campaign: str) -> list[dict[str, Any]]:
    """Per UTC day: videos and summed views, likes, comments and shares (one GROUP BY)."""
    day = utc_day(session).label("day")
    rows = session.execute(
        select(
            day,
            func.count(),
            *(func.coalesce(func.sum(getattr(Video, f"{m[:-1]}_count")), 0) for m in ENGAGEMENT),
        )
        .where(in_campaign(campaign), Video.created_at.is_not(None))
        .group_by(day)
        .order_by(day)
    ).all()
    return [
        {"day": as_date(r[0]), "videos": int(r[1])}
        | {m: int(v) for m, v in zip(ENGAGEMENT, r[2:], strict=True)}
        for r in rows
    ]


def stream(session: Session, query: Select, size: int = BATCH) -> Iterator[Any]:
    """Rows of `query`, fetched `size` at a time (a server-side cursor on Postgres)."""
    result = session.execute(query.execution_options(yield_per=size))
    for partition in result.partitions(size):
        yield from partition


def best_text():
    """The video's best transcript text (Whisper before TikTok, newest first), as a subquery."""
    return (
        select(Transcript.text)
        .where(
            Transcript.video_id == Video.id,
            Transcript.status == "ok",
            Transcript.is_empty.is_(False),
            Transcript.text.is_not(None),
            Transcript.text != "",
        )
        .order_by(
            case((Transcript.engine == "faster-whisper", 0), else_=1),
            Transcript.created_at.desc(),
            Transcript.id.desc(),
        )
        .limit(1)
        .correlate(Video)
        .scalar_subquery()
    )


def video_texts(
    session: Session, campaign: str | None, *where: Any
) -> Iterator[tuple[int, date | None, str, str]]:
    """(video id, day, speech, caption) of every video (of the campaign, and passing `where`)
    in id order; speech falls back to TikTok's `voice_to_text`, then to "" (music-only videos:
    the caption stands in)."""
    day = utc_day(session)
    speech = func.coalesce(best_text(), Video.voice_to_text, "")
    mine = [in_campaign(campaign)] if campaign is not None else []
    query = (
        select(Video.id, day, speech, func.coalesce(Video.video_description, ""))
        .where(*mine, *where)
        .order_by(Video.id)
    )
    for vid, d, text, caption in stream(session, query):
        yield vid, (as_date(d) if d else None), text or "", caption or ""


def texts_of(session: Session, ids: list[int]) -> list[tuple[int, date | None, str, str]]:
    """`video_texts` of the videos `ids` (a bounded list), in id order."""
    rows = []
    for start in range(0, len(ids), 1000):
        rows += video_texts(session, None, Video.id.in_(ids[start : start + 1000]))
    return sorted(rows)


# The seeded order of a sample: a multiplicative hash of the id modulo a prime (2^31 - 1, so
# the product stays inside 64 bits on Postgres and SQLite alike).
HASH_PRIME = 2_147_483_647
SAMPLE_READ = 25_000  # ids read per step of a sample, in its seeded order


def sample_order(seed: int):
    """SQL: a video's place in the sample of `seed`. It depends on the video's id alone, so a
    campaign that grows keeps its sample but where a new video takes a place."""
    rng = random.Random(seed)
    a, b = rng.randrange(1, HASH_PRIME), rng.randrange(HASH_PRIME)
    return (Video.id % HASH_PRIME * a + b) % HASH_PRIME


def seeded_sample(session: Session, campaign: str, k: int, seed: int, keep) -> list[Any]:
    """The first `k` videos in the seeded order whose `video_texts` row passes `keep`, in id
    order: a pseudo-random sample, reproducible for a seed, that reads the texts of about `k`
    videos rather than the campaign's."""
    order = sample_order(seed).label("place")
    sample: list[Any] = []
    after = None
    while len(sample) < k:
        query = select(order, Video.id).where(in_campaign(campaign))
        if after is not None:
            query = query.where(tuple_(order, Video.id) > tuple_(*after))
        step = session.execute(query.order_by(order, Video.id).limit(SAMPLE_READ)).all()
        if not step:
            break
        after = tuple(step[-1])
        texts = {row[0]: row for row in texts_of(session, [vid for _, vid in step])}
        kept = (texts[vid] for _, vid in step if vid in texts and keep(texts[vid]))
        sample += list(islice(kept, k - len(sample)))
    return sorted(sample, key=lambda r: r[0])


def latest_labels(session: Session, kind: AnnotationKind, video_ids: list[int]) -> dict[int, Any]:
    """The newest ok annotation value of `kind` per video, for a bounded list of ids."""
    out: dict[int, Any] = {}
    for start in range(0, len(video_ids), 1000):
        chunk = video_ids[start : start + 1000]
        rows = session.execute(
            select(Annotation.video_id, Annotation.value)
            .where(
                Annotation.video_id.in_(chunk),
                Annotation.kind == kind,
                Annotation.status == AnnotationStatus.ok,
            )
            .order_by(Annotation.created_at, Annotation.id)
        )
        for vid, value in rows:
            out[vid] = value
    return out
