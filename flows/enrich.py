"""Enrich: extract frames, describe each video and read its on-screen text, classify its stance
towards the campaign's target, label the sentiment of its transcript, and summarise it.

Every step works on what is pending in the database, in batches, so a rerun (after a crash, or the
next day) does only what is left. The LLM steps share one budget per run; what the budget leaves
is counted and stays pending. `enrich_campaign` is the core, callable without Prefect.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from gettok.clients.llm import LlmClient, LlmUnavailable
from gettok.clients.llm_budget import Budget
from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import Campaign, load_campaign
from gettok.retry import DAY, HOUR, task_retries
from gettok.settings import Settings, get_settings
from gettok.stage import StageResult, publish
from gettok.tasks.annotate.annotator import (
    AnnotateResult,
    annotate_videos,
)
from gettok.tasks.annotate.campaign import BatchRunner, annotate_campaign
from gettok.tasks.annotate.cost import CostEstimate, estimate_enrich
from gettok.tasks.frames import (
    FramesResult,
    extract_campaign_frames,
    extract_frames,
    extract_frames_batch,
)
from gettok.tasks.frames.campaign import FramesRunner


class EnrichResult(BaseModel):
    """What one enrich run did: frames, then each annotation kind, against its budget."""

    campaign: str
    frames: FramesResult = Field(default_factory=FramesResult)
    kinds: list[AnnotateResult] = Field(default_factory=list)
    budget_usd: float
    spent_usd: float = 0.0

    @property
    def skipped_budget(self) -> int:
        return sum(k.skipped_budget for k in self.kinds)

    def stage_result(self) -> StageResult:
        """The annotate stage over every kind (frames report their own)."""
        total = StageResult(stage="annotate")
        for kind in self.kinds:
            total = total.merge(kind.stage_result())
        return total

    def summary(self) -> str:
        lines = [
            f"enrich {self.campaign}: frames for {self.frames.videos_done} video(s) "
            f"({self.frames.frames_written} frames, {sum(self.frames.failed.values())} failed); "
            f"spent ${self.spent_usd:.4f} of ${self.budget_usd:.2f}"
        ]
        for k in self.kinds:
            lines.append(
                f"  {k.kind} ({k.model}): {k.done} done, {k.refused} refused, {k.invalid} invalid, "
                f"{k.failed} failed, {k.skipped_budget} left for budget, "
                f"{k.missing_input} missing input; {k.input_tokens}+{k.output_tokens} tokens, "
                f"${k.cost_usd:.4f}"
            )
        return "\n".join(lines)


def enrich_campaign(
    campaign: Campaign,
    settings: Settings,
    *,
    kinds: list[str] | None = None,
    budget_usd: float | None = None,
    frames: bool = True,
    run_frames: FramesRunner = extract_frames,
    run_batch: BatchRunner = annotate_videos,
    log: logging.Logger | logging.LoggerAdapter | None = None,
    shared_rate_limit: str | None = None,
) -> EnrichResult:
    """Frames, then every configured kind over what is pending, in batches, within the budget."""
    log = log or logging.getLogger(__name__)
    url = settings.resolved_database_url
    budget = Budget(settings.llm_budget_usd if budget_usd is None else budget_usd)
    result = EnrichResult(campaign=campaign.name, budget_usd=budget.limit_usd)
    if frames:
        result.frames = extract_campaign_frames(url, settings, campaign.name, run_frames)
        log.info("frames: %s", result.frames.model_dump(exclude={"failures"}))
    try:
        result.kinds = annotate_campaign(
            campaign,
            settings,
            budget,
            kinds=kinds,
            run_batch=run_batch,
            log=log,
            shared_rate_limit=shared_rate_limit,
        )
    except Exception as exc:
        # What was spent before the stop is spent: the caller's run budget must count it.
        exc.llm_spent_usd = budget.spent_usd
        spent = f"${budget.spent_usd:.4f} of ${budget.limit_usd:.2f}"
        exc.add_note(f"LLM spend before the stop: {spent}")
        log.error("annotation stopped after spending %s: %s", spent, exc)
        raise
    finally:
        result.spent_usd = budget.spent_usd
    if result.skipped_budget:
        log.warning(
            "the budget of $%.2f was reached: %d request(s) left pending for a later run",
            budget.limit_usd,
            result.skipped_budget,
        )
    return result


def _retry_unless_unavailable(task, task_run, state) -> bool:
    """Retry a batch, except when the server refuses everything (key, model): that needs a fix."""
    try:
        state.result()
    except LlmUnavailable:
        return False
    except Exception:  # noqa: BLE001 - any other failure is worth another try
        return True
    return True


# Retries of a whole batch cover the database going away; the LLM's own faults are retried per
# request inside, and a batch rerun skips what it already stored.
@task(
    name="annotate-batch",
    **task_retries("database"),
    retry_condition_fn=_retry_unless_unavailable,
    # 250 videos (llm_batch_size) at 5 requests/s take minutes; a batch still going after 6 h
    # has a server that stalls nearly every request: better stopped (a rerun skips what is stored).
    timeout_seconds=6 * HOUR,
    cache_policy=NO_CACHE,
    task_run_name="annotate-{kind}[{video_ids[0]}..]",
)
def annotate_batch(
    database_url: str,
    settings: Settings,
    campaign: Campaign,
    kind: str,
    video_ids: list[int],
    *,
    client: LlmClient,
    budget: Budget,
) -> AnnotateResult:
    return annotate_videos(
        database_url, settings, campaign, kind, video_ids, client=client, budget=budget
    )


def require_rate_limit(name: str) -> None:
    """Fail before any request when the named limit is missing (`gettok setup` creates it),
    rather than record a failure for every video."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            raise ValueError(
                f"no Prefect global concurrency limit {name!r}: run `gettok setup` first"
            ) from None


