"""Every query of the prune stage: which videos are due, which are known gone, which prunes a
killed run left unfinished, and the rows of a pruned video (`videos.pruned_at`, `prune_records`).

Each selection is an `EXISTS` on indexed keys, paged by id, so its cost follows what is due, not
the size of the campaign (issue 19: `id IN (downloads…) OR id IN (frames…)` took 182 s at 100k).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, and_, delete, exists, select, update

from gettok.db import session_scope
from gettok.models.schema import (
    Annotation,
    CampaignVideo,
    Download,
    DownloadStatus,
    Frame,
    FrameExtraction,
    MediaInfo,
    PruneRecord,
    Transcript,
    ValidationItem,
    Video,
    VideoTopic,
    utcnow,
)

KNOWN_GONE = (DownloadStatus.private, DownloadStatus.removed)


def _in_campaign(query: Select, campaign_id: int | None) -> Select:
    if campaign_id is None:
        return query
    member = exists().where(
        CampaignVideo.video_id == Video.id, CampaignVideo.campaign_id == campaign_id
    )
    return query.where(member)


def _page(query: Select, after_id: int | None, limit: int | None) -> Select:
    query = query.order_by(Video.id)
    if after_id is not None:
        query = query.where(Video.id > after_id)
    return query.limit(limit) if limit else query


def pending_videos(
    url: str,
    campaign_id: int | None = None,
    limit: int | None = None,
    *,
    checked_before: datetime | None = None,
    after_id: int | None = None,
) -> list[tuple[int, str | None]]:
    """Not yet pruned videos, with or without files, whose page is due a check: (id, username).

    `checked_before` leaves out videos found public since then (a rerun does not redo them);
    `after_id` pages by id.
    """
    query = select(Video.id, Video.username).where(Video.pruned_at.is_(None))
    if checked_before is not None:
        query = query.where(
            Video.compliance_checked_at.is_(None) | (Video.compliance_checked_at < checked_before)
        )
    query = _page(_in_campaign(query, campaign_id), after_id, limit)
    with session_scope(url) as session:
        return [(vid, user) for vid, user in session.execute(query).all()]


def known_gone(
    url: str, campaign_id: int | None = None, limit: int | None = None, after_id: int | None = None
) -> list[tuple[int, str]]:
    """Videos another stage found private or removed but that are not marked pruned yet:
    (id, reason). The download stage deleted their media; their rows and derived text remain."""
    query = (
        select(Video.id, Download.status)
        .join(Download, Download.video_id == Video.id)
        .where(Video.pruned_at.is_(None), Download.status.in_(KNOWN_GONE))
    )
    query = _page(_in_campaign(query, campaign_id), after_id, limit)
    with session_scope(url) as session:
        return [(vid, str(status)) for vid, status in session.execute(query).all()]


def unfinished(
    url: str, campaign_id: int | None = None, limit: int | None = None, after_id: int | None = None
) -> list[tuple[int, str]]:
    """Pruned videos whose files may still be on disk: a record still `pruning` (a run killed
    after the rows), or no finished record at all (marked pruned by another stage)."""
    finished = exists().where(
        PruneRecord.video_id == Video.id, PruneRecord.files_removed_at.is_not(None)
    )
    query = select(Video.id, Video.pruned_reason).where(Video.pruned_at.is_not(None), ~finished)
    query = _page(_in_campaign(query, campaign_id), after_id, limit)
    with session_scope(url) as session:
        return [(vid, reason or "removed") for vid, reason in session.execute(query).all()]


def stored_paths(url: str, video_id: int) -> list[str]:
    """Every file the database knows for a video (its open prune records included), relative to
    the media directory."""
    with session_scope(url) as session:
        download = session.get(Download, video_id)
        frames = session.scalars(select(Frame.path).where(Frame.video_id == video_id)).all()
        recorded = session.scalars(
            select(PruneRecord.removed_paths).where(
                PruneRecord.video_id == video_id, PruneRecord.files_removed_at.is_(None)
            )
        ).all()
    paths: list[str] = []
    if download is not None:
        paths += [p for p in (download.path, download.audio_path) if p]
        paths += [str(p) for p in (download.image_paths or []) if p]
    for listed in recorded:
        paths += [str(p) for p in listed or []]
    return paths + list(frames)


def mark_pruning(url: str, video_id: int, reason: str, paths: list[str]) -> None:
    """Step one of a prune, in one transaction: the video is pruned in every row (derived text,
    frames, media facts and file paths gone) and a `pruning` record lists the files to delete.

    From this commit on no stage, export or check treats the video as public, whatever happens
    to the files; a record already open for the video is reused (a rerun after a kill).
    """
    now = utcnow()
    with session_scope(url) as session:
        vid = Video.id == video_id
        # An annotation that people coded for validation stays (deleting it would cascade to
        # their codes and change published agreement scores); the public export withholds it.
        coded = exists().where(ValidationItem.annotation_id == Annotation.id)
        session.execute(delete(Annotation).where(Annotation.video_id == video_id, ~coded))
        session.execute(delete(Transcript).where(Transcript.video_id == video_id))
        session.execute(delete(Frame).where(Frame.video_id == video_id))
        session.execute(delete(FrameExtraction).where(FrameExtraction.video_id == video_id))
        session.execute(delete(MediaInfo).where(MediaInfo.video_id == video_id))
        session.execute(delete(VideoTopic).where(VideoTopic.video_id == video_id))  # of its text
        session.execute(
            update(Download)
            .where(Download.video_id == video_id)
            .values(
                status=DownloadStatus(reason),
                path=None,
                image_paths=None,
                audio_path=None,
                last_error=f"pruned: {reason}",
                updated_at=now,
            )
        )
        session.execute(
            update(Video)
            .where(vid, Video.pruned_at.is_(None))
            .values(pruned_at=now, pruned_reason=reason)
        )
        open_record = session.scalars(
            select(PruneRecord).where(
                PruneRecord.video_id == video_id, PruneRecord.files_removed_at.is_(None)
            )
        ).first()
        if open_record is None:
            session.add(
                PruneRecord(video_id=video_id, reason=reason, removed_paths=paths, pruned_at=now)
            )
        else:
            open_record.removed_paths = list(dict.fromkeys([*open_record.removed_paths, *paths]))


def mark_files_removed(url: str, video_id: int) -> None:
    """Step two done: the record's files are gone."""
    with session_scope(url) as session:
        session.execute(
            update(PruneRecord)
            .where(PruneRecord.video_id == video_id, PruneRecord.files_removed_at.is_(None))
            .values(files_removed_at=utcnow())
        )


def mark_checked(url: str, video_ids: Iterable[int], status: str = "public") -> None:
    """The videos are still there (their page was public or age restricted, or batch compliance
    said available): not due again for 15 days, and what the check saw. Bounded: one batch."""
    ids = list(video_ids)
    if not ids:
        return
    with session_scope(url) as session:
        session.execute(
            update(Video)
            .where(and_(Video.id.in_(ids), Video.pruned_at.is_(None)))
            .values(compliance_checked_at=utcnow(), compliance_status=status)
        )
