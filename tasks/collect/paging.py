"""Collecting a campaign: page through each date window, store every page, survive the API's faults.

Each kind of fault has its own named policy (`CollectPolicies`):
- 500s: jittered exponential backoff; still failing, a window of several days is split in two
  (status `split`, the halves collected instead), a one-day window is marked `failed`.
- "search id invalid or expired": retried with growing waits (the API issues this even for ids it
  just gave out); still failing, the window's search is restarted from cursor 0 once, leaving out
  the videos already stored (`narrowing.py`), so the pages stored before are not fetched again.
- A search the quota stopped is lost by the next day: it restarts leaving out what is stored, or,
  with more stored than a query can leave out, the window is split by query (`parts.py`).
- "invalid count or cursor": retried with growing waits, then the window is `failed` with its
  checkpoint intact, so the next run resumes from the last good cursor.
- 429: a short-term limit is waited out; a 429 that names the daily quota, our own ledger budget,
  or a short-term limit that never lifts end the run for the day (status `quota_exhausted`,
  checkpoint kept; the run resumes at 00:00 UTC or waits for it when asked to).
- 401: the client refreshes its token once; a second refusal aborts the run (bad credentials).
- Other 400s (invalid_params, e.g. a rejected field): abort, since every window would fail alike.
- Network errors and timeouts: retried with backoff, then the window is `failed`.
- Pages with has_more and no video: followed up to `max_empty_pages` in a row, then the
  window is `failed` with its checkpoint kept: it is not known to be complete, so it must not
  pass for done (a silently short day); the next run resumes it from there.
A window whose status is `done` or `split` is skipped by a rerun; any other resumes from its
saved cursor and search_id. Each day of a campaign is held by one collector at a time (`days.py`),
so collectors started together, with any window sizes, never page a day twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gettok.models.campaign import Campaign
from gettok.models.schema import CollectionWindow as WindowRow
from gettok.models.schema import WindowStatus, utcnow
from gettok.tasks.collect.days import claim_days, missing_runs
from gettok.tasks.collect.narrowing import LeftOut, leaving_out, stored_to_leave_out
from gettok.tasks.collect.parts import part_hash, part_query, split_part
from gettok.tasks.collect.policies import CollectPolicies
from gettok.tasks.collect.store import (
    checkpoint_window,
    done_days,
    ensure_window,
    keep_rejected,
    store_page,
    window_started,
)
from gettok.tasks.collect.windows import (
    CollectionWindow,
)
from pydantic import BaseModel, Field
from sqlalchemy import update

from gettok.clients.research_api import (
    ApiFault,
    DailyQuotaExhausted,
    InvalidCursor,
    NetworkFailure,
    QueryPage,
    RequestRejected,
    ResearchApiClient,
    SearchIdExpired,
    ServerError,
    ShortRateLimit,
    TokenRejected,
)
from gettok.db import session_scope
from gettok.retry import call_with_retries

log = logging.getLogger(__name__)

# Seconds past midnight UTC before asking again, so our clock and theirs agree the day turned.
QUOTA_RESET_MARGIN_S = 60
# skipped: already done or split; busy: another collector holds the window right now.
OutcomeStatus = Literal["done", "split", "failed", "quota_exhausted", "skipped", "busy"]


class WindowOutcome(BaseModel):
    """What one pass over a window did (counts are for this pass)."""

    window: CollectionWindow
    status: OutcomeStatus
    pages: int = 0
    videos: int = 0  # distinct videos sighted in this window pass
    new_videos: int = 0  # of which never stored before
    requests: int = 0
    invalid_videos: int = 0  # records that failed validation (kept out, reported)
    faults: dict[str, int] = Field(default_factory=dict)
    note: str | None = None
    split_into: list[CollectionWindow] = Field(default_factory=list)


class QuotaExhausted(Exception):
    """The day's requests are used up; the window is checkpointed as `quota_exhausted`."""

    def __init__(self, outcome: WindowOutcome, reason: str):
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


class CollectAborted(Exception):
    """A fault no window can get past (rejected credentials or query); the run stops."""

    def __init__(self, outcome: WindowOutcome, reason: str):
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


