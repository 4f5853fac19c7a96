"""Prune (compliance): delete what authors made private or removed, as the API terms require.

Method: first the prunes that are already decided are finished (a killed run's open records,
videos another stage found private or removed); then, where the account has the Research API's
batch compliance endpoints, the due videos and comments go to them in tasks of 10,000
(`tasks/prune/batch.py`: unavailable videos are pruned, unavailable comments deleted, open tasks
resumed by the next run); then every video still due (not checked in the last
`recheck_after_days`, nor waiting in an open task) has its tiktok.com page read again; a video
the page shows as private or removed loses its media files, frames, transcripts and annotations,
its rows are marked (`videos.pruned_at`, `pruned_reason`) and a `prune_records` row lists what
was deleted. An age-restricted page keeps the video (status `age_restricted`). Network errors,
throttles and unreadable pages delete nothing: the video is checked again next run. Deployed
every 15 days (`deployments/prefect.yaml`); with the default 7-day recheck every video is due
at each of those runs, and a rerun after a kill skips what was just checked.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from gettok.clients.research_api import ResearchApiClient
from gettok.db import session_scope
from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import load_campaign
from gettok.models.schema import utcnow
from gettok.retry import DAY, HOUR, task_retries
from gettok.settings import get_settings
from gettok.stage import publish
from gettok.tasks.export.dataset import CampaignNotFound, campaign_id
from gettok.tasks.prune import PruneResult, finish_pruned, pending_videos, prune_videos
from gettok.tasks.prune.batch import BatchOutcome, BatchRun
from gettok.tasks.prune.batch_store import waiting_ids

BATCH_SIZE = 200
RECHECK_AFTER_DAYS = 7.0


# 200 pages at 2 requests/s take minutes; each at its 60 s timeout, under 4 h.
@task(name="prune-batch", **task_retries("database"), timeout_seconds=6 * HOUR)
def prune_batch(
    database_url: str,
    media_dir: Path,
    web_url: str,
    videos: list[tuple[int, str | None]],
    timeout_s: float,
    interval_s: float,
) -> PruneResult:
    # Retries cover database hiccups; a rerun is safe (pruned videos are skipped, files missing ok).
    return prune_videos(
        database_url, media_dir, web_url, videos, timeout_s=timeout_s, interval_s=interval_s
    )


# Re-checking every stored video (100,000s at 2 requests/s) can take most of a day; two days
# means it hangs, and the next run re-checks what this one did not reach.
@task(name="prune-finish", **task_retries("database"), timeout_seconds=6 * HOUR)
def finish_batch(database_url: str, media_dir: Path, campaign_id: int | None) -> PruneResult:
    return finish_pruned(database_url, media_dir, campaign_id)


@task(name="prune-batch-compliance", **task_retries("database"), timeout_seconds=6 * HOUR)
def batch_compliance(
    database_url: str, media_dir: Path, campaign_id: int | None, due
) -> BatchOutcome:
    settings = get_settings()
    with ResearchApiClient.from_settings(settings) as client:
        return BatchRun(
            database_url,
            media_dir,
            client,
            campaign_id=campaign_id,
            checked_before=due,
            poll_s=settings.prune_batch_poll_s,
            wait_s=settings.prune_batch_wait_s,
        ).run()


@flow(name="prune", timeout_seconds=2 * DAY)
def prune(
    campaign_file: str | None = None,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    recheck_after_days: float = RECHECK_AFTER_DAYS,
) -> PruneResult:
    """Re-check the campaign's videos (all campaigns when none is given)."""
    logger = get_run_logger()
    settings = get_settings()
    url, media_dir = settings.resolved_database_url, settings.resolved_media_dir
    name, cid = "all", None
    if campaign_file is not None:
        name = load_campaign(Path(campaign_file)).name
        try:
            with session_scope(url) as session:
                cid = campaign_id(session, name)
        except CampaignNotFound as exc:
            logger.info("%s: nothing to prune", exc)
            return PruneResult()
    total = finish_batch(url, media_dir, cid)
    due = utcnow() - timedelta(days=recheck_after_days)
    if settings.prune_batch_compliance and settings.has_tiktok_credentials:
        total = total.add(send_to_batch_compliance(url, media_dir, cid, due))
    total = total.add(recheck_pages(cid, due, batch_size, limit))
    publish(total.stage_result(), artifact_key("prune-result", name), logger)
    if total.transient:
        logger.warning(
            "%d videos undecided (%s): kept, checked again next run",
            total.transient,
            total.transient_reasons,
        )
    publish_table(total)
    return total


def send_to_batch_compliance(url: str, media_dir: Path, cid: int | None, due) -> PruneResult:
    """Send the due videos and comments to the batch compliance endpoints; log what they did."""
    batch = batch_compliance(url, media_dir, cid, due)
    get_run_logger().info(
        "batch compliance: %d tasks sent, %d applied, %d failed; %d comments deleted%s",
        batch.tasks_created,
        batch.tasks_applied,
        batch.tasks_failed,
        batch.comments_deleted,
        f"; {batch.stopped}" if batch.stopped else "",
    )
    return batch.result


def recheck_pages(cid: int | None, due, batch_size: int, limit: int | None) -> PruneResult:
    """Read again the tiktok.com page of every due video (up to `limit`), in batches, skipping
    those waiting in an open compliance task; stop early when pages keep being undecided."""
    logger = get_run_logger()
    settings = get_settings()
    url = settings.resolved_database_url
    waiting = waiting_ids(url, "video")  # decided by their open task, not by a page
    logger.info("re-checking videos not checked since %s against %s", due, settings.tiktok_web_url)
    total = PruneResult()
    after, left = None, limit
    while left is None or left > 0:
        size = batch_size if left is None else min(batch_size, left)
        videos = pending_videos(url, cid, size, checked_before=due, after_id=after)
        if not videos:
            break
        result = prune_batch(
            url,
            settings.resolved_media_dir,
            settings.tiktok_web_url,
            [v for v in videos if v[0] not in waiting],
            settings.download_timeout_s,
            1.0 / settings.download_requests_per_s,
        )
        total = total.add(result)
        after, left = videos[-1][0], None if left is None else left - len(videos)
        if result.stopped_early:
            logger.warning(
                "too many undecided pages in a row: stopping; the rest waits for the next run"
            )
            break
    return total


def publish_table(total: PruneResult) -> None:
    """The run's outcomes, one row per outcome, as the `prune` table artifact."""
    create_table_artifact(
        key="prune",
        table=[
            {"outcome": k, "videos": v}
            for k, v in (
                ("checked", total.checked),
                ("still public", total.public),
                ("age restricted (kept)", total.age_restricted),
                *((f"pruned: {r}", n) for r, n in sorted(total.pruned.items())),
                ("undecided (kept)", total.transient),
                ("files removed", total.files_removed),
                ("prunes finished", total.finished),
            )
        ],
        description=f"Compliance run: {total.summary()}",
    )
