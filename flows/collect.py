"""Collect: query the TikTok Research API for a campaign, one UTC date window at a time.

Method: the campaign's date range is cut into windows of `window_days` (default one day); each
window's search is paged with cursor and search_id until the API says there is no more, storing
every page (videos, an engagement snapshot, campaign membership) together with the window's
checkpoint. Faults follow the named policies of `tasks/collect/policies.py`. A run stopped by the
daily quota ends "quota exhausted, resumes at 00:00 UTC"; the next run resumes where it stopped.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import load_campaign
from gettok.retry import DAY, HOUR, task_retries
from gettok.settings import get_settings
from gettok.stage import publish
from gettok.tasks.collect.campaign import CollectResult, collect_campaign
from gettok.tasks.collect.paging import (
    CollectAborted,
    CollectContext,
    QuotaExhausted,
    WindowOutcome,
    collect_window,
)
from gettok.tasks.collect.store import daily_counts
from gettok.tasks.collect.windows import CollectionWindow


class WindowIncomplete(Exception):
    """A window left `failed` or `busy`: raised so Prefect retries it once and never caches it."""

    def __init__(self, outcome: WindowOutcome):
        super().__init__(f"window {outcome.window}: {outcome.note}")
        self.outcome = outcome


class CollectIncomplete(Exception):
    """Windows failed or the run was aborted; carries the result (artifact already published)."""

    def __init__(self, result: CollectResult):
        super().__init__(result.state)
        self.result = result


def _retriable(_task, _task_run, state) -> bool:
    """Retry a window after unexpected errors or a failed pass; never for quota or abort."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, QuotaExhausted | CollectAborted)


@task(
    name="collect-window",
    **task_retries("incomplete"),
    retry_condition_fn=_retriable,
    # A window is at most a day's request budget of pages (1,000 by default) at a few seconds
    # each, plus the throttle's waits: hours only for the biggest queries; 6 h means a hang.
    timeout_seconds=6 * HOUR,
    # No result cache: the database alone says which windows are done (a done window is skipped
    # there without a request). A cache would overrule it, e.g. after restoring a backup.
    cache_policy=NO_CACHE,
)
def collect_window_task(ctx: CollectContext, window: CollectionWindow) -> WindowOutcome:
    outcome = collect_window(ctx, window)
    if outcome.status in ("failed", "busy"):  # retried once, never cached
        raise WindowIncomplete(outcome)
    return outcome


def run_window_in_prefect(ctx: CollectContext, window: CollectionWindow) -> WindowOutcome:
    """Run one window as a Prefect task and turn its final state back into an outcome."""
    window_task = collect_window_task.with_options(**task_retries("incomplete"))  # read now
    state = window_task(ctx, window, return_state=True)
    if state.is_completed():
        return state.result()
    error = state.result(raise_on_failure=False)
    if isinstance(error, WindowIncomplete):
        return error.outcome
    raise error


# With --wait-for-quota a backfill sleeps until 00:00 UTC whenever the day's quota is spent, so
# one run can honestly last days; a week is past any backfill we would run in one go.
@flow(name="collect", timeout_seconds=7 * DAY)
def collect(
    campaign_file: str,
    start_date: date | None = None,
    end_date: date | None = None,
    wait_for_quota: bool = False,
) -> CollectResult:
    """Collect a campaign's videos from `start_date` to `end_date` (inclusive, UTC)."""
    logger = get_run_logger()
    campaign = load_campaign(Path(campaign_file))
    settings = get_settings()

    def log_window(outcome: WindowOutcome) -> None:
        logger.info(
            "window %s: %s, %d videos (%d new) in %d pages, %d requests%s",
            outcome.window,
            outcome.status,
            outcome.videos,
            outcome.new_videos,
            outcome.pages,
            outcome.requests,
            f" ({outcome.note})" if outcome.note else "",
        )

    result = collect_campaign(
        settings,
        campaign,
        start_date,
        end_date,
        wait_for_quota=wait_for_quota,
        run_window=run_window_in_prefect,
        on_window=log_window,
    )
    per_day: dict[date, int] = {}
    if result.end is not None:
        per_day = daily_counts(
            settings.resolved_database_url, campaign.name, result.start, result.end
        )
        for day, count in per_day.items():
            logger.info("day %s: %d videos stored for %s", day, count, campaign.name)
    publish_summary(result, per_day)  # also when every day asked for is not indexed yet
    if result.deferred_after:
        logger.warning(
            "days after %s are not fully indexed yet (the API lags ~48 h); collect them later",
            result.deferred_after,
        )
    publish(result.stage_result(), artifact_key("collect-result", campaign.name), logger)
    if result.aborted or result.windows_failed:
        raise CollectIncomplete(result)
    if result.quota_exhausted:
        return Completed(message=f"{result.state} ({result.resumes_at:%Y-%m-%d})", data=result)
    return result


def publish_summary(result: CollectResult, per_day: dict[date, int]) -> None:
    rows = [
        {
            "window": str(w.window),
            "status": w.status,
            "videos": w.videos,
            "new_videos": w.new_videos,
            "pages": w.pages,
            "requests": w.requests,
            "note": w.note or "",
        }
        for w in result.windows
    ]
    rows += [
        {"window": f"day {day}", "status": "stored", "videos": count}
        for day, count in per_day.items()
    ]
    if result.not_indexed:
        rows.append({"window": f"after {result.deferred_after}", "status": "not yet indexed"})
        rows[-1]["note"] = result.not_indexed
    key = artifact_key("collect", result.campaign)
    create_table_artifact(
        table=rows,
        key=key,
        description=f"Collect {result.campaign} {result.start}..{result.end}: {result.state}; "
        f"{result.videos} videos, {result.requests} requests"
        + (f"; {result.not_indexed}" if result.not_indexed else ""),
    )
