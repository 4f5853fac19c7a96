"""Every query of the annotate stage: what is pending, and the annotation rows (one per video,
kind, model and prompt hash, with the provenance that made it).

A description writes two rows from its one request (the description and the on-screen text);
the request's tokens and cost go on the description row only, so sums over rows stay true. A
`failed` row (the server's fault) is replaced by the next run's answer, and so is an `invalid` one
until it has had `llm_invalid_max_tries` tries (counted in `tries`); any other status stands.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from gettok import db, watermarks
from gettok.clients.llm import LlmOutcome
from gettok.keyset import id_bounds, inner_bounds
from gettok.membership import campaign_videos
from gettok.models.annotations import Sentiment
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    AnnotationStatus,
    CampaignVideo,
    Frame,
    FrameExtraction,
    Transcript,
    Video,
    utcnow,
)
from gettok.settings import Settings
from gettok.tasks.annotate.provenance import current_transcript_exists, inputs_key, is_stale

if TYPE_CHECKING:
    from gettok.tasks.annotate.annotator import KindPlan, VideoInputs
    from gettok.tasks.annotate.local_run import LocalPlan


def _asked_again(max_tries: int):
    """Rows a later run asks again: failed, or invalid with tries left."""
    return or_(
        Annotation.status == AnnotationStatus.failed,
        and_(Annotation.status == AnnotationStatus.invalid, Annotation.tries < max_tries),
    )


def _has_final(
    kind: AnnotationKind,
    model: str | None = None,
    prompt_hash: str | None = None,
    max_tries: int = 1,
    after: int | None = None,
    until: int | None = None,
):
    clauses = [
        Annotation.video_id == Video.id,
        *inner_bounds(after, until, Annotation.video_id),  # read only a page's range of them
        Annotation.kind == kind,
        ~_asked_again(max_tries),
        ~is_stale(Annotation),  # made from an old transcript or frames: redone
    ]
    if model is not None:
        clauses += [Annotation.model == model, Annotation.prompt_hash == prompt_hash]
    return exists().where(*clauses)


def _has_ok(kind: AnnotationKind):
    return exists().where(
        Annotation.video_id == Video.id,
        Annotation.kind == kind,
        Annotation.status == AnnotationStatus.ok,
    )


def latest_ok(kind: AnnotationKind) -> Select:
    """The ok annotations of `kind`, oldest first (so the newest wins a dict)."""
    return (
        select(Annotation)
        .where(
            Annotation.kind == kind,
            Annotation.status == AnnotationStatus.ok,
        )
        .order_by(Annotation.created_at, Annotation.id)
    )


def _has_transcript_text():
    return current_transcript_exists(Video.id)


def pending_videos(
    session: Session,
    campaign_name: str | None,
    plan: KindPlan,
    among: list[int] | None = None,
    max_tries: int = 3,
    *,
    after: int | None = None,
    until: int | None = None,
    limit: int | None = None,
) -> list[int]:
    """Videos of the campaign (or of `among`) with this kind's inputs and no final annotation of
    this plan (an invalid one with fewer than `max_tries` tries is not final, nor a stale one); in
    id order, a keyset page (ids in (after, until], `limit` of them) when asked."""
    query = pending_query(campaign_name, plan, max_tries, among=among, after=after, until=until)
    return list(session.scalars(query.order_by(Video.id).limit(limit)))


def count_pending(
    session: Session,
    campaign_name: str,
    plan: KindPlan,
    max_tries: int = 3,
    *,
    after: int | None = None,
) -> int:
    """How many videos `pending_videos` would list, without reading them."""
    query = pending_query(campaign_name, plan, max_tries, after=after)
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def pending_query(
    campaign_name: str | None,
    plan: KindPlan,
    max_tries: int = 3,
    *,
    among: list[int] | None = None,
    after: int | None = None,
    until: int | None = None,
) -> Select:
    """The SELECT of the ids `pending_videos` lists (unordered), to count or combine in SQL."""
    query = select(Video.id).where(
        ~_has_final(plan.kind, plan.model, plan.prompt_hash, max_tries, after, until),
    )
    if campaign_name is not None:  # None: `among` are the campaign's members already
        query = query.where(Video.id.in_(campaign_videos(campaign_name, after=after, until=until)))
    if among is not None:
        query = query.where(Video.id.in_(among), Video.pruned_at.is_(None))
    if plan.kind is AnnotationKind.description:
        query = query.where(exists().where(Frame.video_id == Video.id))
    elif plan.kind is AnnotationKind.stance:
        query = query.where(_has_final(AnnotationKind.description))
    elif plan.kind is AnnotationKind.summary_check:
        query = query.where(_has_transcript_text(), _has_ok(AnnotationKind.summary))
    else:
        query = query.where(_has_transcript_text())
    return query.where(*id_bounds(after, until, Video.id))


def changed_since(url: str, campaign_id: int, since: datetime) -> set[int]:
    """The campaign's members any kind's input changed for after `since`: joined, transcribed,
    framed, or annotated (a description for stance, a summary for its check; an overwritten
    answer counts as new), each read from the index on its time."""
    member = CampaignVideo.campaign_id == campaign_id
    joined = select(CampaignVideo.video_id).where(member, CampaignVideo.first_seen_at > since)
    queries = [joined]
    for video, made in (
        (Transcript.video_id, Transcript.created_at),
        (FrameExtraction.video_id, FrameExtraction.recorded_at),
        (Annotation.video_id, Annotation.created_at),
    ):
        on = (CampaignVideo.video_id == video) & member
        queries.append(select(video).join(CampaignVideo, on).where(made > since))
    with db.session_scope(url) as session:
        return {i for query in queries for i in session.scalars(query)}


def asked_again(url: str, campaign_id: int, plan: KindPlan | LocalPlan, max_tries: int) -> set[int]:
    """The campaign's members whose answer of this plan a later run asks again (failed, or
    invalid with tries left), read by status: the retries a pass past the watermark adds."""
    on = (CampaignVideo.video_id == Annotation.video_id) & (
        CampaignVideo.campaign_id == campaign_id
    )
    query = (
        select(Annotation.video_id)
        .join(CampaignVideo, on)
        .where(
            Annotation.status.in_([AnnotationStatus.failed, AnnotationStatus.invalid]),
            _asked_again(max_tries),
            Annotation.kind == plan.kind,
            Annotation.model == plan.model,
            Annotation.prompt_hash == plan.prompt_hash,
        )
    )
    with db.session_scope(url) as session:
        return set(session.scalars(query))


def plan_pages(
    url: str,
    campaign_name: str,
    plan: KindPlan | LocalPlan,
    max_tries: int,
    size: int,
    sweep: watermarks.Sweep | None = None,
) -> watermarks.SweepPages:
    """The videos pending `plan`, `size` at a time, each page read when the batch before it is
    done, the campaign's ids looked at a range at a time (`in_id_ranges`); past the stage's
    watermark (`sweep`), only among the members whose inputs changed since, and the retries."""

    def between(after: int | None, until: int, n: int) -> list[int]:
        with db.session_scope(url) as session:
            return pending_videos(
                session, campaign_name, plan, max_tries=max_tries, after=after, until=until, limit=n
            )

    def among(ids: list[int], n: int) -> list[int]:  # members already: no campaign to join
        with db.session_scope(url) as session:
            return pending_videos(session, None, plan, ids, max_tries, limit=n)

    def ready(sweep: watermarks.Sweep) -> list[int]:
        changed = changed_since(url, sweep.campaign_id, sweep.since)
        return sorted(changed | asked_again(url, sweep.campaign_id, plan, max_tries))

    return watermarks.downstream_pages(url, sweep, campaign_name, between, among, size, ready=ready)


def plan_fingerprint(plan: KindPlan | LocalPlan, max_tries: int) -> str:
    """What decides a plan's pending work: the stage's watermark is kept per this."""
    return watermarks.fingerprint(plan.kind.value, plan.model, plan.prompt_hash, str(max_tries))


def settle(
    sweep: watermarks.Sweep | None,
    pages: watermarks.SweepPages,
    plan: KindPlan | LocalPlan,
    max_tries: int,
) -> None:
    """After a pass: the plan's watermark moves on if nothing the pass met is still pending but
    the answers a later run asks again anyway (`asked_again`)."""
    if sweep is None:
        return
    url = sweep.url

    def still_pending(ids: list[int]) -> list[int]:
        with db.session_scope(url) as session:
            return list(session.scalars(pending_query(None, plan, max_tries, among=ids)))

    retried = asked_again(url, sweep.campaign_id, plan, max_tries)
    watermarks.finish_if_settled(sweep, pages, still_pending, retried)


def count_stale(session: Session, campaign_name: str, plan: KindPlan) -> int:
    """Videos whose annotation of this plan is stale (made from an old transcript or frames)
    and not yet redone: the next run asks for them again."""
    same_plan = (
        Annotation.video_id == Video.id,
        Annotation.kind == plan.kind,
        Annotation.model == plan.model,
        Annotation.prompt_hash == plan.prompt_hash,
    )
    stale = exists().where(*same_plan, is_stale(Annotation))
    fresh = exists().where(*same_plan, ~is_stale(Annotation))
    query = select(func.count()).where(Video.id.in_(campaign_videos(campaign_name)), stale, ~fresh)
    return session.scalar(query) or 0


def count_stale_annotations(url: str, campaign_name: str) -> int:
    """The campaign's stale annotations not yet redone (any kind, model and prompt)."""
    fresh = aliased(Annotation)
    redone = exists().where(
        fresh.video_id == Annotation.video_id,
        fresh.kind == Annotation.kind,
        fresh.model == Annotation.model,
        fresh.prompt_hash == Annotation.prompt_hash,
        ~is_stale(fresh),
    )
    query = select(func.count()).where(
        Annotation.video_id.in_(campaign_videos(campaign_name)),
        is_stale(Annotation),
        ~redone,
    )
    with db.session_scope(url) as session:
        return session.scalar(query) or 0


