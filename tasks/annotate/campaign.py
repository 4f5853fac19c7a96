"""A campaign's annotations: every requested kind over what is pending, in batches, within one
budget. What the budget leaves is counted and stays pending for a later run."""

from __future__ import annotations

import logging
from collections.abc import Callable

from gettok import db, watermarks
from gettok.clients.llm import LlmClient
from gettok.clients.llm_budget import Budget, price_for
from gettok.keyset import KeysetPages
from gettok.models.campaign import Campaign
from gettok.retry import rate_limit
from gettok.settings import Settings
from gettok.tasks.annotate import store
from gettok.tasks.annotate.annotator import (
    REQUESTED_KINDS,
    AnnotateResult,
    KindPlan,
    annotate_videos,
    plan_for,
)
from gettok.tasks.annotate.local_run import annotate_locally, local_classifier

BatchRunner = Callable[..., AnnotateResult]


def annotate_campaign(
    campaign: Campaign,
    settings: Settings,
    budget: Budget,
    *,
    kinds: list[str] | None = None,
    run_batch: BatchRunner = annotate_videos,
    log: logging.Logger | logging.LoggerAdapter | None = None,
    shared_rate_limit: str | None = None,
) -> list[AnnotateResult]:
    """Every configured kind over what is pending, one result per kind, in order."""
    log = log or logging.getLogger(__name__)
    url = settings.resolved_database_url
    plans = [p for k in kinds or REQUESTED_KINDS if (p := plan_for(k, campaign, settings))]
    for plan in plans:
        price_for(settings, plan.model)  # an unknown price stops the run before any request
    hook = rate_limit(shared_rate_limit) if shared_rate_limit else None
    client = LlmClient(settings, before_request=hook)
    results = []
    try:
        for plan in plans:
            total = AnnotateResult(
                kind=plan.kind.value, model=plan.model, prompt_hash=plan.prompt_hash
            )
            max_tries = settings.llm_invalid_max_tries
            fingerprint = store.plan_fingerprint(plan, max_tries)
            sweep = watermarks.begin(url, campaign.name, plan.stage, fingerprint)
            pages = pending_pages(url, campaign, plan, settings, sweep)
            for batch in pages:
                if budget.reached:  # nothing more will be sent: count, do not claim and load
                    total.skipped_budget += len(batch) + _count_rest(
                        url, campaign, plan, settings, pages, sweep
                    )
                    break
                total.add(
                    run_batch(
                        url,
                        settings,
                        campaign,
                        plan.kind.value,
                        batch,
                        client=client,
                        budget=budget,
                    )
                )
            else:
                store.settle(sweep, pages, plan, max_tries)
            results.append(total)
            log.info("%s: %s", plan.kind.value, total.model_dump())
    finally:
        client.close()
    for kind in kinds or REQUESTED_KINDS:  # after the LLM's: a summary check reads summaries
        classifier = local_classifier(kind, settings)
        if classifier is not None:
            results.append(annotate_locally(url, settings, campaign, classifier, kind))
            log.info("%s (local %s): %s", kind, classifier.model, results[-1].model_dump())
    return results


def pending_pages(
    url: str,
    campaign: Campaign,
    plan: KindPlan,
    settings: Settings,
    sweep: watermarks.Sweep | None = None,
) -> KeysetPages[int, int]:
    """The videos pending `plan`, `llm_batch_size` at a time (`store.plan_pages`)."""
    max_tries, size = settings.llm_invalid_max_tries, settings.llm_batch_size
    return store.plan_pages(url, campaign.name, plan, max_tries, size, sweep)


def _count_rest(
    url: str,
    campaign: Campaign,
    plan: KindPlan,
    settings: Settings,
    pages: KeysetPages[int, int],
    sweep: watermarks.Sweep | None,
) -> int:
    """What is still pending past the last page read: left for the budget, never read."""
    if sweep is not None and not sweep.whole:  # the members changed since the mark: few
        return sum(len(page) for page in pages)
    with db.session_scope(url) as session:
        return store.count_pending(
            session, campaign.name, plan, settings.llm_invalid_max_tries, after=pages.after
        )
