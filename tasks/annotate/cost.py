"""What an enrich run would cost, estimated before spending anything (the dry run).

Input tokens come from the real prompts of the pending videos (text length / 4, plus OpenAI's
tile formula for each image at its stored size), output tokens from each prompt's expected answer
length. Videos whose frames or description do not exist yet are counted as this run would make
them: `llm_max_frames` frames at the configured frame size, a description of expected length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from gettok.models.campaign import Campaign
from gettok.models.schema import (
    AnnotationKind,
    Frame,
    MediaInfo,
)
from gettok.tasks.annotate import store as annotate_store
from gettok.tasks.annotate.annotator import (
    REQUESTED_KINDS,
    KindPlan,
    VideoInputs,
    build_request,
    load_inputs,
    plan_for,
)
from gettok.tasks.annotate.prompts import load_prompt
from gettok.tasks.frames import store as frames_store
from gettok.tasks.frames.extract import frame_settings
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from gettok import db
from gettok.clients.llm_budget import cost_usd
from gettok.settings import Settings

DEFAULT_FRAME_SIZE = (720, 1280)  # TikTok's usual portrait size, when nothing was probed
ID_BATCH = 5000  # videos per keyset page (and per IN list of the prompts' inputs)


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

    Pending videos are read a keyset page at a time and only their running totals kept, so the
    memory holds a page (and the ids a description would be made for) whatever the backlog."""
    plans = [p for k in kinds or REQUESTED_KINDS if (p := plan_for(k, campaign, settings))]
    estimates = []
    with db.session_scope(database_url) as session:
        to_describe: set[int] = set()
        to_summarise: set[int] = set()
        for plan in plans:
            estimate = KindEstimate(kind=plan.kind.value, model=plan.model)
            estimate.stale = annotate_store.count_stale(session, campaign.name, plan)
            pending: set[int] = set()
            for ids in _pages(
                lambda after, plan=plan: annotate_store.pending_videos(
                    session,
                    campaign.name,
                    plan,
                    max_tries=settings.llm_invalid_max_tries,
                    after=after,
                    limit=ID_BATCH,
                )
            ):
                for video_inputs in load_inputs(session, ids).values():
                    _add(estimate, plan, video_inputs, settings)
                pending.update(ids)
            if plan.kind is AnnotationKind.description:
                for video_id, size in _videos_without_frames(
                    session, database_url, settings, campaign.name
                ):
                    frames = _planned_frames(settings, size)
                    _add(estimate, plan, VideoInputs(video_id, frames=frames), settings)
                    pending.add(video_id)
                to_describe = pending
            elif plan.kind is AnnotationKind.stance:
                expected = "x" * 4 * load_prompt("description").expected_output_tokens
                for video_id in sorted(to_describe - pending):
                    _add(estimate, plan, VideoInputs(video_id, description=expected), settings)
            elif plan.kind is AnnotationKind.summary:
                to_summarise = pending
            elif plan.kind is AnnotationKind.summary_check:
                # Videos whose summary this run will write get a check of it too.
                expected = "x" * 4 * load_prompt("summary").expected_output_tokens
                later = sorted(to_summarise - pending)
                for start in range(0, len(later), ID_BATCH):
                    for video_id, read in load_inputs(
                        session, later[start : start + ID_BATCH]
                    ).items():
                        checked = VideoInputs(
                            video_id, transcript=read.transcript, summary=expected
                        )
                        _add(estimate, plan, checked, settings)
            estimates.append(estimate)
    budget = settings.llm_budget_usd if budget_usd is None else budget_usd
    return CostEstimate(
        kinds=estimates, total_usd=sum(e.cost_usd for e in estimates), budget_usd=budget
    )


def _pages(fetch: Callable[[int | None], list[int]]) -> Iterator[list[int]]:
    """Keyset pages of ids: `fetch(after)` answers the ids past `after`, in order."""
    after = None
    while ids := fetch(after):
        yield ids
        after = ids[-1]


def _add(estimate: KindEstimate, plan: KindPlan, inputs: VideoInputs, settings: Settings) -> None:
    tokens_in, tokens_out = build_request(plan, inputs, settings, media_dir=None).estimated_tokens()
    estimate.videos += 1
    estimate.input_tokens += tokens_in
    estimate.output_tokens += tokens_out
    estimate.cost_usd += cost_usd(settings, plan.model, tokens_in, tokens_out)


def _videos_without_frames(
    session: Session, database_url: str, settings: Settings, campaign_name: str
) -> Iterator[tuple[int, tuple[int, int]]]:
    """The videos the frames stage would work on now, with their probed size, a page at a time."""
    digest = frames_store.settings_hash(frame_settings(settings))
    for ids in _pages(
        lambda after: [
            d.video_id
            for d in frames_store.pending_videos(
                database_url, digest, campaign_name, limit=ID_BATCH, after=after
            )
        ]
    ):
        sizes = {
            video_id: (width, height)
            for video_id, width, height in session.execute(
                select(MediaInfo.video_id, MediaInfo.width, MediaInfo.height).where(
                    MediaInfo.video_id.between(ids[0], ids[-1])
                )
            )
            if width and height
        }
        yield from ((video_id, sizes.get(video_id, DEFAULT_FRAME_SIZE)) for video_id in ids)


def _planned_frames(settings: Settings, size: tuple[int, int]) -> list[Frame]:
    scale = min(1.0, settings.frame_max_side / max(size))
    width, height = round(size[0] * scale), round(size[1] * scale)
    count = min(settings.llm_max_frames, settings.frame_max_per_video)
    return [
        Frame(id=None, frame_index=i, path="", width=width, height=height) for i in range(count)
    ]
