"""Annotate videos with an LLM: description + on-screen text, stance, sentiment and summary.

Each kind is a prompt file, an answer model and the inputs it reads (frames, transcript, the
description). What is pending is decided by the database: a video gets a kind once per model and
prompt hash; `failed` rows (429s, 5xx, timeouts that outlasted the retries) are asked again, and
`invalid` ones (an answer that failed the schema twice, or was cut off or over its limit) until they
have had `llm_invalid_max_tries` tries. A bad key, an unknown model or an empty balance stops the
batch at once: what is not yet sent is not sent.
Every row records the model, prompt id and hash, temperature, tokens, cost, latency and inputs.
"""

from __future__ import annotations

import base64
import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gettok import claims, db
from gettok.clients.llm import LlmClient, LlmOutcome, LlmUnavailable
from gettok.clients.llm_budget import Budget
from gettok.clients.llm_request import ChatRequest
from gettok.models.annotations import (
    Description,
    SentimentAnswer,
    Summary,
    SummaryCheck,
    stance_model,
    strict_json_schema,
)
from gettok.models.campaign import Campaign
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    Frame,
    Transcript,
    Video,
)
from gettok.settings import Settings, redact
from gettok.stage import StageResult
from gettok.tasks.annotate import provenance, store
from gettok.tasks.annotate.local_models import uses_local_engine
from gettok.tasks.annotate.prompts import PromptTemplate, load_prompt

log = logging.getLogger(__name__)

# The kinds we request, in the order they run (stance reads the description, the summary check
# the summary).
REQUESTED_KINDS = ("description", "stance", "sentiment", "summary", "summary_check")
TRANSCRIPT_ENGINES = ("faster-whisper", "tiktok")  # preferred first
NO_TEXT = "(none)"


@dataclass(frozen=True)
class KindPlan:
    """What one kind asks for in one campaign: prompt, answer model, model name and hash."""

    kind: AnnotationKind
    prompt: PromptTemplate
    answer_model: type[BaseModel]
    model: str
    prompt_hash: str
    fixed: dict[str, Any] = field(default_factory=dict)  # campaign values in the prompt

    @property
    def stage(self) -> str:
        return f"annotate:{self.kind.value}"


def plan_for(kind: str, campaign: Campaign, settings: Settings) -> KindPlan | None:
    """The LLM's plan for `kind`, or None when the campaign does not call for it (no stance
    target) or a local classifier answers it (`local_run`)."""
    kind = AnnotationKind(kind)
    if uses_local_engine(kind.value, settings):
        return None
    prompt = load_prompt(kind.value)
    fixed: dict[str, Any] = {}
    if kind is AnnotationKind.description:
        answer = Description
    elif kind is AnnotationKind.stance:
        if campaign.stance is None:
            return None
        answer = stance_model(tuple(campaign.stance.labels))
        fixed = {"target": campaign.stance.target, "labels": list(campaign.stance.labels)}
    elif kind is AnnotationKind.sentiment:
        answer = SentimentAnswer
    elif kind is AnnotationKind.summary:
        answer = Summary
    elif kind is AnnotationKind.summary_check:
        answer = SummaryCheck
    else:
        raise ValueError(f"{kind.value} is not an annotation kind requested from the LLM here")
    schema = strict_json_schema(answer)
    return KindPlan(
        kind,
        prompt,
        answer,
        settings.llm_model_for(kind.value),
        prompt.hash(schema, **fixed),
        fixed,
    )


class AnnotateResult(BaseModel):
    """What one kind did over a batch or a run."""

    kind: str
    model: str
    prompt_hash: str
    done: int = 0
    refused: int = 0
    invalid: int = 0
    failed: int = 0
    skipped_budget: int = 0  # not sent: the run's budget was reached
    skipped_taken: int = 0  # claimed by another worker, or already annotated
    missing_input: int = 0  # a frame file that is gone
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def stage_result(self) -> StageResult:
        """Failed by annotation status; left for the budget or held by another worker: skipped."""
        failed = {"refused": self.refused, "invalid": self.invalid, "failed": self.failed}
        failed["missing input"] = self.missing_input
        return StageResult(
            stage="annotate",
            done=self.done,
            skipped=self.skipped_budget + self.skipped_taken,
            failed={k: n for k, n in failed.items() if n},
            counts={f"{self.kind} tokens": self.input_tokens + self.output_tokens}
            | {"cost usd": self.cost_usd},
        )

    def add(self, other: AnnotateResult) -> AnnotateResult:
        for name in type(self).model_fields:
            if name not in ("kind", "model", "prompt_hash"):
                setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


# --- inputs and requests ---------------------------------------------------------------------


@dataclass
class VideoInputs:
    """What the prompts of one video read, with ids for provenance."""

    video_id: int
    caption: str = ""
    transcript_id: int | None = None
    transcript_sha256: str | None = None
    transcript: str = ""
    frames: list[Frame] = field(default_factory=list)
    description_id: int | None = None
    description: str = ""
    summary_id: int | None = None
    summary: str = ""


