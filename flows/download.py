"""Download: fetch every collected video of a campaign that has no good download yet.

Method: each video's tiktok.com page is read with Pyktok; its media is streamed with the page's
cookies and validated (an mp4 `ftyp` box and a decodable frame) before it is kept. Photo posts keep
their images and sound. Every video ends with a status (ok, slideshow, private, removed, invalid,
transient, blocked, age_restricted, unreachable); dropped connections are asked again after a long
back-off (the studies found ~100 s works), a throttled run pauses every worker, the same failure
on many runs over days ends `unreachable`, and a site that refuses every connection fails the run.
Run it soon after collection: the studies lost 1,427 videos that went private in between.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import load_campaign
from gettok.models.schema import DownloadStatus, utcnow
from gettok.retry import DAY
from gettok.settings import Settings, get_settings
from gettok.stage import publish
from gettok.tasks.download.downloader import (
    download_batch,
    download_round,
    remove_stale_partials,
)
from gettok.tasks.download.gate import HostDown
from gettok.tasks.download.store import (
    DownloadResult,
    transient_due,
)


# A campaign's backlog at 2 requests/s (tens of thousands of videos) takes hours, plus one wait
# for dropped connections; two days means it hangs. The next run carries on from the database.
@flow(name="download", timeout_seconds=2 * DAY)
def download(
    campaign_file: str,
    retry_failed: bool = False,
    limit: int | None = None,
    transient_rounds: int = 1,
    shared_rate_limit: str | None = None,
) -> DownloadResult:
    """Download what the campaign has pending; then, `transient_rounds` times, wait out the
    back-off of dropped connections and ask for those again."""
    logger = get_run_logger()
    campaign = load_campaign(Path(campaign_file))
    settings = get_settings()
    remove_stale_partials(settings.resolved_media_dir)

    result = _rounds(
        campaign.name, settings, retry_failed, limit, transient_rounds, shared_rate_limit
    )
    publish(result.stage_result(), artifact_key("download-result", campaign.name), logger)
    publish_summary(campaign.name, result)
    if result.outage:  # not failed videos: the run stops and says so (the flow fails)
        logger.error("download stopped: %s", result.outage)
        raise HostDown(result.outage)
    return result


def _rounds(
    campaign_name: str,
    settings: Settings,
    retry_failed: bool,
    limit: int | None,
    transient_rounds: int,
    shared_rate_limit: str | None,
) -> DownloadResult:
    """The batches of each round, and the waits for dropped connections in between."""
    logger = get_run_logger()
    url = settings.resolved_database_url
    result = DownloadResult()
    for round_number in range(transient_rounds + 1):
        retrying = retry_failed and round_number == 0
        logger.info("round %d", round_number + 1)
        asked = download_round(
            url,
            campaign_name,
            settings.download_batch_size,
            partial(
                download_batch,
                settings=settings,
                retry_failed=retrying,
                shared_rate_limit=shared_rate_limit,
            ),
            retry_failed=retrying,
            limit=limit,
            log=logger,
        )
        result = result.merge(asked)
        if asked.blocked_until is not None and not asked.statuses:
            logger.warning(
                "tiktok.com throttled us: nothing asked until %s", asked.blocked_until.isoformat()
            )
        if not asked.statuses and not asked.skipped and not asked.busy:
            break
        if result.blocked_until or result.outage or round_number == transient_rounds:
            break
        due = transient_due(url, campaign_name)
        wait_s = (due - utcnow()).total_seconds() if due else None
        if wait_s is None or wait_s > 2 * settings.download_transient_backoff_s + 60:
            break
        logger.info("waiting %.0f s to ask again after dropped connections", max(0.0, wait_s))
        time.sleep(max(0.0, wait_s))
    return result


def publish_summary(campaign_name: str, result: DownloadResult) -> None:
    table = [
        {"status": s.value, "videos": result.by_status.get(s.value, 0)} for s in DownloadStatus
    ]
    table.append({"status": "deferred (throttled)", "videos": result.skipped})
    key = artifact_key("download", campaign_name)
    create_table_artifact(
        table=table, key=key, description=f"Download {campaign_name}: {result.summary()}"
    )
