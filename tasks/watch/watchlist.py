"""The watchlist (the monitoring study): alert when a target appears in a new video's frames.

A target is a reference image, matched in the extracted frames with OpenCV features
(`gettok.tasks.watch.image_match`), or a text description checked by the vision LLM
(`gettok.tasks.watch.description`). Every video is checked
once per target: the outcome is stored as a `watch_match` annotation (`value.matched` true or
false, the frame that matched in `frame_id`), so a daily run only looks at videos it has not seen.
A match is announced (`gettok.tasks.watch.alerts`: Prefect event, webhook, email) before it is
stored, and each (campaign, target, video) alerts once whatever the number of runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
from pydantic import BaseModel, Field

from gettok.stage import StageResult
from gettok.tasks.watch.alerts import MATCH_EVENT, Alerts
from gettok.tasks.watch.image_match import (
    ImageMatch,
    MatchSettings,
    ReferenceImage,
    load_reference,
    match_reference,
)
from gettok.tasks.watch.store import (
    StoredFrame,
    store_outcome,
    unchecked_frames,
    watch_annotation,
)

log = logging.getLogger(__name__)

IMAGE_MODEL = "opencv-orb"
__all__ = ["MATCH_EVENT", "Alerts", "WatchResult", "announce_match", "watch_for_image"]


class WatchResult(BaseModel):
    target: str
    videos_checked: int = 0
    frames_checked: int = 0
    matched: list[int] = Field(default_factory=list)  # video ids
    not_matched: int = 0
    failed: dict[str, int] = Field(default_factory=dict)  # not stored: checked again next run
    events_emitted: int = 0
    webhook_posted: int = 0
    webhook_failed: int = 0
    emails_sent: int = 0
    emails_failed: int = 0
    already_alerted: int = 0  # matches whose alert an earlier run sent

    def stage_result(self) -> StageResult:
        """Videos checked are done (matched or not); unchecked ones fail by reason, to retry."""
        return StageResult(
            stage="watch",
            done=self.videos_checked,
            failed=dict(self.failed),
            counts={"matched": len(self.matched), "events": self.events_emitted},
        )

    def fail(self, reason: str) -> None:
        """Count a video left unchecked (it is checked again next run)."""
        self.failed[reason] = self.failed.get(reason, 0) + 1


def target_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def image_target_hash(reference: ReferenceImage, settings: MatchSettings) -> str:
    return target_hash(reference.sha256, json.dumps(settings.as_dict(), sort_keys=True))


def announce_match(
    result: WatchResult,
    alerts: Alerts,
    video_id: int,
    target: str,
    frame: StoredFrame,
    evidence: dict[str, Any],
    picture: bytes | None = None,
) -> dict[str, Any]:
    """Alert on a match (event, webhook, email), count it; the details with the alert's outcome."""
    details = {"frame_index": frame.frame_index, "timestamp_s": frame.timestamp_s, **evidence}
    alert = alerts.announce(video_id, target, details, picture)
    result.events_emitted += alert["event"] == "emitted"
    result.webhook_posted += alert["webhook"] == "ok"
    result.webhook_failed += alert["webhook"].startswith("failed")
    result.emails_sent += alert["email"] == "ok"
    result.emails_failed += alert["email"].startswith("failed")
    result.already_alerted += alert["event"] == "duplicate"
    result.matched.append(video_id)
    return details | {"alert": alert}


def watch_for_image(
    url: str,
    media_dir: Path,
    reference_path: Path,
    alerts: Alerts,
    *,
    campaign_id: int | None = None,
    limit: int | None = None,
    settings: MatchSettings | None = None,
    target_name: str | None = None,
) -> WatchResult:
    """Check every unchecked video's frames for one reference image (of `target_name`)."""
    settings = settings or MatchSettings()
    reference = load_reference(reference_path, settings)
    prompt_hash = image_target_hash(reference, settings)
    name = target_name or reference.name
    result = WatchResult(target=name)
    for video_id, frames in unchecked_frames(url, campaign_id, IMAGE_MODEL, prompt_hash, limit):
        scan = _scan_frames(media_dir, frames, reference, settings)
        result.frames_checked += scan.read
        if scan.read == 0:
            result.fail("no readable frame")
            continue
        result.videos_checked += 1
        value: dict[str, Any] = {
            "matched": scan.hit is not None,
            "target": reference.name,
            "target_kind": "image",
            "target_sha256": reference.sha256,
            "frames_checked": scan.read,
            "best_inliers": scan.best_inliers,
        }
        frame_id = None
        if scan.hit is not None:
            frame, match = scan.hit
            frame_id = frame.id
            value.update(_announce(result, alerts, video_id, name, media_dir, frame, match))
        else:
            result.not_matched += 1
        store_outcome(
            url,
            watch_annotation(
                video_id,
                value,
                model=IMAGE_MODEL,
                prompt_id=f"watch-image:{reference.name}",
                prompt_hash=prompt_hash,
                settings=settings.as_dict(),
                frame_id=frame_id,
            ),
        )
    return result


@dataclass
class _Scan:
    """One video's frames checked against the reference, up to the first match."""

    hit: tuple[StoredFrame, ImageMatch] | None
    best_inliers: int
    read: int  # frames that could be read


def _scan_frames(
    media_dir: Path, frames: list[StoredFrame], reference: ReferenceImage, settings: MatchSettings
) -> _Scan:
    """Match the frames in order, stopping at the first that shows the reference."""
    best, read = 0, 0
    for frame in frames:
        image = cv2.imread(str(media_dir / frame.path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        read += 1
        match = match_reference(reference, image, settings)
        best = max(best, match.inliers)
        if match.matched:
            return _Scan(hit=(frame, match), best_inliers=best, read=read)
    return _Scan(hit=None, best_inliers=best, read=read)


def _announce(
    result: WatchResult,
    alerts: Alerts,
    video_id: int,
    name: str,
    media_dir: Path,
    frame: StoredFrame,
    match: ImageMatch,
) -> dict[str, Any]:
    """Alert on an image match with the matched frame attached; what the stored value adds."""
    evidence = {
        "inliers": match.inliers,
        "good_matches": match.good,
        "correlation": match.correlation,
        "score": match.correlation,
        "score_means": "colour correlation of the matched region (1 = identical)",
    }
    picture = (media_dir / frame.path).read_bytes()
    details = announce_match(result, alerts, video_id, name, frame, evidence, picture)
    return details | {"corners": match.corners}
