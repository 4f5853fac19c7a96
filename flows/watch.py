"""Watch (the monitoring study): alert when a watched person or picture appears in new videos.

Method: for each target of the campaign's watchlist, every downloaded video not yet checked is
looked at. A face target (a person enrolled from example photos) is searched at about one frame
per second, decoded on the fly: dlib's face detector, then its ResNet face embedding compared with
the examples' (threshold tuned on examples and negatives). An image target (a logo, a
screenshot) is matched in the extracted frames with ORB features and a homography; a described
target is shown to the vision LLM. A match is stored as a `watch_match` annotation with the time in
the video, emitted as the Prefect event `gettok.watch.match`, posted to the campaign's webhook
and emailed with the matching frame, once per video and target; an optional daily digest lists
the day's matches. Deployed daily (`deployments/prefect.yaml`).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from gettok.db import session_scope
from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import Campaign, WatchTarget, load_campaign
from gettok.retry import DAY, HOUR, task_retries
from gettok.settings import Settings, get_settings
from gettok.stage import StageResult, publish
from gettok.tasks.export.dataset import CampaignNotFound, campaign_id
from gettok.tasks.watch.alerts import Alerts, send_digest
from gettok.tasks.watch.description import watch_for_description
from gettok.tasks.watch.email_alert import EmailAlerts
from gettok.tasks.watch.face_target import image_files, load_face_target
from gettok.tasks.watch.face_watch import watch_for_face
from gettok.tasks.watch.faces import FaceSettings
from gettok.tasks.watch.watchlist import WatchResult, watch_for_image


def campaign_alerts(campaign: Campaign, settings: Settings) -> Alerts:
    watch = campaign.watch
    return Alerts(
        watch.webhook_url if watch else None,
        campaign=campaign.name,
        email=EmailAlerts(settings),
        database_url=settings.resolved_database_url,
        digest=bool(watch and watch.digest),
        web_url=settings.tiktok_web_url,
    )


def watch_targets(campaign: Campaign) -> list[WatchTarget]:
    """The campaign's targets, the older `images`/`description` shorthand included."""
    watch = campaign.watch
    if watch is None:
        return []
    targets = list(watch.targets)
    targets += [WatchTarget(name=_slug(p.name), kind="image", examples=[p]) for p in watch.images]
    if watch.description:
        targets.append(
            WatchTarget(name="description", kind="description", description=watch.description)
        )
    return targets


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "-" for c in name.lower())[:63]


# One target over the campaign's new videos (decoding, matching, alerts with their own retries):
# minutes; 6 h means a hang.
@task(name="watch-target", **task_retries("incomplete"), timeout_seconds=6 * HOUR)
def watch_target_task(
    campaign: Campaign, target: WatchTarget, campaign_row: int, limit: int | None
) -> WatchResult:
    settings = get_settings()
    url, media_dir = settings.resolved_database_url, settings.resolved_media_dir
    alerts = campaign_alerts(campaign, settings)
    common = {"campaign_id": campaign_row, "limit": limit}
    if target.kind == "face":
        face_settings = FaceSettings(
            detector=settings.watch_face_detector, max_side=settings.watch_max_side
        )
        per_second = campaign.watch.frames_per_second if campaign.watch else 1.0
        return watch_for_face(
            url,
            media_dir,
            load_face_target(target),
            alerts,
            settings=face_settings,
            per_second=per_second,
            **common,
        )
    if target.kind == "description":
        result = watch_for_description(
            url, media_dir, target.description, alerts, settings, **common
        )
        return result.model_copy(update={"target": target.name})
    parts = [
        watch_for_image(url, media_dir, path, alerts, target_name=target.name, **common)
        for path in image_files(target.examples, target.name)
    ]
    return merge_results(target.name, parts)


def merge_results(name: str, parts: list[WatchResult]) -> WatchResult:
    """One target's result from the results of its reference images. Each reference checks the
    same videos: a video counts once (the most any reference checked), a match once."""
    merged = WatchResult(target=name)
    for part in parts:
        for field, value in part:
            if field == "target":
                continue
            if field == "videos_checked":
                merged.videos_checked = max(merged.videos_checked, value)
            elif field == "not_matched":
                continue
            elif field == "matched":
                merged.matched += [v for v in value if v not in merged.matched]
            elif field == "failed":
                for reason, n in value.items():
                    merged.failed[reason] = merged.failed.get(reason, 0) + n
            else:
                setattr(merged, field, getattr(merged, field) + value)
    merged.not_matched = max(0, merged.videos_checked - len(merged.matched))
    return merged


@flow(name="watch", timeout_seconds=DAY)  # its tasks' 6 h each, a few targets
def watch(campaign_file: str, limit: int | None = None) -> list[WatchResult]:
    """Check the campaign's new videos for every watchlist target."""
    logger = get_run_logger()
    campaign = load_campaign(Path(campaign_file))
    if campaign.watch is None:
        logger.info("campaign %s has no [watch] targets", campaign.name)
        return []
    settings = get_settings()
    try:
        with session_scope(settings.resolved_database_url) as session:
            cid = campaign_id(session, campaign.name)
    except CampaignNotFound as exc:
        logger.info("%s: nothing to watch yet", exc)
        return []
    results = [watch_target_task(campaign, t, cid, limit) for t in watch_targets(campaign)]
    for r in results:
        logger.info(
            "watch %s: %d videos checked (%d frames), %d matched %s, %d already alerted, "
            "%d webhook and %d email failures%s",
            r.target,
            r.videos_checked,
            r.frames_checked,
            len(r.matched),
            r.matched,
            r.already_alerted,
            r.webhook_failed,
            r.emails_failed,
            f", not checked: {r.failed}" if r.failed else "",
        )
    if campaign.watch.digest:
        digest = send_digest(settings.resolved_database_url, campaign.name, EmailAlerts(settings))
        logger.info("daily digest: %s (%d matches)", digest["digest"], digest["matches"])
    total = StageResult(stage="watch")
    for r in results:
        total = total.merge(r.stage_result())
    publish(total, artifact_key("watch-result", campaign.name), logger)
    publish_table(campaign, results)
    return results


def publish_table(campaign: Campaign, results: list[WatchResult]) -> None:
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
                "emails sent": r.emails_sent,
                "emails failed": r.emails_failed,
            }
            for r in results
        ],
        description=f"Watchlist run for {campaign.name}",
    )
