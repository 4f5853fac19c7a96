"""Watch (the monitoring study): alert when a watched target appears in new videos.

Method: the extracted frames of every video not yet checked are matched against each reference
image of the campaign's watchlist (ORB features, ratio test, RANSAC homography, then a colour
check of the matched region; no model weights) and, if the campaign describes a target in words,
shown to the vision LLM. A match is stored as a `watch_match` annotation with its frame, emitted
as the Prefect event `gettok.watch.match` (alert through Prefect automations) and posted to the
campaign's webhook. Deployed daily (`deployments/prefect.yaml`).
"""

from __future__ import annotations

from pathlib import Path

from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import Campaign, load_campaign
from gettok.tasks.export.dataset import CampaignNotFound, campaign_id
from gettok.tasks.watch.description import watch_for_description
from gettok.tasks.watch.watchlist import Alerts, WatchResult, watch_for_image
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from gettok.db import session_scope
from gettok.settings import get_settings
from gettok.stage import StageResult, publish


@task(name="watch-image", retries=1, retry_delay_seconds=[30])
def watch_image_task(
    database_url: str,
    media_dir: Path,
    reference: Path,
    campaign: str,
    campaign_row: int,
    webhook_url: str | None,
    limit: int | None,
) -> WatchResult:
    alerts = Alerts(webhook_url, campaign=campaign)
    return watch_for_image(
        database_url, media_dir, reference, alerts, campaign_id=campaign_row, limit=limit
    )


@task(name="watch-description", retries=1, retry_delay_seconds=[60])
def watch_description_task(
    database_url: str,
    media_dir: Path,
    description: str,
    campaign: str,
    campaign_row: int,
    webhook_url: str | None,
    limit: int | None,
) -> WatchResult:
    alerts = Alerts(webhook_url, campaign=campaign)
    return watch_for_description(
        database_url,
        media_dir,
        description,
        alerts,
        get_settings(),
        campaign_id=campaign_row,
        limit=limit,
    )


def reference_paths(campaign: Campaign, campaign_file: str | None) -> list[Path]:
    """Watchlist images; relative paths are read from the campaign file's folder."""
    base = Path(campaign_file).parent if campaign_file else Path.cwd()
    return [
        p if p.is_absolute() or not (base / p).exists() else base / p
        for p in (campaign.watch.images if campaign.watch else [])
    ]


@flow(name="watch")
def watch(campaign_file: str, limit: int | None = None) -> list[WatchResult]:
    """Check the campaign's new videos for every watchlist target."""
    logger = get_run_logger()
    campaign, path = load_campaign(Path(campaign_file)), campaign_file
    if campaign.watch is None:
        logger.info("campaign %s has no [watch] targets", campaign.name)
        return []
    settings = get_settings()
    url, media_dir = settings.resolved_database_url, settings.resolved_media_dir
    try:
        with session_scope(url) as session:
            cid = campaign_id(session, campaign.name)
    except CampaignNotFound as exc:
        logger.info("%s: nothing to watch yet", exc)
        return []
    webhook = campaign.watch.webhook_url
    results = [
        watch_image_task(url, media_dir, reference, campaign.name, cid, webhook, limit)
        for reference in reference_paths(campaign, path)
    ]
    if campaign.watch.description:
        results.append(
            watch_description_task(
                url, media_dir, campaign.watch.description, campaign.name, cid, webhook, limit
            )
        )
    for r in results:
        logger.info(
            "watch %s: %d videos checked (%d frames), %d matched %s, %d webhook failures%s",
            r.target,
            r.videos_checked,
            r.frames_checked,
            len(r.matched),
            r.matched,
            r.webhook_failed,
            f", not checked: {r.failed}" if r.failed else "",
        )
    total = StageResult(stage="watch")
    for r in results:
        total = total.merge(r.stage_result())
    publish(total, artifact_key("watch-result", campaign.name), logger)
    create_table_artifact(
        key=artifact_key("watch", campaign.name),
        table=[
            {
                "target": r.target,
                "videos checked": r.videos_checked,
                "matches": len(r.matched),
                "matched videos": ", ".join(map(str, r.matched)),
                "events": r.events_emitted,
                "webhook ok": r.webhook_posted,
                "webhook failed": r.webhook_failed,
            }
            for r in results
        ],
        description=f"Watchlist run for {campaign.name}",
    )
    return results
