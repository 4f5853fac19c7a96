"""The pipeline: collect a campaign window by window, and process each window as soon as it is in.

Method: the date range is cut into UTC windows. Windows are collected one after another (the
quota-bound part, checkpointed page by page); after each, its videos go to download, transcription
and enrichment while the next window is collected, so downloads start before videos go private and
the GPU never waits on collection. A last sweep retries dropped connections after their back-off
and processes anything left. Every stage works on what the database says is pending, so a rerun
after a crash does only what is left. A scheduled run takes its day from the scheduled time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from prefect import allow_failure, flow, get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from gettok.clients.llm import LlmUnavailable
from gettok.flows.artifact_keys import artifact_key
from gettok.flows.collect import run_window_in_prefect
from gettok.flows.comments import comments
from gettok.flows.download import download
from gettok.flows.enrich import enrich
from gettok.flows.transcribe import transcribe
from gettok.models.campaign import Campaign, load_campaign
from gettok.orchestration import DOWNLOAD_RATE_LIMIT, LLM_RATE_LIMIT
from gettok.progress import StageCounts, stage_counts
from gettok.retry import DAY, task_retries
from gettok.settings import Settings, get_settings
from gettok.tasks.collect import CollectResult, WindowOutcome, collect_campaign


class RunDates(BaseModel):
    start: date
    end: date
    scheduled_day: date | None = None  # the day a scheduled run is for (None: a backfill)


def run_dates(
    campaign: Campaign,
    start_date: date | None,
    end_date: date | None,
    scheduled_at: datetime | None,
    lag_days: int,
    catch_up_days: int,
) -> RunDates | None:
    """The days one run covers, inside the campaign's range; None when nothing is due.

    A backfill gives both dates. A scheduled run gives none: it collects the last whole UTC day
    that ended at least `lag_days` before the scheduled time (the API's index lags ~2 days), plus
    the `catch_up_days` before it, whose windows are skipped when done and resumed when not, so a
    failed or quota-cut day is never silently left behind.
    """
    if (start_date is None) != (end_date is None):
        raise ValueError("give both start_date and end_date (a backfill), or neither (scheduled)")
    if start_date is not None and end_date is not None:
        if end_date < start_date:
            raise ValueError(f"end_date {end_date} is before start_date {start_date}")
        return RunDates(start=start_date, end=end_date)
    at = (scheduled_at or datetime.now(UTC)).astimezone(UTC)
    day = (at - timedelta(days=lag_days)).date() - timedelta(days=1)
    start = max(day - timedelta(days=catch_up_days), campaign.start_date)
    end = min(day, campaign.end_date) if campaign.end_date else day
    if end < start:
        return None
    return RunDates(start=start, end=end, scheduled_day=day)


class PipelineResult(BaseModel):
    campaign: str
    start: date | None = None
    end: date | None = None
    collect_state: str = "nothing due"
    windows: int = 0
    batches: int = 0
    spent_usd: float = 0.0
    counts: StageCounts | None = None
    notes: list[str] = Field(default_factory=list)


@dataclass
class RunBudget:
    """The run's LLM budget, shared by its batches (they run one after another)."""

    limit_usd: float
    spent_usd: float = 0.0
    llm_stopped: str | None = None  # why the LLM refuses everything (key, model, balance)

    @property
    def left_usd(self) -> float:
        return max(0.0, self.limit_usd - self.spent_usd)


@dataclass
class BatchQueue:
    """How many processing batches the run has queued. A batch that starts with a later one
    already queued behind it leaves its videos to that one, since every stage works on all that
    is pending: when collection outruns processing (a backfill), 200 queued windows made 199
    passes over the whole campaign that found nothing (75 minutes of a 100k-video backfill)."""

    queued: int = 0


@dataclass(frozen=True)
class Stages:
    """What processing a batch of new videos means; the benchmark swaps in instant stages."""

    download: Callable[..., object] = download
    transcribe: Callable[..., object] = transcribe
    enrich: Callable[..., object] = enrich
    collect_window: Callable[..., WindowOutcome] = run_window_in_prefect


STAGES = Stages()


@task(
    name="process-new-videos",
    cache_policy=NO_CACHE,
    **task_retries("incomplete"),
    # A window's new videos through download, transcription (CPU: about real time) and the LLM:
    # hours for a busy day; a day means it hangs, and the next run does what is left.
    timeout_seconds=DAY,
    task_run_name="process[{label}]",
)
def process_new_videos(
    campaign: Campaign,
    campaign_file: str,
    label: str,
    final: bool,
    transcribe_deployment: str | None,
    budget: RunBudget,
    stages: Stages = STAGES,
    queue: BatchQueue | None = None,
    number: int = 0,
) -> None:
    """Download, transcribe and enrich what is pending (child flows), within the run's budget."""
    if queue is not None and queue.queued > number:
        get_run_logger().info(
            "left to batch %d, queued behind this one: it processes all that is pending",
            queue.queued,
        )
        return
    # Dropped connections wait ~100 s before they are asked again: only the final sweep waits.
    stages.download(
        campaign_file, transient_rounds=1 if final else 0, shared_rate_limit=DOWNLOAD_RATE_LIMIT
    )
    if transcribe_deployment:
        from prefect.deployments import run_deployment

        run = run_deployment(
            transcribe_deployment,
            parameters={"campaign_file": campaign_file},
            timeout=None,
            as_subflow=True,
        )
        if not run.state or not run.state.is_completed():
            raise RuntimeError(f"transcription run {run.name} ended {run.state and run.state.name}")
    else:
        stages.transcribe(campaign_file=campaign_file)
    if budget.llm_stopped:
        raise RuntimeError(f"the LLM stopped earlier in this run: {budget.llm_stopped}")
    try:
        enriched = stages.enrich(
            campaign_file=campaign_file,
            budget_usd=budget.left_usd,
            shared_rate_limit=LLM_RATE_LIMIT,
        )
    except Exception as exc:  # a failed enrich spent money too: the next batch must not
        budget.spent_usd += float(getattr(exc, "llm_spent_usd", 0.0))
        if isinstance(exc, LlmUnavailable):  # a key, model or balance: no later batch can do
            budget.llm_stopped = str(exc)
        raise
    budget.spent_usd += float(getattr(enriched, "spent_usd", 0.0))


def pipeline_run_name() -> str:
    params = flow_run.parameters
    name = Path(str(params.get("campaign_file", "campaign"))).stem
    start, end = params.get("start_date"), params.get("end_date")
    return (
        f"{name}-{start}-to-{end}"
        if start
        else f"{name}-scheduled-{flow_run.scheduled_start_time:%Y-%m-%d}"
    )


def run_pipeline(
    campaign: Campaign,
    campaign_file: str,
    settings: Settings,
    dates: RunDates,
    transcribe_deployment: str | None,
    budget_usd: float | None,
    stages: Stages = STAGES,
    comments_top_n: int | None = None,
) -> PipelineResult:
    """Collect window by window; each collected window starts processing at once (in order)."""
    result = PipelineResult(campaign=campaign.name, start=dates.start, end=dates.end)
    progress = CollectProgress(campaign.name, dates)
    budget = RunBudget(settings.llm_budget_usd if budget_usd is None else budget_usd)
    batches = ProcessingChain(campaign, campaign_file, transcribe_deployment, budget, stages)

    def after_window(outcome: WindowOutcome) -> None:
        progress.window_collected(outcome)
        if outcome.new_videos:
            batches.process(str(outcome.window), final=False)

    collected: CollectResult = collect_campaign(
        settings,
        campaign,
        dates.start,
        dates.end,
        run_window=stages.collect_window,
        on_window=after_window,
    )
    result.collect_state, result.windows = collected.state, len(collected.windows)
    if collected.deferred_after:
        result.notes.append(f"days after {collected.deferred_after} are not indexed yet")
    if comments_top_n is not None:
        result.notes.append(collect_top_comments(campaign_file, collected, comments_top_n))
    batches.process("final sweep", final=True)
    failed = batches.wait()
    if collected.aborted or collected.windows_failed:
        failed.insert(0, f"collect {collected.state}")
    result.spent_usd, result.batches = budget.spent_usd, len(batches.futures)
    publish_summary(result, settings, campaign.name, dates)
    if failed:
        # Published the summary first: the run fails, and says what it did get done.
        raise PipelineIncomplete(result, failed)
    return result


class CollectProgress:
    """The run's days collected, as a progress artifact and a log line per window."""

    def __init__(self, campaign_name: str, dates: RunDates):
        self.total_days = (dates.end - dates.start).days + 1
        self.days_done = 0
        self.logger = get_run_logger()
        self.artifact = create_progress_artifact(
            progress=0.0,
            key=artifact_key("pipeline-progress", campaign_name),
            description=f"{campaign_name} {dates.start}..{dates.end}: days collected",
        )

    def window_collected(self, outcome: WindowOutcome) -> None:
        """Count a window's days once it is done (or was already); log what it found."""
        if outcome.status in ("done", "skipped"):
            self.days_done += outcome.window.days
        progress = min(100.0, 100.0 * self.days_done / self.total_days)
        update_progress_artifact(self.artifact, progress=progress)
        self.logger.info(
            "window %s: %s, %d videos (%d new)",
            outcome.window,
            outcome.status,
            outcome.videos,
            outcome.new_videos,
        )


@dataclass
class ProcessingChain:
    """Processing batches run one after another, each started as its window is collected."""

    campaign: Campaign
    campaign_file: str
    transcribe_deployment: str | None
    budget: RunBudget
    stages: Stages
    futures: list[PrefectFuture] = field(default_factory=list)
    queue: BatchQueue = field(default_factory=BatchQueue)

    def process(self, label: str, final: bool) -> None:
        """Submit a batch to start once the previous one has ended."""
        self.queue.queued += 1
        self.futures.append(
            process_new_videos.submit(
                self.campaign,
                self.campaign_file,
                label,
                final,
                self.transcribe_deployment,
                self.budget,
                self.stages,
                self.queue,
                self.queue.queued,
                # In order, but a batch that failed must not stop the later ones.
                wait_for=[allow_failure(f) for f in self.futures[-1:]],
            )
        )

    def wait(self) -> list[str]:
        """Wait for every batch; why each that failed did."""
        for future in self.futures:
            future.wait()
        return [f.state.message or f.state.name for f in self.futures if not f.state.is_completed()]


def publish_summary(
    result: PipelineResult, settings: Settings, campaign_name: str, dates: RunDates
) -> None:
    """Count the run's videos by stage into `result`, publish them as a table and log them."""
    # The run's days, not the whole campaign: the summary sits under this run's dates.
    result.counts = stage_counts(
        settings.resolved_database_url, campaign_name, posted=(dates.start, dates.end)
    )
    create_table_artifact(
        table=result.counts.table(),
        key=artifact_key("pipeline-stages", campaign_name),
        description=f"{campaign_name} {dates.start}..{dates.end}: {result.collect_state}; "
        f"LLM spend ${result.spent_usd:.4f}",
    )
    get_run_logger().info(
        "pipeline %s %s..%s: %s; %s",
        campaign_name,
        dates.start,
        dates.end,
        result.collect_state,
        result.counts.model_dump(exclude={"campaign"}),
    )


def collect_top_comments(campaign_file: str, collected: CollectResult, top_n: int) -> str:
    """Comments of the campaign's top videos, once collection is over (same daily budget)."""
    if collected.quota_exhausted:
        return "comments not collected: the daily quota was used by collection"
    state = comments(campaign_file, top_n=top_n, return_state=True)
    if not state.is_completed():
        return f"comments failed: {state.message}"
    return state.result().summary()


class PipelineIncomplete(Exception):
    """Some processing batches failed after their retries; carries the run's result."""

    def __init__(self, result: PipelineResult, reasons: list[str]):
        super().__init__(f"{len(reasons)} batch(es) failed: {'; '.join(reasons)[:500]}")
        self.result = result


# A daily run is hours; a backfill's processing (transcription on CPU) can take days. Three days
# means it hangs; the next run resumes from the database.
@flow(
    name="pipeline",
    timeout_seconds=3 * DAY,
    flow_run_name=pipeline_run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=2),
)
def pipeline(
    campaign_file: str,
    start_date: date | None = None,
    end_date: date | None = None,
    lag_days: int = 2,
    catch_up_days: int = 7,
    transcribe_deployment: str | None = None,
    budget_usd: float | None = None,
    comments_top_n: int | None = None,
) -> PipelineResult:
    """Collect, download, transcribe and enrich a campaign over a date range (or its scheduled day).

    `transcribe_deployment` (e.g. "transcribe/transcribe-gpu") hands transcription to the gpu work
    pool; without it transcription runs here, still bounded by the `gpu` concurrency limit.
    `comments_top_n` (default: the campaign file's, else off) also collects the comments of the
    campaign's N most commented videos after collection, inside the same daily request budget.
    """
    campaign = load_campaign(Path(campaign_file))
    settings = get_settings()
    dates = run_dates(
        campaign, start_date, end_date, flow_run.scheduled_start_time, lag_days, catch_up_days
    )
    if dates is None:
        get_run_logger().info("%s: nothing due (outside the campaign's dates)", campaign.name)
        return PipelineResult(campaign=campaign.name)
    return run_pipeline(
        campaign,
        campaign_file,
        settings,
        dates,
        transcribe_deployment,
        budget_usd,
        comments_top_n=campaign.comments_top_n if comments_top_n is None else comments_top_n,
    )
