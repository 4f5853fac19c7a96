"""Frames: keep 1 of every N frames of each downloaded video as a JPEG, as the GET-Tok study did.

Files go to `frames/<video id>/<frame index>.jpg` under the media directory (never a path made
from a username). Each JPEG is written to a temporary name and renamed, and a video's rows are
inserted only after all its files exist, in one transaction: a killed run leaves no row without
its file, and a rerun redoes only the videos that have no rows. Slideshows give their photos.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import av
import cv2
import numpy as np
from gettok.models.schema import Download, DownloadStatus, Frame, Video, utcnow
from gettok.tasks.download.media import MediaProblem, probe_media
from gettok.tasks.frames.sampling import read_image, sample_frames
from pydantic import BaseModel, Field
from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError

from gettok import claims
from gettok.db import session_scope
from gettok.settings import Settings

STAGE = "frames"
JPEG_QUALITY = 90
METHOD = "pyav-keyframe-seek"
FAILURE_PREFIX = "frames: "  # marks a download whose media the frames stage could not use


class FrameFailure(BaseModel):
    video_id: int
    reason: (
        str  # missing | bad_path | not_mp4 | truncated | no_video_stream | undecodable | no_images
    )
    detail: str


class FramesResult(BaseModel):
    """What one run of the frames stage did."""

    videos_done: int = 0
    frames_written: int = 0
    skipped: int = 0  # already had frames, or another worker holds them
    failed: dict[str, int] = Field(default_factory=dict)  # by reason
    failures: list[FrameFailure] = Field(default_factory=list)
    seconds: float = 0.0

    def fail(self, video_id: int, reason: str, detail: str) -> None:
        self.failed[reason] = self.failed.get(reason, 0) + 1
        self.failures.append(FrameFailure(video_id=video_id, reason=reason, detail=detail[:300]))


class _Unusable(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def frame_settings(settings: Settings) -> dict:
    """What decided which frames were kept and how: recorded on every frame row."""
    return {
        "frame_every": settings.frame_every,
        "frame_max_per_video": settings.frame_max_per_video,
        "frame_max_side": settings.frame_max_side,
        "jpeg_quality": JPEG_QUALITY,
        "method": METHOD,
    }


def pending_videos(db_url: str, video_ids: Iterable[int] | None = None, limit: int = 500):
    """Downloads with a usable video or slideshow, no frames yet, not pruned; oldest id first."""
    query = (
        select(Download)
        .join(Video, Video.id == Download.video_id)
        .where(
            Video.pruned_at.is_(None),
            or_(
                (Download.status == DownloadStatus.ok) & Download.path.is_not(None),
                Download.is_slideshow.is_(True),
            ),
            ~exists().where(Frame.video_id == Download.video_id),
            # a slideshow whose photos failed here keeps its status: do not retry it every run
            or_(Download.last_error.is_(None), ~Download.last_error.startswith(FAILURE_PREFIX)),
        )
        .order_by(Download.video_id)
    )
    if video_ids is not None:
        query = query.where(Download.video_id.in_(list(video_ids)))
    with session_scope(db_url) as session:
        return list(session.scalars(query.limit(limit)))


def _inside(media_dir: Path, relative: str) -> Path:
    path = (media_dir / relative).resolve()
    if not path.is_relative_to(media_dir.resolve()):
        raise _Unusable("bad_path", f"path outside the media directory: {relative!r}")
    return path


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"cannot encode {path.name}")
    temp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temp.write_bytes(encoded.tobytes())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _images(download: Download, media_dir: Path, settings: Settings):
    """(index, seconds or None, image, source) for one download, or raise _Unusable."""
    if download.is_slideshow:
        paths = download.image_paths if isinstance(download.image_paths, list) else []
        found = 0
        for n, relative in enumerate(paths[: settings.frame_max_per_video]):
            try:
                image = read_image(_inside(media_dir, str(relative)), settings.frame_max_side)
            except (ValueError, _Unusable):
                continue
            found += 1
            yield n, None, image, "slideshow"
        if not found:
            raise _Unusable("no_images", f"no readable image among {len(paths)}")
        return
    path = _inside(media_dir, download.path)
    if not path.is_file():
        raise _Unusable("missing", f"no file at {download.path}")
    try:
        probe_media(path)
        sampled = sample_frames(
            path, settings.frame_every, settings.frame_max_per_video, settings.frame_max_side
        )
        found = 0
        for index, seconds, image in sampled:
            found += 1
            yield index, seconds, image, "video"
    except MediaProblem as exc:
        raise _Unusable(exc.reason, str(exc)) from exc
    except av.FFmpegError as exc:
        raise _Unusable("undecodable", str(exc)) from exc
    if not found:
        raise _Unusable("undecodable", "no kept frame decoded")


def extract_video_frames(db_url: str, settings: Settings, download: Download) -> int:
    """Write one video's JPEGs, then its rows; return the rows inserted (0: another run did it)."""
    media_dir = settings.resolved_media_dir
    folder = media_dir / "frames" / str(int(download.video_id))
    folder.mkdir(parents=True, exist_ok=True)
    # Left by a killed run: no row points at them (a kill mid-write also leaves its temp file).
    for stale in [*folder.glob("*.jpg"), *folder.glob(".*.tmp")]:
        stale.unlink(missing_ok=True)
    recorded = frame_settings(settings)
    rows = []
    for index, seconds, image, source in _images(download, media_dir, settings):
        path = folder / f"{index}.jpg"
        _write_jpeg(path, image)
        rows.append(
            Frame(
                video_id=download.video_id,
                frame_index=index,
                timestamp_s=None if seconds is None else round(seconds, 3),
                path=path.relative_to(media_dir).as_posix(),
                width=int(image.shape[1]),
                height=int(image.shape[0]),
                source=source,
                settings=recorded,
            )
        )
    try:
        with session_scope(db_url) as session:
            if session.scalar(select(exists().where(Frame.video_id == download.video_id))):
                return 0
            session.add_all(rows)
    except IntegrityError:
        return 0  # a concurrent run inserted the same frames first
    return len(rows)


