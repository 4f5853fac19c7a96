"""Watch downloaded videos for a person: scan each unchecked video, store the outcome, alert.

Every video is checked once per enrolled target (the target's fingerprint: its examples,
negatives and threshold, with the scan settings, is the annotation's `prompt_hash`). The outcome
is a `watch_match` annotation with the time in the video of the match, the distance and the
target's provenance; the matching frame is saved under `frames/<video id>/watch/` (pruned with
the video's other frames) and attached to the email. A file that cannot be decoded is recorded
as a failed check, not retried every day.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import cv2

from gettok.models.schema import AnnotationStatus
from gettok.tasks.watch.alerts import Alerts
from gettok.tasks.watch.face_scan import VideoScan, scan_pictures, scan_video
from gettok.tasks.watch.face_target import FaceTarget
from gettok.tasks.watch.faces import MODEL, FaceSettings
from gettok.tasks.watch.store import (
    StoredFrame,
    store_outcome,
    unchecked_downloads,
    watch_annotation,
)
from gettok.tasks.watch.watchlist import WatchResult, announce_match, target_hash

SCORE_MEANS = "face distance to the nearest example (lower is closer; a match is <= threshold)"


def _scan(
    media_dir: Path, path: str | None, images: list[str], target, settings, per_second
) -> VideoScan:
    if path:
        return scan_video(media_dir / path, target, settings, per_second)
    return scan_pictures([media_dir / p for p in images], target, settings)


def save_sighting(
    media_dir: Path, video_id: int, target: str, scan: VideoScan
) -> tuple[str, bytes]:
    """The matching frame as a JPEG beside the video's frames; (relative path, bytes)."""
    sighting = scan.sighting
    millis = round((sighting.timestamp_s or 0) * 1000)
    relative = f"frames/{video_id}/watch/{target}-{sighting.frame_index:06d}-{millis}.jpg"
    ok, encoded = cv2.imencode(".jpg", sighting.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    data = encoded.tobytes() if ok else b""
    (media_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    (media_dir / relative).write_bytes(data)
    return relative, data


def _scan_or_error(media_dir, path, images, target, settings, per_second):
    """The scan, and the reason when the file could not be decoded at all."""
    try:
        scan, error = _scan(media_dir, path, images, target, settings, per_second), None
    except (av.FFmpegError, OSError, ValueError) as exc:
        scan, error = VideoScan(), f"{type(exc).__name__}: {exc}"[:500]
    if scan.frames_checked == 0:
        return scan, error or "no decodable frame"
    return scan, None


def _announce(
    result: WatchResult, alerts: Alerts, media_dir: Path, video_id: int, target, scan
) -> dict[str, Any]:
    """Save the matching frame and alert with it; what the annotation keeps of it."""
    relative, picture = save_sighting(media_dir, video_id, target.name, scan)
    s = scan.sighting
    frame = StoredFrame(0, video_id, s.frame_index, s.timestamp_s, relative)
    evidence = {
        "score": s.distance,
        "score_means": SCORE_MEANS,
        "threshold": target.threshold,
        "box": list(s.box),
        "frame_path": relative,
    }
    return announce_match(result, alerts, video_id, target.name, frame, evidence, picture)


def watch_for_face(
    url: str,
    media_dir: Path,
    target: FaceTarget,
    alerts: Alerts,
    *,
    campaign_id: int | None = None,
    limit: int | None = None,
    settings: FaceSettings | None = None,
    per_second: float = 1.0,
) -> WatchResult:
    """Check every unchecked downloaded video for one enrolled person."""
    settings = settings or FaceSettings()
    recorded = {**settings.as_dict(), "frames_per_second": per_second}
    prompt_hash = target_hash(target.fingerprint, json.dumps(recorded, sort_keys=True))
    result = WatchResult(target=target.name)
    for video_id, path, images in unchecked_downloads(url, campaign_id, MODEL, prompt_hash, limit):
        scan, error = _scan_or_error(media_dir, path, images, target, settings, per_second)
        result.frames_checked += scan.frames_checked
        value: dict[str, Any] = {
            "target": target.name,
            "target_kind": "face",
            "matched": scan.sighting is not None,
            "frames_checked": scan.frames_checked,
            "faces_seen": scan.faces_seen,
            "faces_embedded": scan.faces_embedded,
            "best_distance": scan.best_distance,
            **target.provenance(),
        }
        if error:
            result.failed["unreadable video"] = result.failed.get("unreadable video", 0) + 1
        elif scan.sighting is not None:
            result.videos_checked += 1
            value.update(_announce(result, alerts, media_dir, video_id, target, scan))
        else:
            result.videos_checked += 1
            result.not_matched += 1
        store_outcome(
            url,
            watch_annotation(
                video_id,
                value,
                model=MODEL,
                prompt_id=f"watch-face:{target.name}",
                prompt_hash=prompt_hash,
                settings=recorded,
                status=AnnotationStatus.failed if error else AnnotationStatus.ok,
                error=error,
            ),
        )
    return result
