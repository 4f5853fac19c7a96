"""Download a batch of collected videos: bounded parallelism, one polite gate for the site, a
claim on each video so workers never download the same one, and a status recorded for every video
(`DownloadStatus`, the studies' failure taxonomy; reruns retry only what can succeed). The row is
written after the file is in place (`one_video`), so there is never an `ok` row without its file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from prefect import task
from prefect.cache_policies import NO_CACHE

from gettok import claims, watermarks
from gettok.models.schema import DownloadStatus
from gettok.retry import HOUR, rate_limit, task_retries
from gettok.settings import Settings
from gettok.tasks.download.files import (  # noqa: F401 (partial_dir, video_file: re-exported)
    partial_dir,
    remove_stale_partials,
    video_file,
)
from gettok.tasks.download.gate import DownloadGate, GateClosed, HostDown
from gettok.tasks.download.one_video import Downloader
from gettok.tasks.download.store import (
    STAGE,
    DownloadResult,
    GiveUp,
    first_unsettled,
    global_backoff_until,
    pending_pages,
    record_outcome,
    still_pending,
)

logger = logging.getLogger(__name__)

_gates: dict[tuple, DownloadGate] = {}


def shared_gate(settings: Settings, shared_rate_limit: str | None = None) -> DownloadGate:
    """The process-wide gate for these settings: every batch in a process shares its rate.

    `shared_rate_limit` names a Prefect global rate limit that every request also takes a slot of
    (the `download-rate` limit of `gettok setup`), for workers in several processes.
    """
    key = (
        settings.download_requests_per_s,
        settings.download_block_backoff_s,
        settings.download_block_limit,
        settings.download_outage_refusals,
        shared_rate_limit,
    )
    gate = _gates.get(key)
    if gate is None or gate.closed_until is not None or gate.host_down is not None:
        also_wait = rate_limit(shared_rate_limit) if shared_rate_limit else None
        gate = _gates[key] = DownloadGate.from_settings(settings, also_wait)
    return gate


def download_videos(
    videos: list[tuple[int, str | None]],
    settings: Settings,
    gate: DownloadGate | None = None,
    retry_failed: bool = False,
) -> DownloadResult:
    """Download `videos` ((id, username) pairs) with bounded parallelism; record each status.

    When the site refused every connection, `outage` says so and the rest is put off.
    """
    started, url = time.monotonic(), settings.resolved_database_url
    gate = gate or shared_gate(settings)
    requests_before = gate.requests
    lease_s = max(3600.0, 30.0 * len(videos) / settings.download_concurrency)
    held = claims.claim(url, STAGE, [i for i, _ in videos], lease_s=lease_s)
    # Claimed, then checked: a worker that finished one of these just before our claim wins.
    todo = still_pending(url, held, retry_failed)
    mine = [(i, u) for i, u in videos if i in todo]
    statuses: dict[int, DownloadStatus] = {}
    deferred: list[int] = []
    downloader = Downloader(settings, gate)
    give_up = GiveUp(settings.download_unreachable_runs, settings.download_unreachable_days)

    def one(video: tuple[int, str | None]) -> None:
        video_id, username = video
        try:
            outcome = downloader.download(video_id, username)
        except (GateClosed, HostDown):
            deferred.append(video_id)
            return
        statuses[video_id] = record_outcome(url, outcome, give_up)

    try:
        with ThreadPoolExecutor(settings.download_concurrency, "download") as pool:
            for future in [pool.submit(one, video) for video in mine]:
                future.result()
    finally:
        downloader.close()
        claims.release(url, STAGE, held)
    if gate.host_down is not None:
        logger.error("%s (%d videos put off)", gate.host_down, len(deferred))
    return DownloadResult(
        outage=str(gate.host_down) if gate.host_down is not None else None,
        statuses=statuses,
        deferred=deferred,
        busy=len(videos) - len(held),
        blocked_until=gate.closed_until,
        requests=gate.requests - requests_before,
        seconds=round(time.monotonic() - started, 3),
    )


BatchRunner = Callable[[list[tuple[int, str | None]]], DownloadResult]


def download_round(
    url: str,
    campaign_name: str | None,
    size: int,
    run_batch: BatchRunner,
    *,
    retry_failed: bool = False,
    limit: int | None = None,
    log: logging.Logger | logging.LoggerAdapter = logger,
) -> DownloadResult:
    """One pass over what is pending, first collected first: a page of `size` videos per
    batch, each page read once the batch before it is done. A throttle or an outage puts the
    rest off: counted a page at a time, not asked.

    A campaign's pass starts at the stage's watermark (`gettok.watermarks`): members seen
    since the last pass, and the retries now due; `retry_failed` looks at every member."""
    sweep = watermarks.begin(url, campaign_name, STAGE, "", whole=retry_failed)
    since = sweep.since if sweep else None
    pages = pending_pages(
        url, campaign_name, size, retry_failed=retry_failed, limit=limit, since=since
    )
    result = DownloadResult(blocked_until=global_backoff_until(url))
    if result.blocked_until is None:
        for number, page in enumerate(pages, 1):
            batch = run_batch([(i, u) for i, u, _ in page])
            log.info("batch %d: %s", number, batch.summary())
            result = result.merge(batch)
            if batch.blocked_until is not None or batch.outage:
                break
        else:
            _advance(sweep)
            return result
    # Put off: what the pages still hold, less what this run already gave a status.
    put_off = sum(i not in result.statuses for page in pages for i, _, _ in page)
    _advance(sweep)
    return result.merge(DownloadResult(put_off=put_off))


def _advance(sweep: watermarks.Sweep | None) -> None:
    """Move the watermark to just before the first member still without a download row."""
    if sweep is not None:
        unsettled = first_unsettled(sweep.url, sweep.campaign_id, sweep.since)
        watermarks.finish(sweep, unsettled)


def download_pending(
    settings: Settings,
    campaign_name: str | None = None,
    *,
    retry_failed: bool = False,
    limit: int | None = None,
    gate: DownloadGate | None = None,
) -> DownloadResult:
    """Everything a campaign has pending, in one call (the flow's round, without Prefect)."""
    remove_stale_partials(settings.resolved_media_dir)
    gate = gate or shared_gate(settings)
    return download_round(
        settings.resolved_database_url,
        campaign_name,
        settings.download_batch_size,
        lambda videos: download_videos(videos, settings, gate, retry_failed),
        retry_failed=retry_failed,
        limit=limit,
    )


# Retried for the database only: videos never fail the batch (each gets a status). 200 videos
# (download_batch_size) at 2 requests/s take minutes; half of them at their 60 s timeout plus the
# gate's pauses (5, 10, 20 min) still under 2 h, so 6 h means a hang.
@task(name="download-videos", cache_policy=NO_CACHE, **task_retries(), timeout_seconds=6 * HOUR)
def download_batch(
    videos: list[tuple[int, str | None]],
    settings: Settings,
    retry_failed: bool = False,
    shared_rate_limit: str | None = None,
) -> DownloadResult:
    """One batch as a Prefect task; the database, not a cache, says what is already done."""
    gate = shared_gate(settings, shared_rate_limit)
    return download_videos(videos, settings, gate, retry_failed)