def _record_failure(db_url: str, download: Download, error: _Unusable) -> None:
    """An unusable video file is `invalid` (the download stage may fetch it again); a slideshow
    keeps its status and is marked so it is not retried here every run."""
    with session_scope(db_url) as session:
        row = session.get(Download, download.video_id)
        if row is None:
            return
        row.last_error = f"{FAILURE_PREFIX}{error.reason}: {error}"[:2000]
        if not row.is_slideshow:
            row.status = DownloadStatus.invalid
        row.updated_at = utcnow()


def extract_frames(
    db_url: str, settings: Settings, video_ids: Iterable[int] | None = None, limit: int = 500
) -> FramesResult:
    """Frames for up to `limit` pending videos; a bad file is recorded and the batch goes on."""
    started = time.monotonic()
    result = FramesResult()
    pending = pending_videos(db_url, video_ids, limit)
    # One name per call: two runs in one process (threads) must not share each other's claims.
    worker = f"{claims.worker_name()}:{uuid.uuid4().hex[:8]}"
    held = set(claims.claim(db_url, STAGE, [d.video_id for d in pending], worker=worker))
    result.skipped += len(pending) - len(held)
    try:
        for download in pending:
            if download.video_id not in held:
                continue
            try:
                written = extract_video_frames(db_url, settings, download)
            except _Unusable as exc:
                result.fail(download.video_id, exc.reason, str(exc))
                _record_failure(db_url, download, exc)
                continue
            if written:
                result.videos_done += 1
                result.frames_written += written
            else:
                result.skipped += 1
    finally:
        claims.release(db_url, STAGE, held, worker=worker)
    result.seconds = round(time.monotonic() - started, 3)
    return result
