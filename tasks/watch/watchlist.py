"""The watchlist (the monitoring study): alert when a target appears in a new video's frames.

A target is a reference image, matched in the extracted frames with OpenCV features
(`gettok.tasks.watch.image_match`), or a text description checked by the vision LLM
(`gettok.tasks.watch.description`). Every video is checked
once per target: the outcome is stored as a `watch_match` annotation (`value.matched` true or
false, the frame that matched in `frame_id`), so a daily run only looks at videos it has not seen.
A match emits a Prefect event (`gettok.watch.match`, for Prefect automations) and posts to the
campaign's webhook before it is stored: a run killed in between alerts twice, never zero times.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    Frame,
    Video,
    utcnow,
)
from gettok.tasks.watch.image_match import (
    MatchSettings,
    ReferenceImage,
    load_reference,
    match_reference,
)
from pydantic import BaseModel, Field
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from gettok.db import session_scope
from gettok.membership import campaign_videos
from gettok.stage import StageResult

log = logging.getLogger(__name__)

IMAGE_MODEL = "opencv-orb"
MATCH_EVENT = "gettok.watch.match"
# Webhook retry policy: network errors, 429 and 5xx only; a 4xx other than 429 cannot succeed.
WEBHOOK_RETRY_DELAYS_S = (2.0, 5.0, 15.0)


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

    def stage_result(self) -> StageResult:
        """Videos checked are done (matched or not); unchecked ones fail by reason, to retry."""
        return StageResult(
            stage="watch",
            done=self.videos_checked,
            failed=dict(self.failed),
            counts={"matched": len(self.matched), "events": self.events_emitted},
        )


@dataclass(frozen=True)
class StoredFrame:
    id: int
    video_id: int
    frame_index: int
    timestamp_s: float | None
    path: str


def target_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def image_target_hash(reference: ReferenceImage, settings: MatchSettings) -> str:
    return target_hash(reference.sha256, json.dumps(settings.as_dict(), sort_keys=True))


def unchecked_frames(
    url: str, campaign_id: int | None, model: str, prompt_hash: str, limit: int | None = None
) -> dict[int, list[StoredFrame]]:
    """Frames of the videos not yet checked for this target (not pruned), by video in order."""
    checked = exists().where(
        Annotation.video_id == Video.id,
        Annotation.kind == AnnotationKind.watch_match,
        Annotation.model == model,
        Annotation.prompt_hash == prompt_hash,
    )
    videos = select(Video.id).where(
        Video.pruned_at.is_(None), ~checked, Video.id.in_(select(Frame.video_id))
    )
    if campaign_id is not None:
        videos = videos.where(Video.id.in_(campaign_videos(campaign_id)))
    videos = videos.order_by(Video.id)
    if limit:
        videos = videos.limit(limit)
    with session_scope(url) as session:
        ids = list(session.scalars(videos))
        rows = session.execute(
            select(Frame.id, Frame.video_id, Frame.frame_index, Frame.timestamp_s, Frame.path)
            .where(Frame.video_id.in_(ids))
            .order_by(Frame.video_id, Frame.frame_index)
        ).all()
    frames: dict[int, list[StoredFrame]] = {i: [] for i in ids}
    for row in rows:
        frames[row.video_id].append(StoredFrame(*row))
    return frames


class Alerts:
    """Where a match is announced: a Prefect event, and the campaign's webhook if it has one."""

    def __init__(
        self,
        webhook_url: str | None = None,
        *,
        campaign: str = "",
        retry_delays_s: Sequence[float] = WEBHOOK_RETRY_DELAYS_S,
        sleep: Callable[[float], None] = time.sleep,
        timeout_s: float = 10.0,
    ):
        self.webhook_url, self.campaign = webhook_url, campaign
        self.retry_delays_s, self.sleep, self.timeout_s = tuple(retry_delays_s), sleep, timeout_s

    def announce(self, video_id: int, target: str, details: dict[str, Any]) -> dict[str, str]:
        payload = {
            "event": MATCH_EVENT,
            "campaign": self.campaign,
            "video_id": str(video_id),
            "target": target,
            **details,
        }
        return {"event": self._emit(video_id, target, payload), "webhook": self._post(payload)}

    def _emit(self, video_id: int, target: str, payload: dict[str, Any]) -> str:
        from prefect.context import FlowRunContext, TaskRunContext
        from prefect.events import emit_event

        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            # Outside a run there is no server to tell (and emit_event would start one).
            return "not emitted: outside a Prefect run"
        try:
            event = emit_event(
                event=MATCH_EVENT,
                resource={
                    "prefect.resource.id": f"gettok.video.{video_id}",
                    "prefect.resource.name": f"video {video_id}",
                },
                related=[
                    {
                        "prefect.resource.id": f"gettok.campaign.{self.campaign}",
                        "prefect.resource.role": "campaign",
                    },
                    {
                        "prefect.resource.id": f"gettok.watch-target.{target}",
                        "prefect.resource.role": "watch-target",
                    },
                ],
                payload=payload,
            )
        except Exception as exc:  # an alert channel down must not lose the match itself
            log.warning("could not emit %s for video %s: %s", MATCH_EVENT, video_id, exc)
            return f"failed: {type(exc).__name__}"
        return "emitted" if event is not None else "not emitted: no Prefect events client"

    def _post(self, payload: dict[str, Any]) -> str:
        if not self.webhook_url:
            return "not configured"
        last = ""
        for attempt, delay in enumerate((*self.retry_delays_s, None)):
            try:
                response = httpx.post(self.webhook_url, json=payload, timeout=self.timeout_s)
                if response.status_code < 300:
                    return "ok"
                last = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break
            except httpx.TransportError as exc:
                last = type(exc).__name__
            if delay is not None:
                log.info(
                    "webhook attempt %d failed (%s); retrying in %.0f s", attempt + 1, last, delay
                )
                self.sleep(delay)
        return f"failed: {last}"