def record_annotation(
    database_url: str,
    plan: KindPlan,
    inputs: VideoInputs,
    frames: list[Frame],
    outcome: LlmOutcome,
    settings: Settings,
    low_confidence_below: float,
) -> None:
    """Write (or replace a failed) annotation row; a description also writes on-screen text."""
    provenance = _provenance(plan, inputs, frames, outcome, settings)
    rows = {plan.kind: outcome.value}
    if plan.kind is AnnotationKind.sentiment and outcome.value is not None:
        rows[plan.kind] = _sentiment(outcome.value, low_confidence_below)
        provenance["low_confidence_below"] = low_confidence_below
    if plan.kind is AnnotationKind.description:
        rows = _description_rows(outcome.value)
    chain = _input_chain(plan, inputs, frames)
    key = inputs_key(**chain)
    with db.session_scope(database_url) as session:
        for kind, value in rows.items():
            fields = _row_fields(kind, value, plan, outcome, settings, provenance, frames, chain)
            _write_row(session, plan, inputs.video_id, kind, key, fields)
        try:
            session.flush()
        except IntegrityError:  # another worker wrote it first: theirs stands
            session.rollback()


def _provenance(
    plan: KindPlan,
    inputs: VideoInputs,
    frames: list[Frame],
    outcome: LlmOutcome,
    settings: Settings,
) -> dict:
    """How the annotation was asked for and what it was asked about (the row's `settings`)."""
    return {
        "prompt_id": plan.prompt.id,
        "prompt_version": plan.prompt.version,
        "temperature": settings.llm_temperature,
        "image_detail": settings.llm_image_detail if frames else None,
        "max_output_tokens": plan.prompt.max_output_tokens,
        "server": _server_name(settings.openai_base_url),
        "served_model": outcome.served_model,
        "attempts": outcome.attempts,
        "usage_estimated": outcome.usage_estimated,
        "inputs": {
            "transcript_id": inputs.transcript_id
            if plan.kind is not AnnotationKind.description
            else None,
            "description_annotation_id": inputs.description_id
            if plan.kind is AnnotationKind.stance
            else None,
            "summary_annotation_id": inputs.summary_id
            if plan.kind is AnnotationKind.summary_check
            else None,
            "frame_ids": [f.id for f in frames],
        },
        **plan.fixed,
    }


