"""What an enrich run would cost, estimated before spending anything (the dry run).

Input tokens come from the real prompts of the pending videos (text length / 4, plus OpenAI's
tile formula for each image at its stored size), output tokens from each prompt's expected answer
length. Videos whose frames or description do not exist yet are counted as this run would make
them: the frames the frames stage keeps of their probed length (every `frame_every`-th, at most
`frame_max_per_video`) at the configured frame size, a description of expected length.
Everything is counted in SQL (`request_shapes`): Python prices a few thousand request shapes,
however many videos are pending.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from pydantic import BaseModel
from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from gettok import db
from gettok.clients.llm_budget import cost_usd
from gettok.clients.llm_request import ChatRequest
from gettok.models.campaign import Campaign
from gettok.models.schema import AnnotationKind, Download
from gettok.settings import Settings
from gettok.tasks.annotate import store as annotate_store
from gettok.tasks.annotate.annotator import (
    REQUESTED_KINDS,
    KindPlan,
    VideoInputs,
    build_request,
    inputs_read,
    load_inputs,
    plan_for,
)
from gettok.tasks.annotate.prompts import load_prompt
from gettok.tasks.annotate.request_shapes import ShapedRequests, request_shapes
from gettok.tasks.frames import store as frames_store
from gettok.tasks.frames.extract import frame_settings

ID_BATCH = 5000  # videos per page (and per IN list of the prompts' inputs)


class KindEstimate(BaseModel):
    kind: str
    model: str
    videos: int = 0
    stale: int = 0  # of `videos`: redone because their transcript or frames changed
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class CostEstimate(BaseModel):
    """The dry run's answer: per kind and in total, against the run's budget."""

    kinds: list[KindEstimate]
    total_usd: float
    budget_usd: float

    @property
    def within_budget(self) -> bool:
        return self.total_usd <= self.budget_usd


def estimate_enrich(
    database_url: str,
    settings: Settings,
    campaign: Campaign,
    kinds: list[str] | None = None,
    budget_usd: float | None = None,
) -> CostEstimate:
    """Estimate the requests an enrich run would make now, without making any.

    Each kind's pending requests are counted in SQL by shape, and what later kinds add for the
    videos this run will frame, describe or summarise is combined there too (counts, probed sizes
    grouped), never held as sets of ids: memory and Python's work hold shapes, not videos."""
    plans = [p for k in kinds or REQUESTED_KINDS if (p := plan_for(k, campaign, settings))]
    tries = settings.llm_invalid_max_tries
    estimates = []
    with db.session_scope(database_url) as session:
        db.without_jit(session)
        # The description and summary plans of this run, once estimated: later kinds also count
        # the videos those will be made for.
        describing: KindPlan | None = None
        summarising: KindPlan | None = None
        for plan in plans:
            estimate = KindEstimate(kind=plan.kind.value, model=plan.model)
            estimate.stale = annotate_store.count_stale(session, campaign.name, plan)
            pending = annotate_store.pending_query(campaign.name, plan, tries)
            _add_pending(session, estimate, plan, settings, pending)
            if plan.kind is AnnotationKind.description:
                framed = _frames_pending(settings, campaign.name)
                _add_pending(session, estimate, plan, settings, framed, frames_planned=True)
                describing = plan
            elif plan.kind is AnnotationKind.stance and describing is not None:
                described = annotate_store.pending_query(campaign.name, describing, tries)
                framed = _frames_pending(settings, campaign.name)
                _add_new_descriptions(session, estimate, plan, settings, described, framed, pending)
            elif plan.kind is AnnotationKind.summary:
                summarising = plan
            elif plan.kind is AnnotationKind.summary_check and summarising is not None:
                summarised = annotate_store.pending_query(campaign.name, summarising, tries)
                # Their summaries are checked too, at the prompt's usual summary length.
                expected = "x" * 4 * load_prompt("summary").expected_output_tokens
                not_pending = _except(summarised, pending)
                _add_pending(session, estimate, plan, settings, not_pending, {"summary": expected})
            estimates.append(estimate)
    budget = settings.llm_budget_usd if budget_usd is None else budget_usd
    return CostEstimate(
        kinds=estimates, total_usd=sum(e.cost_usd for e in estimates), budget_usd=budget
    )


