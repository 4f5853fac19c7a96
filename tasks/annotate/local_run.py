"""Annotate with a local classifier instead of the LLM (`GETTOK_SENTIMENT_ENGINE=zero-shot`,
`GETTOK_SUMMARY_CHECK_ENGINE=nli`): the same pending query, claims and rows as the LLM's, with
the model, engine and settings in the provenance and no tokens or cost."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from gettok import claims, db, watermarks
from gettok.models.campaign import Campaign
from gettok.models.schema import Annotation, AnnotationKind, AnnotationStatus, utcnow
from gettok.settings import Settings
from gettok.tasks.annotate import store
from gettok.tasks.annotate.annotator import AnnotateResult, VideoInputs, load_inputs
from gettok.tasks.annotate.local_models import (
    LocalClassifier,
    NliSummaryCheck,
    ZeroShotSentiment,
)

BATCH = 64


@dataclass(frozen=True)
class LocalPlan:
    """What the pending query needs of a plan: the kind, the model and the settings' hash."""

    kind: AnnotationKind
    model: str
    prompt_hash: str

    @property
    def stage(self) -> str:
        return f"annotate:{self.kind.value}"


def local_classifier(kind: str, settings: Settings) -> LocalClassifier | None:
    """The local classifier the settings choose for `kind`, or None (the LLM answers it)."""
    if kind == "sentiment" and settings.sentiment_engine == "zero-shot":
        return ZeroShotSentiment(
            settings.sentiment_zero_shot_model, settings.sentiment_low_confidence
        )
    if kind == "summary_check" and settings.summary_check_engine == "nli":
        return NliSummaryCheck(settings.summary_check_nli_model)
    return None


def annotate_locally(
    database_url: str,
    settings: Settings,
    campaign: Campaign,
    classifier: LocalClassifier,
    kind: str,
) -> AnnotateResult:
    """Every pending video of the campaign, a page of `BATCH` at a time (read when the batch
    before it is done), claimed while it is classified."""
    plan = LocalPlan(AnnotationKind(kind), classifier.model, classifier.settings_hash)
    result = AnnotateResult(kind=kind, model=plan.model, prompt_hash=plan.prompt_hash)
    fingerprint = store.plan_fingerprint(plan, 1)
    sweep = watermarks.begin(database_url, campaign.name, plan.stage, fingerprint)
    pages = store.plan_pages(database_url, campaign.name, plan, 1, BATCH, sweep)
    for batch in pages:
        held = claims.claim(database_url, plan.stage, batch, lease_s=600)
        try:
            with db.session_scope(database_url) as session:
                todo = store.pending_videos(session, campaign.name, plan, held, max_tries=1)
                inputs = load_inputs(session, todo)
            answers = _classify(classifier, plan.kind, [inputs[i] for i in todo])
            _record(database_url, plan, classifier, [inputs[i] for i in todo], answers)
        finally:
            claims.release(database_url, plan.stage, held)
        result.done += len(todo)
        result.skipped_taken += len(batch) - len(todo)
    store.settle(sweep, pages, plan, 1)
    return result


def _classify(classifier, kind: AnnotationKind, inputs: list[VideoInputs]) -> list[dict]:
    if not inputs:
        return []
    if kind is AnnotationKind.sentiment:
        return classifier.classify([i.transcript for i in inputs])
    return classifier.classify([(i.transcript, i.summary) for i in inputs])


def _record(url: str, plan: LocalPlan, classifier, inputs: list[VideoInputs], answers) -> None:
    with db.session_scope(url) as session:
        for video, value in zip(inputs, answers, strict=True):
            used = {"transcript_id": video.transcript_id}
            if plan.kind is AnnotationKind.summary_check:
                used["summary_annotation_id"] = video.summary_id
            session.add(
                Annotation(
                    video_id=video.video_id,
                    kind=plan.kind,
                    status=AnnotationStatus.ok,
                    value=value,
                    model=plan.model,
                    prompt_id=classifier.engine,
                    prompt_hash=plan.prompt_hash,
                    settings={**classifier.provenance, "inputs": used},
                    input_tokens=0,
                    output_tokens=0,
                    cost_usd=0.0,
                    created_at=utcnow(),
                )
            )
        try:
            session.flush()
        except IntegrityError:  # another worker recorded them first: theirs stand
            session.rollback()