# What a prompt can read; "frame_sizes" stands for the frames read as (width, height) rows only,
# which is all an estimate needs of them.
EVERY_INPUT = frozenset({"caption", "transcript", "frames", "description", "summary"})


def inputs_read(plan: KindPlan) -> frozenset[str]:
    """The inputs `plan`'s prompt reads (its material, and frames for the kinds that show them),
    with frames as their sizes: what the dry run loads of each pending video."""
    shown = {AnnotationKind.description, AnnotationKind.stance}
    return frozenset(plan.prompt.material) | ({"frame_sizes"} if plan.kind in shown else set())


def load_inputs(
    session: Session, video_ids: list[int], reads: frozenset[str] = EVERY_INPUT
) -> dict[int, VideoInputs]:
    """What the prompts of these videos read (only `reads` of it), as column rows where the
    annotator needs no entity: ORM instances cost the dry run 2 ms a video."""
    inputs = {i: VideoInputs(i) for i in video_ids}
    if "caption" in reads:
        for video_id, caption in session.execute(
            select(Video.id, Video.video_description).where(_among(Video.id, video_ids))
        ):
            inputs[video_id].caption = caption or ""
    if "transcript" in reads:
        _read_transcripts(session, inputs)
    if "frames" in reads:
        for frame in session.scalars(
            select(Frame).where(_among(Frame.video_id, video_ids)).order_by(Frame.frame_index)
        ):
            inputs[frame.video_id].frames.append(frame)
    elif "frame_sizes" in reads:
        sizes = select(Frame.video_id, Frame.width, Frame.height, Frame.path)
        for frame in session.execute(
            sizes.where(_among(Frame.video_id, video_ids)).order_by(Frame.frame_index)
        ):
            inputs[frame.video_id].frames.append(frame)  # type: ignore[arg-type]
    if "description" in reads:
        _read_descriptions(session, inputs)
    if "summary" in reads:
        summaries = store.latest_ok(AnnotationKind.summary).with_only_columns(
            Annotation.id, Annotation.video_id, Annotation.value
        )
        summaries = summaries.where(_among(Annotation.video_id, video_ids))
        for row in session.execute(summaries):  # the newest wins
            inputs[row.video_id].summary_id = row.id
            inputs[row.video_id].summary = (row.value or {}).get("summary", "")
    return inputs


def _among(column, video_ids: list[int]):
    """`column IN (ids)` with the ids written into the SQL: 5,000 bound parameters cost the
    driver more than the query (a page's frames: 0.24 s bound, 0.05 s written)."""
    return column.in_(bindparam("video_ids", video_ids, expanding=True, literal_execute=True))


def _read_transcripts(session: Session, inputs: dict[int, VideoInputs]) -> None:
    """Each engine's current transcript (flagged empty ones left out: music or silence that
    Whisper may have "heard" as "Thank you."); Whisper's wins over TikTok's."""
    columns = (Transcript.id, Transcript.video_id, Transcript.engine, Transcript.created_at)
    transcripts = session.execute(
        select(*columns, Transcript.text, Transcript.text_sha256).where(
            _among(Transcript.video_id, list(inputs)), *provenance.usable_current(Transcript)
        )
    ).all()
    rank = {engine: n for n, engine in enumerate(TRANSCRIPT_ENGINES)}
    for t in sorted(transcripts, key=lambda t: (-rank.get(t.engine, 9), t.created_at, t.id)):
        if t.text and t.text.strip():  # later (better-ranked) ones win
            chosen = inputs[t.video_id]
            chosen.transcript_id, chosen.transcript = t.id, t.text.strip()
            chosen.transcript_sha256 = t.text_sha256


def _read_descriptions(session: Session, inputs: dict[int, VideoInputs]) -> None:
    """The newest description of each video that is not failed nor stale (a refusal or an
    invalid answer reads as no text)."""
    descriptions = session.execute(
        select(Annotation.id, Annotation.video_id, Annotation.status, Annotation.value)
        .where(
            _among(Annotation.video_id, list(inputs)),
            Annotation.kind == AnnotationKind.description,
            Annotation.status != AnnotationStatus.failed,
            ~provenance.is_stale(Annotation),
        )
        .order_by(Annotation.created_at, Annotation.id)
    )
    for row in descriptions:  # the newest wins
        value = row.value or {}
        text = value.get("description", NO_TEXT) if row.status is AnnotationStatus.ok else NO_TEXT
        if value.get("onscreen_text"):
            text += f"\nOn-screen text: {value['onscreen_text']}"
        inputs[row.video_id].description_id, inputs[row.video_id].description = row.id, text


def spread(frames: list[Frame], count: int) -> list[Frame]:
    """`count` frames spread from first to last (all of them when there are fewer)."""
    if len(frames) <= count:
        return list(frames)
    step = (len(frames) - 1) / max(1, count - 1)
    return [frames[round(i * step)] for i in range(count)] if count > 1 else [frames[0]]


