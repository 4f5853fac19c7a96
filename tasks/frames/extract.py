"""Frames: keep 1 of every N frames of each downloaded video as a JPEG, as the GET-Tok study did.

Files go to `frames/<video id>/<frame index>.jpg` under the media directory (never a path made
from a username). Each JPEG is written to a temporary name and renamed, and a video's rows are
inserted only after all its files exist, in one transaction with the video's `frame_extractions`
row: a killed run leaves no row without its file, and a rerun redoes only the videos that have no
rows. Slideshows give their photos; a file that gives none is recorded `failed` with the reason.
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
from pydantic import BaseModel, Field

from gettok import claims
from gettok.models.schema import Download, Frame
from gettok.settings import Settings
from gettok.stage import StageResult
from gettok.tasks.download.media import MediaProblem, probe_media
from gettok.tasks.frames import store
from gettok.tasks.frames.sampling import read_image, sample_frames

STAGE = "frames"
JPEG_QUALITY = 90
METHOD = "pyav-keyframe-seek"


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

    def merge(self, other: FramesResult) -> FramesResult:
        """This run's batches together (another batch of the same run)."""
        failed = dict(self.failed)
        for reason, n in other.failed.items():
            failed[reason] = failed.get(reason, 0) + n
        return FramesResult(
            videos_done=self.videos_done + other.videos_done,
            frames_written=self.frames_written + other.frames_written,
            skipped=self.skipped + other.skipped,
            failed=failed,
            failures=self.failures + other.failures,
            seconds=round(self.seconds + other.seconds, 3),
        )

    def stage_result(self) -> StageResult:
        return StageResult(
            stage=STAGE,
            done=self.videos_done,
            skipped=self.skipped,
            failed=dict(self.failed),
            counts={"frames": self.frames_written, "seconds": self.seconds},
        )


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
    return store.record_frames(db_url, download.video_id, rows, store.settings_hash(recorded))


def extract_frames(
    db_url: str,
    settings: Settings,
    video_ids: Iterable[int] | None = None,
    limit: int | None = 500,
    campaign_name: str | None = None,
) -> FramesResult:
    """Frames for up to `limit` pending videos; a bad file is recorded and the batch goes on."""
    started = time.monotonic()
    result = FramesResult()
    digest = store.settings_hash(frame_settings(settings))
    pending = store.pending_videos(db_url, digest, campaign_name, video_ids, limit)
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
                store.record_failure(db_url, download, exc.reason, str(exc), digest)
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