def _sentiment(value: dict, low_confidence_below: float) -> dict:
    """A sentiment answer, flagged when its confidence is under the study's threshold."""
    low = value["confidence"] < low_confidence_below
    return Sentiment(**value, low_confidence=low).model_dump()


def _description_rows(value: dict | None) -> dict[AnnotationKind, dict | None]:
    """One description answer as two rows: the description and the on-screen text."""
    value = value or {}
    return {
        AnnotationKind.description: {"description": value["description"]} if value else None,
        AnnotationKind.onscreen_text: {"onscreen_text": value["onscreen_text"]} if value else None,
    }


def _input_chain(plan: KindPlan, inputs: VideoInputs, frames: list[Frame]) -> dict:
    """The inputs an annotation was made from, which a rerun compares to find it stale."""
    transcript_id = inputs.transcript_id if plan.kind is not AnnotationKind.description else None
    return {
        "transcript_id": transcript_id,
        "transcript_sha256": inputs.transcript_sha256 if transcript_id is not None else None,
        "first_frame_id": min((f.id for f in frames), default=None),
    }


def _row_fields(
    kind: AnnotationKind,
    value: dict | None,
    plan: KindPlan,
    outcome: LlmOutcome,
    settings: Settings,
    provenance: dict,
    frames: list[Frame],
    chain: dict,
) -> dict:
    """The columns of one annotation row, besides its identifying key."""
    shares_request = kind is AnnotationKind.onscreen_text
    return {
        "status": outcome.status,
        "value": value,
        "error": outcome.error,
        "prompt_id": plan.prompt.name,
        "settings": {**provenance, "same_request_as": "description"}
        if shares_request
        else provenance,
        "temperature": settings.llm_temperature,
        # One request, one bill: tokens and cost are on the description row only.
        "input_tokens": 0 if shares_request else outcome.input_tokens,
        "output_tokens": 0 if shares_request else outcome.output_tokens,
        "cost_usd": 0.0 if shares_request else outcome.cost_usd,
        "latency_ms": outcome.latency_ms,
        "is_sandbox": outcome.is_sandbox,
        "frame_id": frames[0].id if len(frames) == 1 else None,
        "created_at": outcome.created_at or utcnow(),
        **chain,
    }


def _write_row(
    session: Session,
    plan: KindPlan,
    video_id: int,
    kind: AnnotationKind,
    key: str,
    fields: dict,
) -> None:
    """Add the row, or overwrite a failed or invalid one (counting the try); an ok row stands."""
    existing = session.scalar(
        select(Annotation).where(
            Annotation.video_id == video_id,
            Annotation.kind == kind,
            Annotation.model == plan.model,
            Annotation.prompt_hash == plan.prompt_hash,
            Annotation.inputs_key == key,
        )
    )
    if existing is None:
        session.add(
            Annotation(
                video_id=video_id,
                kind=kind,
                model=plan.model,
                prompt_hash=plan.prompt_hash,
                inputs_key=key,
                **fields,
            )
        )
    elif existing.status in (AnnotationStatus.failed, AnnotationStatus.invalid):
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.tries = (existing.tries or 1) + 1


def _server_name(base_url: str | None) -> str:
    """Scheme, host and path of the server, without any credentials in the URL."""
    if not base_url:
        return "https://api.openai.com/v1"
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
