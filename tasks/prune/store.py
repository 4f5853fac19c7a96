"""Every query of the prune stage: which videos to check, what files they have, and the record
of a pruned video (`videos.pruned_at`, `prune_records`)."""

from __future__ import annotations

from gettok.models.schema import (
    Download,
    DownloadStatus,
    Frame,
    FrameExtraction,
    MediaInfo,
    PruneRecord,
    Video,
    utcnow,
)
from sqlalchemy import delete, select, update

from gettok.db import session_scope
from gettok.membership import campaign_videos


def pending_videos(
    url: str, campaign_id: int | None = None, limit: int | None = None
) -> list[tuple[int, str | None]]:
    """Stored, not yet pruned videos that have media or frames on disk: (id, username)."""
    has_media = select(Download.video_id).where(
        Download.status.in_([DownloadStatus.ok, DownloadStatus.slideshow])
        | Download.path.is_not(None)
        | Download.audio_path.is_not(None)
    )
    has_frames = select(Frame.video_id)
    query = (
        select(Video.id, Video.username)
        .where(Video.pruned_at.is_(None), Video.id.in_(has_media) | Video.id.in_(has_frames))
        .order_by(Video.id)
    )
    if campaign_id is not None:
        query = query.where(Video.id.in_(campaign_videos(campaign_id)))
    if limit:
        query = query.limit(limit)
    with session_scope(url) as session:
        return [(vid, user) for vid, user in session.execute(query).all()]


def stored_paths(url: str, video_id: int) -> list[str]:
    """Every file the database knows for a video, relative to the media directory."""
    with session_scope(url) as session:
        download = session.get(Download, video_id)
        frames = session.scalars(select(Frame.path).where(Frame.video_id == video_id)).all()
    paths: list[str] = []
    if download is not None:
        paths += [p for p in (download.path, download.audio_path) if p]
        paths += [str(p) for p in (download.image_paths or []) if p]
    return paths + list(frames)


def record_pruned(url: str, video_id: int, reason: str, paths: list[str]) -> None:
    """Mark the video pruned (its frames, media facts and file paths gone) and record what went,
    in one transaction."""
    now = utcnow()
    with session_scope(url) as session:
        session.execute(delete(Frame).where(Frame.video_id == video_id))
        session.execute(delete(FrameExtraction).where(FrameExtraction.video_id == video_id))
        session.execute(delete(MediaInfo).where(MediaInfo.video_id == video_id))
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
            .where(Video.id == video_id, Video.pruned_at.is_(None))
            .values(pruned_at=now, pruned_reason=reason)
        )
        session.add(
            PruneRecord(video_id=video_id, reason=reason, removed_paths=paths, pruned_at=now)
        )