@dataclass
class CollectContext:
    """What every window of one run shares (passed to tasks, never part of a cache key)."""

    database_url: str
    client: ResearchApiClient
    campaign: Campaign
    campaign_id: int
    policies: CollectPolicies
    leave_out_refused: bool = False  # the API refused a query leaving stored videos out


def collect_window(ctx: CollectContext, window: CollectionWindow) -> WindowOutcome:
    """Page one window to the end (or to a fault), checkpointing after every page; the window's
    days are held for this collector meanwhile (see `days.py`)."""
    with claim_days(ctx.database_url, ctx.campaign_id, window) as claimed:
        if not claimed:
            note = "another collector is collecting a day of this window"
            return WindowOutcome(window=window, status="busy", note=note)
        narrowed = _narrowed(ctx, window)
        if narrowed is not None:
            return narrowed
        return _page_window(ctx, window)


def _narrowed(ctx: CollectContext, window: CollectionWindow) -> WindowOutcome | None:
    """Skip a never-started window whose days other windows collected (another window size),
    or narrow it to the days still missing; None: page it as it is."""
    query_hash = window_hash(ctx, window)
    with session_scope(ctx.database_url) as session:
        if window_started(session, ctx.campaign_id, query_hash, window):
            return None
        done = done_days(session, ctx.campaign_id, query_hash, window)
    if not done:
        return None
    missing = missing_runs(window, done)
    note = f"{len(done)} of its {window.days} days already collected by other windows"
    if missing:
        note += "; collecting " + ", ".join(str(w) for w in missing)
    return WindowOutcome(window=window, status="skipped", note=note, split_into=missing)


def window_hash(ctx: CollectContext, window: CollectionWindow) -> str:
    """The `query_hash` of the window's row: the campaign's, or its part's."""
    return part_hash(ctx.campaign, window.part)


def smaller_windows(ctx: CollectContext, window: CollectionWindow) -> list[CollectionWindow]:
    """What a window too big for a day becomes: its halves by date, else parts of its query."""
    if window.days > 1:
        return window.halves()
    parts = split_part(ctx.campaign.query.to_api(), window.part)
    return [window.model_copy(update={"part": part}) for part in parts]