def frames_for(plan: KindPlan, inputs: VideoInputs, settings: Settings) -> list[Frame]:
    if plan.kind is AnnotationKind.description:
        return spread(inputs.frames, settings.llm_max_frames)
    if plan.kind is AnnotationKind.stance and inputs.frames:
        return [inputs.frames[len(inputs.frames) // 2]]  # one frame: the middle one
    return []


def build_request(
    plan: KindPlan, inputs: VideoInputs, settings: Settings, media_dir: Path | None
) -> ChatRequest:
    """The request for one video; `media_dir=None` leaves images unread (for estimates)."""
    frames = frames_for(plan, inputs, settings)
    user = plan.prompt.render(
        frame_count=len(frames),
        target=plan.fixed.get("target", ""),
        labels=", ".join(f'"{label}"' for label in plan.fixed.get("labels", [])),
        transcript=inputs.transcript or NO_TEXT,
        description=inputs.description or NO_TEXT,
        caption=inputs.caption or NO_TEXT,
        summary=inputs.summary or NO_TEXT,
    )
    images = [
        (_data_url(media_dir / f.path) if media_dir else "", f.width, f.height) for f in frames
    ]
    return ChatRequest(
        model=plan.model,
        system=plan.prompt.system,
        user_text=user,
        answer_model=plan.answer_model,
        schema_name=plan.kind.value,
        images=images,
        temperature=settings.llm_temperature,
        max_output_tokens=plan.prompt.max_output_tokens,
        expected_output_tokens=plan.prompt.expected_output_tokens,
        image_detail=settings.llm_image_detail,
    )


def _data_url(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


# --- one batch -------------------------------------------------------------------------------


def annotate_videos(
    database_url: str,
    settings: Settings,
    campaign: Campaign,
    kind: str,
    video_ids: list[int],
    *,
    client: LlmClient,
    budget: Budget,
) -> AnnotateResult:
    """Annotate one batch of videos with one kind; one bad video never fails the batch."""
    plan = plan_for(kind, campaign, settings)
    if plan is None:
        raise ValueError(f"campaign {campaign.name} does not call for {kind}")
    result = AnnotateResult(kind=plan.kind.value, model=plan.model, prompt_hash=plan.prompt_hash)
    # A lease long enough for the batch at its slowest; a killed worker's lease then runs out.
    lease_s = 300 + len(video_ids) * settings.llm_timeout_s / settings.llm_concurrency
    held = claims.claim(database_url, plan.stage, video_ids, lease_s=lease_s)
    try:
        with db.session_scope(database_url) as session:
            todo = set(
                store.pending_videos(
                    session, campaign.name, plan, held, settings.llm_invalid_max_tries
                )
            )
            inputs = load_inputs(session, sorted(todo))
        result.skipped_taken = len(video_ids) - len(todo)
        media_dir = settings.resolved_media_dir
        pool = ThreadPoolExecutor(settings.llm_concurrency, thread_name_prefix="llm")
        try:
            futures = {
                pool.submit(_ask, plan, inputs[i], settings, media_dir, client, budget): i
                for i in sorted(todo)
            }
            for future in as_completed(futures):
                outcome, used = future.result()  # LlmUnavailable: the run stops here
                _tally(result, outcome)
                if outcome is not None and outcome.status is not None:
                    store.record_annotation(
                        database_url,
                        plan,
                        inputs[futures[future]],
                        used,
                        outcome,
                        settings,
                        settings.sentiment_low_confidence,
                    )
        finally:
            pool.shutdown(cancel_futures=True)  # on a stop, nothing queued is sent
    finally:
        claims.release(database_url, plan.stage, held)
    return result


def _ask(
    plan: KindPlan,
    inputs: VideoInputs,
    settings: Settings,
    media_dir: Path,
    client: LlmClient,
    budget: Budget,
) -> tuple[LlmOutcome | None, list[Frame]]:
    try:
        request = build_request(plan, inputs, settings, media_dir)
    except OSError:  # a frame file gone (pruned, moved): not the LLM's failure
        return None, []
    frames = frames_for(plan, inputs, settings)
    try:
        return client.annotate(request, budget), frames
    except LlmUnavailable:
        raise  # not this video's fault: stops the batch and the run
    except Exception as exc:  # noqa: BLE001 - one video's surprise must not sink its batch
        log.exception("annotating video %s with %s failed", inputs.video_id, plan.kind.value)
        error = f"{type(exc).__name__}: {redact(str(exc), settings)}"[:500]
        return LlmOutcome(status=AnnotationStatus.failed, error=error, model=plan.model), frames


def _tally(result: AnnotateResult, outcome: LlmOutcome | None) -> None:
    if outcome is None:
        result.missing_input += 1
        return
    if outcome.status is None:
        result.skipped_budget += 1
    else:
        counter = "done" if outcome.status is AnnotationStatus.ok else outcome.status.value
        setattr(result, counter, getattr(result, counter) + 1)
    result.attempts += outcome.attempts
    result.input_tokens += outcome.input_tokens
    result.output_tokens += outcome.output_tokens
    result.cost_usd += outcome.cost_usd
