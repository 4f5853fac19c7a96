"""A comments run over a campaign: choose the videos, page each, stop for the day on the quota."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gettok.clients.research_api import ResearchApiClient
from gettok.db import session_scope
from gettok.settings import Settings
from gettok.stage import StageResult
from gettok.tasks.collect.policies import CollectPolicies
from gettok.tasks.collect.windows import next_utc_midnight
from gettok.tasks.comments.paging import (
    CommentsAborted,
    CommentsContext,
    CommentsQuotaExhausted,
    VideoComments,
    collect_video_comments,
)
from gettok.tasks.comments.store import chosen_videos

STAGE = "comments"


def collect_comments(
    settings: Settings,
    campaign: str,
    *,
    top_n: int | None = None,
    video_ids: Sequence[int] = (),
    policies: CollectPolicies | None = None,
    on_video: Callable[[VideoComments], None] | None = None,
) -> StageResult:
    """Collect the comments of a campaign's videos (all, its top N by comment_count, or the ids
    given), each video resumed from its last stored page; stops at the day's request budget."""
    url = settings.resolved_database_url
    with session_scope(url) as session:
        todo, silent = chosen_videos(session, campaign, top_n, video_ids)
    result = StageResult(stage=STAGE, skipped=len(silent))
    result.counts.update(comments=0, requests=0, pages=0, videos_without_comments=len(silent))
    with ResearchApiClient.from_settings(settings) as client:
        ctx = CommentsContext(url, client, policies or CollectPolicies())
        for position, video_id in enumerate(todo):
            try:
                outcome = collect_video_comments(ctx, video_id)
            except (CommentsQuotaExhausted, CommentsAborted) as stop:
                _tally(result, stop.outcome, on_video)
                left = len(todo) - position - 1
                result.skipped += left
                if isinstance(stop, CommentsAborted):
                    result.notes.append(f"stopped: {stop.reason}")
                else:
                    result.notes.append(
                        f"daily quota reached ({stop.reason}); {left + 1} video(s) resume after "
                        f"{next_utc_midnight():%Y-%m-%d %H:%M} UTC"
                    )
                break
            _tally(result, outcome, on_video)
    return result


def _tally(
    result: StageResult, outcome: VideoComments, on_video: Callable[[VideoComments], None] | None
) -> None:
    if outcome.status == "done":
        result.done += 1
    elif outcome.status in ("skipped", "busy"):
        result.skipped += 1
    else:
        result.failed[outcome.status] = result.failed.get(outcome.status, 0) + 1
    for name, n in (
        ("comments", outcome.comments),
        ("requests", outcome.requests),
        ("pages", outcome.pages),
    ):
        result.counts[name] = result.counts.get(name, 0) + n
    if on_video:
        on_video(outcome)