def _page_window(ctx: CollectContext, window: CollectionWindow) -> WindowOutcome:
    with session_scope(ctx.database_url) as session:
        row = ensure_window(session, ctx.campaign_id, window_hash(ctx, window), window)
        if row.status in (WindowStatus.done, WindowStatus.split):
            smaller = smaller_windows(ctx, window) if row.status == WindowStatus.split else []
            return WindowOutcome(
                window=window,
                status="skipped",
                note=(
                    f"already collected: {row.videos} videos"
                    if row.status == WindowStatus.done
                    else "already split into " + ", ".join(str(w) for w in smaller)
                ),
                split_into=smaller,
            )
        # A search stopped by the quota: its id will not outlive the day (see `parts.py`).
        stopped_by_quota = row.status == WindowStatus.quota_exhausted and bool(row.search_id)
        window_id, cursor, search_id = row.id, row.cursor, row.search_id
        sighting_at = row.started_at or utcnow()
        session.execute(
            update(WindowRow)
            .where(WindowRow.id == window_id)
            .values(status=WindowStatus.running, started_at=sighting_at, updated_at=utcnow())
        )
        requests_before = row.requests
    reserved_before = ctx.client.ledger.reserved[window_id]

    def requests_made() -> int:
        """This pass's requests (the ledger rows themselves stay the authority on the budget)."""
        return ctx.client.ledger.reserved[window_id] - reserved_before

    start_date, end_date = window.request_dates()
    body = ctx.campaign.api_request_body(window.start, window.end)
    body.update(start_date=start_date, end_date=end_date)
    part = part_query(body["query"], window.part)
    left_out = leave_out(ctx, window, sighting_at)
    body["query"] = leaving_out(part, left_out.ids)
    outcome = WindowOutcome(window=window, status="done")
    fruitless, restarts = 0, 0
    invalid_notes: list[str] = []

    def finish(status: OutcomeStatus, note: str | None, **checkpoint) -> WindowOutcome:
        with session_scope(ctx.database_url) as session:
            checkpoint_window(
                session,
                window_id,
                status=WindowStatus(status),
                last_error=note,
                requests=requests_before + requests_made(),
                **checkpoint,
            )
        outcome.requests = requests_made()
        outcome.status, outcome.note = status, note
        return outcome

    while True:
        # The first page of a search the quota stopped is asked once: if its id is gone, the
        # window needs more than a day and is split (retrying would only spend the new day).
        resuming = stopped_by_quota and outcome.pages == 0 and restarts == 0
        try:
            page = fetch_page(
                ctx, body, cursor, search_id, window_id, outcome.faults, once=resuming
            )
        except SearchIdExpired as fault:
            stored = leave_out(ctx, window, utcnow()) if resuming else None
            if stored and stored.complete and stored.ids:
                # Lost at midnight: start again, leaving out every video already stored.
                stopped_by_quota = False
                note = f"search lost after the quota stop ({fault}); restarted without the stored"
                sighting_at, left_out = restart_search(ctx, window, window_id, note)
                cursor, search_id, body["query"] = None, None, leaving_out(part, left_out.ids)
                continue
            smaller = smaller_windows(ctx, window) if resuming else []
            if smaller:
                outcome.split_into = smaller
                names = ", ".join(str(w) for w in smaller)
                note = f"needs more than a day's quota (search lost: {fault}); split into {names}"
                return finish("split", note)
            if restarts < ctx.policies.max_search_restarts:
                restarts += 1
                note = f"search restarted from cursor 0 after: {fault}"
                sighting_at, left_out = restart_search(ctx, window, window_id, note)
                cursor, search_id, body["query"] = None, None, leaving_out(part, left_out.ids)
                continue
            return finish("failed", f"search id kept failing after a restart: {fault}")
        except ServerError as fault:
            if window.days > 1:
                outcome.split_into = window.halves()
                halves = " and ".join(str(w) for w in outcome.split_into)
                return finish("split", f"persistent server errors ({fault}); split into {halves}")
            return finish("failed", f"persistent server errors on a one-day window: {fault}")
        except (InvalidCursor, NetworkFailure) as fault:
            return finish("failed", f"{fault.kind} after retries: {fault}")
        except (DailyQuotaExhausted, ShortRateLimit) as fault:
            reason = (
                f"rate limit never lifted: {fault}"
                if isinstance(fault, ShortRateLimit)
                else str(fault)
            )
            raise QuotaExhausted(finish("quota_exhausted", reason), reason) from None
        except (TokenRejected, RequestRejected) as fault:
            if isinstance(fault, RequestRejected) and left_out.ids and cursor is None:
                log.warning("window %s: the API refused the left-out ids (%s)", window, fault)
                ctx.leave_out_refused, left_out, body["query"] = True, LeftOut([], False), part
                continue
            raise CollectAborted(
                finish("failed", f"request refused: {fault}"), str(fault)
            ) from None

        outcome.invalid_videos += len(page.invalid)
        if page.invalid:
            invalid_notes.extend(page.invalid)
            log.warning("window %s: skipped invalid records: %s", window, "; ".join(page.invalid))
        search_id = page.search_id or search_id
        checkpoint = {
            "cursor": page.cursor,
            "search_id": search_id,
            "requests": requests_before + requests_made(),
        }
        last_page = not page.has_more
        if last_page:  # done in the same transaction as the last page: no resume past the end
            note = f"{len(invalid_notes)} invalid record(s) skipped: " if invalid_notes else None
            note = note and note + "; ".join(invalid_notes[:5])  # the API sent them: on file
            checkpoint.update(status=WindowStatus.done, finished_at=utcnow(), last_error=note)
        with session_scope(ctx.database_url) as session:
            stored = store_page(
                session,
                campaign_id=ctx.campaign_id,
                window_id=window_id,
                videos=page.videos,
                raws=page.raw,
                sighting_at=sighting_at,
                checkpoint=checkpoint,
            )
            keep_rejected(session, window_id, page.rejected, page.invalid)
        outcome.pages += 1
        outcome.videos += stored.new_sightings
        outcome.new_videos += stored.new_videos
        if last_page:
            outcome.requests, outcome.note = requests_made(), checkpoint["last_error"]
            return outcome
        fruitless = fruitless + 1 if not page.videos else 0
        if fruitless >= ctx.policies.max_empty_pages:
            note = (
                f"stopped after {fruitless} pages in a row with has_more and no video "
                f"(cursor {page.cursor})"
            )
            return finish("failed", note)
        cursor = page.cursor


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