def store_outcome(url: str, row: Annotation) -> bool:
    """Insert one outcome; False if a concurrent run stored it first."""
    try:
        with session_scope(url) as session:
            session.add(row)
        return True
    except IntegrityError:
        return False


def announce_match(
    result: WatchResult,
    alerts: Alerts,
    video_id: int,
    target: str,
    frame: StoredFrame,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    """Alert on a match (event, webhook), count it; return the details with the alert's outcome."""
    details = {"frame_index": frame.frame_index, "timestamp_s": frame.timestamp_s, **evidence}
    alert = alerts.announce(video_id, target, details)
    result.events_emitted += alert["event"] == "emitted"
    result.webhook_posted += alert["webhook"] == "ok"
    result.webhook_failed += alert["webhook"].startswith("failed")
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
) -> WatchResult:
    """Check every unchecked video's frames for one reference image."""
    settings = settings or MatchSettings()
    reference = load_reference(reference_path, settings)
    prompt_hash = image_target_hash(reference, settings)
    result = WatchResult(target=reference.name)
    for video_id, frames in unchecked_frames(
        url, campaign_id, IMAGE_MODEL, prompt_hash, limit
    ).items():
        hit, best, read = None, 0, 0
        for frame in frames:
            image = cv2.imread(str(media_dir / frame.path), cv2.IMREAD_COLOR)
            if image is None:
                continue
            read += 1
            match = match_reference(reference, image, settings)
            best = max(best, match.inliers)
            if match.matched:
                hit = (frame, match)
                break
        result.frames_checked += read
        if read == 0:
            result.failed["no readable frame"] = result.failed.get("no readable frame", 0) + 1
            continue
        result.videos_checked += 1
        value: dict[str, Any] = {
            "matched": hit is not None,
            "target": reference.name,
            "target_kind": "image",
            "target_sha256": reference.sha256,
            "frames_checked": read,
            "best_inliers": best,
        }
        frame_id = None
        if hit is not None:
            frame, match = hit
            frame_id = frame.id
            evidence = {
                "inliers": match.inliers,
                "good_matches": match.good,
                "correlation": match.correlation,
            }
            value.update(announce_match(result, alerts, video_id, reference.name, frame, evidence))
            value["corners"] = match.corners
        else:
            result.not_matched += 1
        store_outcome(
            url,
            Annotation(
                video_id=video_id,
                kind=AnnotationKind.watch_match,
                status=AnnotationStatus.ok,
                value=value,
                model=IMAGE_MODEL,
                prompt_id=f"watch-image:{reference.name}"[:64],
                prompt_hash=prompt_hash,
                settings=settings.as_dict(),
                frame_id=frame_id,
                cost_usd=0.0,
                created_at=utcnow(),
            ),
        )
    return result
