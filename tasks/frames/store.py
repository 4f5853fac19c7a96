"""Every query of the frames stage: what is pending, and one `frame_extractions` row per video.

A video is pending while it has a usable download, no frames, and no failure recorded for these
settings since its download last changed. Its frames and its `ok` row are written in one
transaction, after all its files exist.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.exc import IntegrityError

from gettok import watermarks
from gettok.db import session_scope
from gettok.keyset import id_bounds, inner_bounds
from gettok.membership import campaign_videos
from gettok.models.schema import (
    Download,
    DownloadStatus,
    Frame,
    FrameExtraction,
    FrameStatus,
    Video,
    utcnow,
)


def settings_hash(recorded: dict) -> str:
    return hashlib.sha256(json.dumps(recorded, sort_keys=True).encode()).hexdigest()[:32]


def pending_videos(
    db_url: str,
    digest: str,
    campaign_name: str | None = None,
    video_ids: Iterable[int] | None = None,
    limit: int | None = 500,
    after: int | None = None,
    until: int | None = None,
) -> list[Download]:
    """Downloads with a usable video or slideshow, no frames yet, not pruned; oldest id first
    (ids in (after, until] only: keyset pages, see `pending_pages`)."""
    query = pending_query(digest, campaign_name, video_ids, after, until)
    with session_scope(db_url) as session:
        return list(session.scalars(query.order_by(Download.video_id).limit(limit)))


def pending_query(
    digest: str,
    campaign_name: str | None = None,
    video_ids: Iterable[int] | None = None,
    after: int | None = None,
    until: int | None = None,
) -> Select:
    """The SELECT of `pending_videos` (unordered), to count or group what is pending in SQL."""
    failed_here = exists().where(
        FrameExtraction.video_id == Download.video_id,
        *inner_bounds(after, until, FrameExtraction.video_id),
        FrameExtraction.status == FrameStatus.failed,
        FrameExtraction.settings_hash == digest,
        FrameExtraction.recorded_at >= Download.updated_at,
    )
    query = (
        select(Download)
        .join(Video, Video.id == Download.video_id)
        .where(
            Video.pruned_at.is_(None),
            or_(
                (Download.status == DownloadStatus.ok) & Download.path.is_not(None),
                Download.is_slideshow.is_(True),
            ),
            ~exists().where(
                Frame.video_id == Download.video_id, *inner_bounds(after, until, Frame.video_id)
            ),
            ~failed_here,
        )
    )
    if campaign_name is not None:
        members = campaign_videos(campaign_name, after=after, until=until)
        query = query.where(Download.video_id.in_(members))
    if video_ids is not None:
        query = query.where(Download.video_id.in_(list(video_ids)))
    return query.where(*id_bounds(after, until, Download.video_id, Video.id))


def pending_pages(
    db_url: str,
    digest: str,
    campaign_name: str | None,
    size: int,
    sweep: watermarks.Sweep | None = None,
) -> watermarks.SweepPages:
    """The ids `pending_videos` lists, `size` at a time, each page read when the previous one is
    done, the campaign's ids looked at a range at a time (`in_id_ranges`); past the stage's
    watermark, only among the members downloaded or collected since (`sweep`)."""

    def between(after: int | None, until: int, n: int) -> list[int]:
        rows = pending_videos(db_url, digest, campaign_name, limit=n, after=after, until=until)
        return [download.video_id for download in rows]

    def among(ids: list[int], n: int) -> list[int]:  # members already: no campaign to join
        return [d.video_id for d in pending_videos(db_url, digest, video_ids=ids, limit=n)]

    return watermarks.downstream_pages(db_url, sweep, campaign_name, between, among, size)


def still_pending(db_url: str, digest: str, video_ids: list[int]) -> list[int]:
    """Which of `video_ids` (a campaign's members) still have their frames to extract: what a
    pass left, which keeps the stage's watermark before it."""
    query = pending_query(digest, video_ids=video_ids).with_only_columns(Download.video_id)
    with session_scope(db_url) as session:
        return list(session.scalars(query))


def record_frames(db_url: str, video_id: int, rows: list[Frame], digest: str) -> int:
    """Insert a video's frames and its `ok` row; 0 when another run recorded them first."""
    try:
        with session_scope(db_url) as session:
            if session.scalar(select(exists().where(Frame.video_id == video_id))):
                return 0
            session.add_all(rows)
            _outcome(session, video_id, FrameStatus.ok, None, None, len(rows), digest)
    except IntegrityError:
        return 0  # a concurrent run inserted the same frames first
    return len(rows)


def record_failure(db_url: str, download: Download, reason: str, detail: str, digest: str) -> None:
    """A `failed` row with the reason. An unusable video file also becomes an `invalid`
    download, so the download stage may fetch it again (a new file is then tried here anew)."""
    with session_scope(db_url) as session:
        row = session.get(Download, download.video_id)
        if row is None:
            return
        now = utcnow()
        if not row.is_slideshow:
            row.status = DownloadStatus.invalid
            row.updated_at = now
        _outcome(session, download.video_id, FrameStatus.failed, reason, detail, 0, digest, now)


def _outcome(session, video_id, status, reason, detail, frames, digest, now=None) -> None:
    row = session.get(FrameExtraction, video_id) or FrameExtraction(video_id=video_id)
    row.status, row.reason, row.detail = status, reason, (detail or None) and detail[:2000]
    row.frames, row.settings_hash, row.recorded_at = frames, digest, now or utcnow()
    session.add(row)
