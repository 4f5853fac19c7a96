"""Every query of the watch stage: which videos a target has not been checked against yet, and the
one `watch_match` annotation that records each check.

A video counts as checked for a target when it has a `watch_match` annotation with the target's
matcher (`model`) and fingerprint (`prompt_hash`); changing the target or its settings changes the
fingerprint, so every video is checked again. Unchecked videos are read a page at a time in id
order (keyset pagination, a range of ids per query), so memory stays flat however large the
campaign, no query carries an unbounded id list and a page costs the same however many videos
come before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from gettok import watermarks
from gettok.db import session_scope
from gettok.keyset import id_bounds, inner_bounds
from gettok.membership import campaign_videos
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    Download,
    DownloadStatus,
    Frame,
    FrameExtraction,
    Video,
    utcnow,
)

PAGE = 2000  # videos per query
STAGE = "watch"


@dataclass(frozen=True)
class StoredFrame:
    id: int
    video_id: int
    frame_index: int
    timestamp_s: float | None
    path: str


# A query over videos, for the ids in (after, until] of the campaign (None: of any campaign):
# each table it reads is bounded to them.
RangeQuery = Callable[[int | None, int | None, int | None], Select]


def _unchecked(
    query: Select,
    campaign_id: int | None,
    model: str,
    prompt_hash: str,
    after: int | None,
    until: int | None,
) -> Select:
    """`query` (over videos) narrowed to unpruned videos in (after, until] not yet checked for
    this target."""
    checked = exists().where(
        Annotation.video_id == Video.id,
        Annotation.kind == AnnotationKind.watch_match,
        Annotation.model == model,
        Annotation.prompt_hash == prompt_hash,
        *inner_bounds(after, until, Annotation.video_id),
    )
    query = query.where(Video.pruned_at.is_(None), ~checked, *id_bounds(after, until, Video.id))
    if campaign_id is not None:
        query = query.where(Video.id.in_(campaign_videos(campaign_id, after=after, until=until)))
    return query


def _pages(
    url: str,
    query: RangeQuery,
    campaign_id: int | None,
    limit: int | None,
    page: int,
    target: tuple[str, str],
    ready: tuple[Any, Any],
) -> Iterator[list[Any]]:
    """The rows of `query` (its first column a video id) in id order, `page` videos at a time,
    the campaign's ids looked at a range at a time (`in_id_ranges`); past the target's
    watermark, only among the members that joined or whose `ready` input (video id and time
    columns) changed since. The mark moves when the caller has read every row."""

    def between(after: int | None, until: int, n: int) -> list[Any]:
        with session_scope(url) as session:
            rows = query(after, until, campaign_id).order_by(Video.id).limit(n)
            return list(session.execute(rows).all())

    def among(ids: list[int], n: int) -> list[Any]:  # members already: no campaign to join
        with session_scope(url) as session:
            rows = query(None, None, None).where(Video.id.in_(ids)).order_by(Video.id).limit(n)
            return list(session.execute(rows).all())

    def still_pending(ids: list[int]) -> list[int]:
        return [row[0] for row in among(ids, len(ids))]

    fingerprint = watermarks.fingerprint(*target)
    sweep = watermarks.begin(url, campaign_id, STAGE, fingerprint)
    pages = watermarks.downstream_pages(
        url,
        sweep,
        campaign_id,
        between,
        among,
        page,
        limit,
        key=lambda row: row[0],
        ready=lambda sweep: watermarks.ready_since(url, sweep.campaign_id, sweep.since, *ready),
    )
    yield from pages
    watermarks.finish_downstream(sweep, pages, still_pending, ready)


def unchecked_frames(
    url: str,
    campaign_id: int | None,
    model: str,
    prompt_hash: str,
    limit: int | None = None,
    page: int = PAGE,
) -> Iterator[tuple[int, list[StoredFrame]]]:
    """(video id, its frames in order) for each video with frames not yet checked for this
    target, in id order."""

    def videos(after: int | None, until: int | None, campaign: int | None) -> Select:
        framed = exists().where(
            Frame.video_id == Video.id, *inner_bounds(after, until, Frame.video_id)
        )
        return _unchecked(
            select(Video.id).where(framed), campaign, model, prompt_hash, after, until
        )

    framed_at = (FrameExtraction.video_id, FrameExtraction.recorded_at)
    for rows in _pages(url, videos, campaign_id, limit, page, (model, prompt_hash), framed_at):
        ids = [row[0] for row in rows]
        frames: dict[int, list[StoredFrame]] = {video_id: [] for video_id in ids}
        with session_scope(url) as session:
            stored = session.execute(
                select(Frame.id, Frame.video_id, Frame.frame_index, Frame.timestamp_s, Frame.path)
                .where(Frame.video_id.in_(ids))  # one page: at most PAGE ids
                .order_by(Frame.video_id, Frame.frame_index)
            ).all()
        for row in stored:
            frames[row.video_id].append(StoredFrame(*row))
        yield from frames.items()


def unchecked_downloads(
    url: str,
    campaign_id: int | None,
    model: str,
    prompt_hash: str,
    limit: int | None = None,
    page: int = PAGE,
) -> Iterator[tuple[int, str | None, list[str]]]:
    """(video id, mp4 path, photo paths) of each downloaded video (or slideshow) not yet checked
    for this target, in id order."""

    def downloads(after: int | None, until: int | None, campaign: int | None) -> Select:
        query = (
            select(Video.id, Download.path, Download.image_paths)
            .join(Download, Download.video_id == Video.id)
            .where(
                Download.status.in_([DownloadStatus.ok, DownloadStatus.slideshow]),
                *id_bounds(after, until, Download.video_id),
            )
        )
        return _unchecked(query, campaign, model, prompt_hash, after, until)

    downloaded_at = (Download.video_id, Download.updated_at)
    target = (model, prompt_hash)
    for rows in _pages(url, downloads, campaign_id, limit, page, target, downloaded_at):
        yield from ((video_id, path, list(images or [])) for video_id, path, images in rows)


def watch_annotation(
    video_id: int,
    value: dict[str, Any],
    *,
    model: str,
    prompt_id: str,
    prompt_hash: str,
    settings: dict[str, Any],
    frame_id: int | None = None,
    status: AnnotationStatus = AnnotationStatus.ok,
    error: str | None = None,
    **usage: Any,
) -> Annotation:
    """The `watch_match` row of one check, with its matcher, target fingerprint and settings
    (`usage`: an LLM's tokens, cost, latency and sandbox flag; a local matcher costs nothing)."""
    return Annotation(
        video_id=video_id,
        kind=AnnotationKind.watch_match,
        status=status,
        error=error,
        value=value,
        model=model,
        prompt_id=prompt_id[:64],
        prompt_hash=prompt_hash,
        settings=settings,
        frame_id=frame_id,
        created_at=utcnow(),
        **({"cost_usd": 0.0} | usage),
    )


def store_outcome(url: str, row: Annotation) -> bool:
    """Insert one outcome; False if a concurrent run stored it first."""
    try:
        with session_scope(url) as session:
            session.add(row)
        return True
    except IntegrityError:
        return False
