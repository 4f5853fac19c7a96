"""A described watchlist target ("a red flag with a white star"), checked by the vision LLM.

The video's frames (up to `llm_max_frames`, spread from first to last) go to the configured
model with the description; the structured answer says whether the target is visible and in
which image. Outcomes, costs and alerts are stored as for reference
images (`gettok.tasks.watch.watchlist`).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from pydantic import Field

from gettok.models.annotations import Answer
from gettok.models.schema import Annotation, AnnotationStatus
from gettok.tasks.watch.store import (
    StoredFrame,
    store_outcome,
    unchecked_frames,
    watch_annotation,
)
from gettok.tasks.watch.watchlist import Alerts, WatchResult, announce_match, target_hash

if TYPE_CHECKING:
    from gettok.clients.llm import LlmOutcome
    from gettok.clients.llm_request import ChatRequest


class WatchAnswer(Answer):
    """The vision LLM's answer for a described target."""

    present: bool = Field(description="Whether the described target is visible in any image.")
    image_number: int = Field(
        ge=0,
        le=50,
        description="1-based number of the image that shows it best; 0 when it is not present.",
    )
    evidence: str = Field(
        description="What in the image shows it, in one sentence; empty if absent."
    )


WATCH_SYSTEM = (
    "You check frames of short videos for a monitoring study. Answer only from what is "
    "visible; do not guess."
)
WATCH_USER = (
    "The images are frames, in order, from one TikTok video. Target: {description}\n"
    "Is the target visible in any of the images?"
)


def watch_for_description(
    url: str,
    media_dir: Path,
    description: str,
    alerts: Alerts,
    llm_settings,
    *,
    campaign_id: int | None = None,
    limit: int | None = None,
) -> WatchResult:
    """Ask the vision LLM whether a described target is in each unchecked video's frames."""
    from gettok.clients.llm import LlmClient
    from gettok.clients.llm_budget import Budget

    model = llm_settings.llm_model_for("watch")
    prompt_hash = target_hash(WATCH_SYSTEM, WATCH_USER, description)
    result = WatchResult(target=description[:64])
    client, budget = LlmClient(llm_settings), Budget(llm_settings.llm_budget_usd)
    try:
        for video_id, frames in unchecked_frames(url, campaign_id, model, prompt_hash, limit):
            chosen = _spread(frames, llm_settings.llm_max_frames)
            images = [img for img in (_data_url(media_dir, f) for f in chosen) if img]
            if not images:
                result.fail("no readable frame")
                continue
            request = _watch_request(model, description, images, llm_settings)
            outcome = client.annotate(request, budget)
            result.frames_checked += len(images)
            if outcome.skipped_for_budget or outcome.status == AnnotationStatus.failed:
                result.fail("budget reached" if outcome.skipped_for_budget else "llm failed")
                continue
            result.videos_checked += 1
            value, frame_id = _judge(result, alerts, video_id, description, images, outcome)
            check = _stored_check(
                video_id, value, frame_id, outcome, model, prompt_hash, llm_settings
            )
            store_outcome(url, check)
    finally:
        client.close()
    return result


# A frame as sent: the stored frame, its JPEG data URL, width and height.
SentImage = tuple[StoredFrame, str, int, int]


def _watch_request(
    model: str, description: str, images: list[SentImage], llm_settings
) -> ChatRequest:
    """The vision request asking whether the target is in these frames."""
    from gettok.clients.llm_request import ChatRequest

    return ChatRequest(
        model=model,
        system=WATCH_SYSTEM,
        user_text=WATCH_USER.format(description=description),
        answer_model=WatchAnswer,
        schema_name="watch_check",
        images=[(u, w, h) for _f, u, w, h in images],
        temperature=llm_settings.llm_temperature,
        image_detail=llm_settings.llm_image_detail,
    )


def _judge(
    result: WatchResult,
    alerts: Alerts,
    video_id: int,
    description: str,
    images: list[SentImage],
    outcome: LlmOutcome,
) -> tuple[dict[str, Any], int | None]:
    """The stored value of an answered check and the frame it names; a match is announced."""
    value = dict(outcome.value or {}, matched=False, target=description, target_kind="description")
    if outcome.status != AnnotationStatus.ok or not value.get("present"):
        result.not_matched += 1
        return value, None
    number = value.get("image_number") or 1
    frame = images[min(max(number, 1), len(images)) - 1][0]
    value["matched"] = True
    evidence = {"evidence": value.get("evidence")}
    announced = announce_match(result, alerts, video_id, "description", frame, evidence)
    value["alert"] = announced["alert"]
    return value, frame.id


def _stored_check(
    video_id: int,
    value: dict[str, Any],
    frame_id: int | None,
    outcome: LlmOutcome,
    model: str,
    prompt_hash: str,
    llm_settings,
) -> Annotation:
    """The `watch_match` row of one check, with the request's usage and cost."""
    return watch_annotation(
        video_id,
        value,
        model=model,
        prompt_id="watch-description",
        prompt_hash=prompt_hash,
        settings={"max_frames": llm_settings.llm_max_frames},
        frame_id=frame_id,
        status=outcome.status,
        error=outcome.error,
        temperature=llm_settings.llm_temperature,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        cost_usd=outcome.cost_usd,
        latency_ms=outcome.latency_ms,
        is_sandbox=outcome.is_sandbox,
    )


def _data_url(media_dir: Path, frame: StoredFrame) -> SentImage | None:
    """A frame as the vision API takes it (JPEG data URL and its size); None if unreadable."""
    path = media_dir / frame.path
    data = path.read_bytes() if path.is_file() else b""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        return None
    encoded = base64.b64encode(data).decode()
    return frame, f"data:image/jpeg;base64,{encoded}", image.shape[1], image.shape[0]


def _spread(frames: list[StoredFrame], cap: int) -> list[StoredFrame]:
    if len(frames) <= cap:
        return frames
    step = (len(frames) - 1) / max(cap - 1, 1)
    return [frames[round(i * step)] for i in range(cap)]
