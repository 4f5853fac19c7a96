"""Comments and user info: what the Research API says around the campaign's videos (issue 14).

Method: for the chosen videos (all, the top N by comment_count, or given ids) the comment list is
paged by cursor up to the API's 1,000 comments per video, each page stored with the video's
cursor, inside the same daily request budget as collection; a rerun resumes each video where it
stopped. User info is asked once per `max_age_days` for each author; users the API will not
describe are recorded with a status.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import load_campaign
from gettok.settings import get_settings
from gettok.stage import StageResult, publish
from gettok.tasks.comments import collect_comments, fetch_user_info
from gettok.tasks.comments.paging import VideoComments


@flow(name="comments")
def comments(
    campaign_file: str,
    top_n: int | None = None,
    video_ids: list[int] | None = None,
) -> StageResult:
    """Collect the comments of the campaign's videos (all, the top N, or the ids given)."""
    logger = get_run_logger()
    campaign = load_campaign(Path(campaign_file))

    def log_video(outcome: VideoComments) -> None:
        logger.info(
            "video %s: %s, %d new comments in %d pages, %d requests%s",
            outcome.video_id,
            outcome.status,
            outcome.comments,
            outcome.pages,
            outcome.requests,
            f" ({outcome.note})" if outcome.note else "",
        )

    result = collect_comments(
        get_settings(), campaign.name, top_n=top_n, video_ids=video_ids or (), on_video=log_video
    )
    return publish(result, artifact_key("comments", campaign.name), logger)


@flow(name="users")
def users(campaign_file: str, max_age_days: float = 30, limit: int | None = None) -> StageResult:
    """Record user info for the campaign's authors not asked within `max_age_days`."""
    campaign = load_campaign(Path(campaign_file))
    result = fetch_user_info(get_settings(), campaign.name, max_age_days=max_age_days, limit=limit)
    return publish(result, artifact_key("users", campaign.name), get_run_logger())
