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

from pydantic import BaseModel, Field
from sqlalchemy import update

from gettok.clients.research_api import (
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
from gettok.models.campaign import Campaign
from gettok.models.schema import CollectionWindow as WindowRow
from gettok.models.schema import WindowStatus, utcnow
from gettok.tasks.collect.days import claim_days, missing_runs
from gettok.tasks.collect.narrowing import LeftOut, leaving_out
from gettok.tasks.collect.parts import part_query
from gettok.tasks.collect.policies import CollectPolicies
from gettok.tasks.collect.search import (
    fetch_page,
    leave_out,
    restart_search,
    smaller_windows,
    window_hash,
)
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


def _page_window(ctx: CollectContext, window: CollectionWindow) -> WindowOutcome:
    """Page a window from its checkpoint to the end, or to a fault it cannot get past."""
    with session_scope(ctx.database_url) as session:
        row = ensure_window(session, ctx.campaign_id, window_hash(ctx, window), window)
        if row.status in (WindowStatus.done, WindowStatus.split):
            return _already_collected(ctx, window, row)
        resume = _mark_running(session, row)
    return _WindowPass(ctx, window, resume).run()


def _already_collected(
    ctx: CollectContext, window: CollectionWindow, row: WindowRow
) -> WindowOutcome:
    """A rerun's outcome for a window that is done, or split (its parts to collect instead)."""
    if row.status == WindowStatus.done:
        note = f"already collected: {row.videos} videos"
        return WindowOutcome(window=window, status="skipped", note=note)
    smaller = smaller_windows(ctx, window)
    note = "already split into " + ", ".join(str(w) for w in smaller)
    return WindowOutcome(window=window, status="skipped", note=note, split_into=smaller)


@dataclass
class _Resume:
    """Where a pass over a window starts: its saved checkpoint."""

    window_id: int
    cursor: int | None
    search_id: str | None
    sighting_at: datetime
    requests_before: int
    # A search stopped by the quota: its id will not outlive the day (see `parts.py`).
    stopped_by_quota: bool


def _mark_running(session, row: WindowRow) -> _Resume:
    """Mark the window running (a first pass also sets its sighting time); return its checkpoint."""
    resume = _Resume(
        window_id=row.id,
        cursor=row.cursor,
        search_id=row.search_id,
        sighting_at=row.started_at or utcnow(),
        requests_before=row.requests,
        stopped_by_quota=row.status == WindowStatus.quota_exhausted and bool(row.search_id),
    )
    session.execute(
        update(WindowRow)
        .where(WindowRow.id == resume.window_id)
        .values(status=WindowStatus.running, started_at=resume.sighting_at, updated_at=utcnow())
    )
    return resume


class _WindowPass:
    """One pass over a window: the search's state between pages, and what each fault does to it."""

    def __init__(self, ctx: CollectContext, window: CollectionWindow, resume: _Resume):
        self.ctx, self.window, self.resume = ctx, window, resume
        self.window_id = resume.window_id
        self.cursor, self.search_id = resume.cursor, resume.search_id
        self.sighting_at = resume.sighting_at
        self.stopped_by_quota = resume.stopped_by_quota
        self.reserved_before = ctx.client.ledger.reserved[self.window_id]
        start_date, end_date = window.request_dates()
        self.body = ctx.campaign.api_request_body(window.start, window.end)
        self.body.update(start_date=start_date, end_date=end_date)
        self.part = part_query(self.body["query"], window.part)
        self.left_out = leave_out(ctx, window, self.sighting_at)
        self.body["query"] = leaving_out(self.part, self.left_out.ids)
        self.outcome = WindowOutcome(window=window, status="done")
        self.fruitless, self.restarts = 0, 0
        self.invalid_notes: list[str] = []

    def run(self) -> WindowOutcome:
        """Fetch and store pages until the last one, or until a fault ends the pass."""
        while True:
            # The first page of a search the quota stopped is asked once: if its id is gone, the
            # window needs more than a day and is split (retrying would only spend the new day).
            resuming = self.stopped_by_quota and self.outcome.pages == 0 and self.restarts == 0
            try:
                page = fetch_page(
                    self.ctx,
                    self.body,
                    self.cursor,
                    self.search_id,
                    self.window_id,
                    self.outcome.faults,
                    once=resuming,
                )
            except SearchIdExpired as fault:
                ended = self._search_lost(fault, resuming)
            except ServerError as fault:
                ended = self._server_failed(fault)
            except (InvalidCursor, NetworkFailure) as fault:
                ended = self.finish("failed", f"{fault.kind} after retries: {fault}")
            except (DailyQuotaExhausted, ShortRateLimit) as fault:
                reason = (
                    f"rate limit never lifted: {fault}"
                    if isinstance(fault, ShortRateLimit)
                    else str(fault)
                )
                raise QuotaExhausted(self.finish("quota_exhausted", reason), reason) from None
            except (TokenRejected, RequestRejected) as fault:
                ended = self._refused(fault)
            else:
                ended = self._store(page)
            if ended is not None:
                return ended

    def requests_made(self) -> int:
        """This pass's requests (the ledger rows themselves stay the authority on the budget)."""
        return self.ctx.client.ledger.reserved[self.window_id] - self.reserved_before

    def finish(self, status: OutcomeStatus, note: str | None, **checkpoint) -> WindowOutcome:
        """End the pass: checkpoint the window with `status` and return the outcome."""
        with session_scope(self.ctx.database_url) as session:
            checkpoint_window(
                session,
                self.window_id,
                status=WindowStatus(status),
                last_error=note,
                requests=self.resume.requests_before + self.requests_made(),
                **checkpoint,
            )
        self.outcome.requests = self.requests_made()
        self.outcome.status, self.outcome.note = status, note
        return self.outcome

    def _restart(self, note: str) -> None:
        """Start the search again from cursor 0, leaving out what is stored by now."""
        self.sighting_at, self.left_out = restart_search(
            self.ctx, self.window, self.window_id, note
        )
        self.cursor, self.search_id = None, None
        self.body["query"] = leaving_out(self.part, self.left_out.ids)

    def _search_lost(self, fault: SearchIdExpired, resuming: bool) -> WindowOutcome | None:
        """Restart a search whose id expired, or split or fail the window; None: go on paging."""
        stored = leave_out(self.ctx, self.window, utcnow()) if resuming else None
        if stored and stored.complete and stored.ids:
            # Lost at midnight: start again, leaving out every video already stored.
            self.stopped_by_quota = False
            self._restart(
                f"search lost after the quota stop ({fault}); restarted without the stored"
            )
            return None
        smaller = smaller_windows(self.ctx, self.window) if resuming else []
        if smaller:
            self.outcome.split_into = smaller
            names = ", ".join(str(w) for w in smaller)
            note = f"needs more than a day's quota (search lost: {fault}); split into {names}"
            return self.finish("split", note)
        if self.restarts < self.ctx.policies.max_search_restarts:
            self.restarts += 1
            self._restart(f"search restarted from cursor 0 after: {fault}")
            return None
        return self.finish("failed", f"search id kept failing after a restart: {fault}")

    def _server_failed(self, fault: ServerError) -> WindowOutcome:
        """Persistent 500s: split a window of several days in two, fail a one-day window."""
        if self.window.days > 1:
            self.outcome.split_into = self.window.halves()
            halves = " and ".join(str(w) for w in self.outcome.split_into)
            return self.finish("split", f"persistent server errors ({fault}); split into {halves}")
        return self.finish("failed", f"persistent server errors on a one-day window: {fault}")

    def _refused(self, fault: TokenRejected | RequestRejected) -> None:
        """A first request refused for its left-out ids is asked again without them (None);
        any other refusal aborts the run."""
        if isinstance(fault, RequestRejected) and self.left_out.ids and self.cursor is None:
            log.warning("window %s: the API refused the left-out ids (%s)", self.window, fault)
            self.ctx.leave_out_refused = True
            self.left_out, self.body["query"] = LeftOut([], False), self.part
            return None
        raise CollectAborted(
            self.finish("failed", f"request refused: {fault}"), str(fault)
        ) from None

    def _store(self, page: QueryPage) -> WindowOutcome | None:
        """Store a page with the checkpoint after it; the outcome once the window ends."""
        self.outcome.invalid_videos += len(page.invalid)
        if page.invalid:
            self.invalid_notes.extend(page.invalid)
            log.warning(
                "window %s: skipped invalid records: %s", self.window, "; ".join(page.invalid)
            )
        self.search_id = page.search_id or self.search_id
        checkpoint = self._checkpoint_after(page)
        with session_scope(self.ctx.database_url) as session:
            stored = store_page(
                session,
                campaign_id=self.ctx.campaign_id,
                window_id=self.window_id,
                videos=page.videos,
                raws=page.raw,
                sighting_at=self.sighting_at,
                checkpoint=checkpoint,
            )
            keep_rejected(session, self.window_id, page.rejected, page.invalid)
        self.outcome.pages += 1
        self.outcome.videos += stored.new_sightings
        self.outcome.new_videos += stored.new_videos
        if not page.has_more:
            self.outcome.requests = self.requests_made()
            self.outcome.note = checkpoint["last_error"]
            return self.outcome
        self.fruitless = self.fruitless + 1 if not page.videos else 0
        if self.fruitless >= self.ctx.policies.max_empty_pages:
            note = (
                f"stopped after {self.fruitless} pages in a row with has_more and no video "
                f"(cursor {page.cursor})"
            )
            return self.finish("failed", note)
        self.cursor = page.cursor
        return None

    def _checkpoint_after(self, page: QueryPage) -> dict:
        """The window's checkpoint once `page` is stored; after the last page it is marked done
        in the same transaction, so no resume goes past the end."""
        checkpoint = {
            "cursor": page.cursor,
            "search_id": self.search_id,
            "requests": self.resume.requests_before + self.requests_made(),
        }
        if not page.has_more:
            note = (
                f"{len(self.invalid_notes)} invalid record(s) skipped: "
                if self.invalid_notes
                else None
            )
            note = note and note + "; ".join(self.invalid_notes[:5])  # the API sent them: on file
            checkpoint.update(status=WindowStatus.done, finished_at=utcnow(), last_error=note)
        return checkpoint
