"""One window's search against the Research API: a page fetched under the fault policies, the
stored videos a search leaves out, a restart from cursor 0, and what a window too big for a day
becomes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from gettok.clients.research_api import ApiFault, QueryPage
from gettok.db import session_scope
from gettok.models.schema import utcnow
from gettok.retry import call_with_retries
from gettok.tasks.collect.narrowing import LeftOut, stored_to_leave_out
from gettok.tasks.collect.parts import part_hash, split_part
from gettok.tasks.collect.store import checkpoint_window
from gettok.tasks.collect.windows import CollectionWindow

if TYPE_CHECKING:
    from gettok.tasks.collect.paging import CollectContext


def window_hash(ctx: CollectContext, window: CollectionWindow) -> str:
    """The `query_hash` of the window's row: the campaign's, or its part's."""
    return part_hash(ctx.campaign, window.part)


def smaller_windows(ctx: CollectContext, window: CollectionWindow) -> list[CollectionWindow]:
    """What a window too big for a day becomes: its halves by date, else parts of its query."""
    if window.days > 1:
        return window.halves()
    parts = split_part(ctx.campaign.query.to_api(), window.part)
    return [window.model_copy(update={"part": part}) for part in parts]


def leave_out(ctx: CollectContext, window: CollectionWindow, before: datetime) -> LeftOut:
    """The stored videos a search of `window` started at `before` leaves out."""
    limit = 0 if ctx.leave_out_refused else ctx.policies.max_excluded_ids
    return stored_to_leave_out(ctx.database_url, ctx.campaign_id, window, before, limit)


def restart_search(
    ctx: CollectContext, window: CollectionWindow, window_id: int, note: str
) -> tuple[datetime, LeftOut]:
    """Start the window's search again from cursor 0 as a new pass (its own sighting time),
    leaving out what is stored by now; returns that time and what is left out."""
    started = utcnow()
    with session_scope(ctx.database_url) as session:
        checkpoint_window(
            session, window_id, cursor=None, search_id=None, started_at=started, last_error=note
        )
    return started, leave_out(ctx, window, started)


def fetch_page(
    ctx: CollectContext,
    body: dict,
    cursor: int | None,
    search_id: str | None,
    window_id: int,
    faults: dict[str, int],
    once: bool = False,
) -> QueryPage:
    """One page, retrying each fault under its own policy; the fault is raised once it gives up.
    `once`: an expired search id is raised at once (the caller splits instead)."""

    def one_request() -> QueryPage:
        try:
            return ctx.client.query_videos(
                body, cursor=cursor, search_id=search_id, window_id=window_id
            )
        except ApiFault as fault:
            faults[fault.kind] = faults.get(fault.kind, 0) + 1
            raise

    policies = ctx.policies.retried()
    if once:
        policies.pop("search_id_expired")
    return call_with_retries(
        one_request,
        policies=policies,
        kind_of=lambda exc: exc.kind if isinstance(exc, ApiFault) else None,
        server_wait_s=lambda exc: getattr(exc, "retry_after_s", None),
    )