# A backlog of a whole campaign (tens of thousands of videos, several kinds, at 5 requests/s) takes
# hours; two days means it hangs. The next run carries on from what is stored.
@flow(name="enrich", log_prints=False, timeout_seconds=2 * DAY)
def enrich(
    campaign_file: str,
    kinds: list[str] | None = None,
    budget_usd: float | None = None,
    dry_run: bool = False,
    shared_rate_limit: str | None = None,
) -> EnrichResult | CostEstimate:
    """Frames and LLM annotations for what is pending; `dry_run` only estimates the cost.

    `shared_rate_limit` names a Prefect global rate limit (`gettok setup` creates "llm-rate")
    that every LLM request takes a slot of, so that all workers together stay under it."""
    settings = get_settings()
    campaign = load_campaign(Path(campaign_file))
    log = get_run_logger()
    if shared_rate_limit and not dry_run:
        require_rate_limit(shared_rate_limit)
    if dry_run:
        estimate = estimate_enrich(
            settings.resolved_database_url, settings, campaign, kinds, budget_usd
        )
        log.info("dry run: %s", estimate.model_dump_json())
        return estimate
    result = enrich_campaign(
        campaign,
        settings,
        kinds=kinds,
        budget_usd=budget_usd,
        run_frames=extract_frames_batch,
        run_batch=annotate_batch,
        log=log,
        shared_rate_limit=shared_rate_limit,
    )
    log.info(result.summary())
    try:
        publish(result.frames.stage_result(), artifact_key("frames-result", campaign.name), log)
        publish(result.stage_result(), artifact_key("annotate-result", campaign.name), log)
        create_markdown_artifact(
            key=artifact_key("enrich", campaign.name),
            markdown=f"```\n{result.summary()}\n```",
            description=f"enrich run for {campaign.name}",
        )
    except Exception as exc:
        exc.llm_spent_usd = result.spent_usd  # spent all the same: the run's budget counts it
        raise
    return result


if __name__ == "__main__":
    import sys

    print(enrich(campaign_file=sys.argv[1]).summary())