def _add_pending(
    session: Session,
    estimate: KindEstimate,
    plan: KindPlan,
    settings: Settings,
    videos: Select,
    fixed: dict[str, str] | None = None,
    frames_planned: bool = False,
) -> None:
    """Add a request for each video `videos` selects, priced by shape (counted in SQL); the
    few whose frames differ in size are built one by one, as the annotator would."""
    shapes, mixed = request_shapes(session, plan, settings, videos, fixed, frames_planned)
    requests = ShapedRequests(plan, settings)
    for shape in shapes:
        _add_request(estimate, plan, settings, requests.request(shape), shape.videos)
    if mixed is None:
        return
    for ids in _pages(session, mixed):
        for video_inputs in load_inputs(session, ids, inputs_read(plan)).values():
            _add(estimate, plan, replace(video_inputs, **(fixed or {})), settings)


def _add_new_descriptions(
    session: Session,
    estimate: KindEstimate,
    plan: KindPlan,
    settings: Settings,
    described: Select,
    framed: Select,
    pending: Select,
) -> None:
    """Add stance requests for the videos this run frames or describes that are not pending
    stance yet: each as its request will be, its description at the prompt's usual length and,
    for the videos still to be framed, showing the frames this run will extract."""
    expected = {"description": "x" * 4 * load_prompt("description").expected_output_tokens}
    framed_later = _except(framed, pending)
    described_later = _except(described, pending, framed)
    _add_pending(session, estimate, plan, settings, framed_later, expected, frames_planned=True)
    _add_pending(session, estimate, plan, settings, described_later, expected)


def _except(ids: Select, *others: Select) -> Select:
    """SQL: the ids `ids` selects that none of `others` selects, as NOT EXISTS (an anti-join:
    Postgres cannot make a join of `NOT IN (subquery)` or of an OR of `IN`s, and a dry-run
    count that tried ran for 20 minutes at 500k)."""
    chosen = ids.subquery()
    video_id = chosen.c[0]
    excluded = [~exists().where(other.subquery().c[0] == video_id) for other in others]
    return select(video_id.label("id")).where(*excluded)


def _pages(session: Session, ids: Select) -> Iterator[list[int]]:
    """Pages of the video ids `ids` selects, in id order, streamed from one run of the query (a
    keyset page per query ran the whole pending query again each page: quadratic in videos)."""
    ordered = ids.order_by(*ids.selected_columns)
    result = session.execute(ordered, execution_options={"yield_per": ID_BATCH})
    for page in result.scalars().partitions():
        yield list(page)


def _add(
    estimate: KindEstimate,
    plan: KindPlan,
    inputs: VideoInputs,
    settings: Settings,
    videos: int = 1,
) -> None:
    """`videos` requests like this one (the same inputs: the same tokens)."""
    request = build_request(plan, inputs, settings, media_dir=None)
    _add_request(estimate, plan, settings, request, videos)


def _add_request(
    estimate: KindEstimate, plan: KindPlan, settings: Settings, request: ChatRequest, videos: int
) -> None:
    tokens_in, tokens_out = request.estimated_tokens()
    cost = cost_usd(settings, plan.model, tokens_in, tokens_out)
    estimate.videos += videos
    estimate.input_tokens += videos * tokens_in
    estimate.output_tokens += videos * tokens_out
    for _ in range(videos):  # added one by one, as each video's request: the same float sum
        estimate.cost_usd += cost


def _frames_pending(settings: Settings, campaign_name: str) -> Select:
    """The ids of the videos the frames stage would work on now."""
    digest = frames_store.settings_hash(frame_settings(settings))
    return frames_store.pending_query(digest, campaign_name).with_only_columns(Download.video_id)
