"""User info for a campaign's authors: asked once per `max_age_days`, inside the daily budget.

Users the API will not describe (not found, private, refused) are stored with that status and
the API's words, and count as asked: they are not asked again before the cache expires. A fault
left after its retries (500s, network) stores nothing, so the next run asks again; the daily
quota stops the run, and a refused token or request aborts it.
"""

from __future__ import annotations

from datetime import timedelta

from gettok.clients.research_api import (
    ApiFault,
    DailyQuotaExhausted,
    RequestRejected,
    ResearchApiClient,
    ShortRateLimit,
    TokenRejected,
)
from gettok.clients.research_comments import user_info
from gettok.db import session_scope
from gettok.models.schema import utcnow
from gettok.settings import Settings
from gettok.stage import StageResult
from gettok.tasks.collect.policies import CollectPolicies
from gettok.tasks.comments.paging import CommentsContext, retried
from gettok.tasks.comments.store import campaign_authors, fresh_users, save_user

STAGE = "users"


def fetch_user_info(
    settings: Settings,
    campaign: str,
    *,
    max_age_days: float = 30,
    limit: int | None = None,
    policies: CollectPolicies | None = None,
) -> StageResult:
    """Ask user info about the campaign's authors not asked within `max_age_days`."""
    url = settings.resolved_database_url
    with session_scope(url) as session:
        authors = campaign_authors(session, campaign)
        cached = fresh_users(session, authors, utcnow() - timedelta(days=max_age_days))
    todo = [a for a in authors if a not in cached][:limit]
    result = StageResult(stage=STAGE, skipped=len(authors) - len(todo))
    result.counts.update(requests=0, cached=len(cached))
    with ResearchApiClient.from_settings(settings) as client:
        ctx = CommentsContext(url, client, policies or CollectPolicies())
        before = client.ledger.reserved[None]
        for position, username in enumerate(todo):
            faults: dict[str, int] = {}
            try:
                info = retried(ctx, lambda u=username: user_info(client, u), faults)
            except (DailyQuotaExhausted, ShortRateLimit, TokenRejected, RequestRejected) as stop:
                result.skipped += len(todo) - position
                quota = isinstance(stop, DailyQuotaExhausted | ShortRateLimit)
                word = "daily quota reached" if quota else "stopped"
                result.notes.append(f"{word}: {stop}; {len(todo) - position} user(s) left")
                break
            except ApiFault as fault:
                result.failed[fault.kind] = result.failed.get(fault.kind, 0) + 1
                continue
            with session_scope(url) as session:
                save_user(session, info)
            result.done += 1  # recorded, whatever the status: asked again after the cache expires
            result.counts[info.status] = result.counts.get(info.status, 0) + 1
        result.counts["requests"] = client.ledger.reserved[None] - before
    return result
