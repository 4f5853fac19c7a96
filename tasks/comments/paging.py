"""Paging one video's comments by cursor, checkpointed after every page, under the named policies.

Faults follow the collect stage's policies (`CollectPolicies`, the same waits): 500s, "Invalid
count or cursor", network errors and short 429s are retried; still failing, the video is
`failed` with its cursor kept, so the next run resumes it from the last stored page. The daily
quota (the API's 429 or our own ledger budget) stops the run for the day (`quota_exhausted`,
cursor kept). A refused token, scope or field list stops the run: every video would fail alike;
any other 400 is recorded on its video (`failed`, with the API's words) and the run goes on.
Pages with has_more and no comment are followed `max_empty_pages` times in a row, then the video
is `failed`. A video is `done` when the API says there is no more or its cursor reaches the API's
1,000 comments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, Field

from gettok import claims
from gettok.clients.research_api import (
    ApiFault,
    DailyQuotaExhausted,
    RequestRejected,
    ResearchApiClient,
    ShortRateLimit,
    TokenRejected,
)
from gettok.clients.research_comments import (
    MAX_COMMENTS_PER_VIDEO,
    CommentPage,
    list_comments,
)
from gettok.db import session_scope
from gettok.models.schema import CommentStatus, utcnow
from gettok.retry import call_with_retries
from gettok.tasks.collect.policies import CollectPolicies
from gettok.tasks.comments.store import move_checkpoint, open_checkpoint, store_comments

log = logging.getLogger(__name__)
CLAIM_STAGE = "comments"
T = TypeVar("T")


class VideoComments(BaseModel):
    """What one pass over a video's comments did (counts are for this pass)."""

    video_id: int
    status: str  # done, failed, quota_exhausted, skipped (already done), busy (another worker)
    pages: int = 0
    comments: int = 0  # new to the database
    requests: int = 0
    faults: dict[str, int] = Field(default_factory=dict)
    note: str | None = None


class CommentsQuotaExhausted(Exception):
    def __init__(self, outcome: VideoComments, reason: str):
        super().__init__(reason)
        self.outcome, self.reason = outcome, reason


class CommentsAborted(Exception):
    def __init__(self, outcome: VideoComments, reason: str):
        super().__init__(reason)
        self.outcome, self.reason = outcome, reason


@dataclass
class CommentsContext:
    database_url: str
    client: ResearchApiClient
    policies: CollectPolicies


def collect_video_comments(ctx: CommentsContext, video_id: int) -> VideoComments:
    """Page one video's comments to the end (or a fault), held by this worker alone."""
    if not claims.claim(ctx.database_url, CLAIM_STAGE, [video_id]):
        return VideoComments(video_id=video_id, status="busy", note="another worker holds it")
    try:
        return _page_video(ctx, video_id)
    finally:
        claims.release(ctx.database_url, CLAIM_STAGE, [video_id])


def _page_video(ctx: CommentsContext, video_id: int) -> VideoComments:
    with session_scope(ctx.database_url) as session:
        row = open_checkpoint(session, video_id)
        if row.status == CommentStatus.done:
            return VideoComments(video_id=video_id, status="skipped", note="already done")
        cursor, requests_before = row.cursor or 0, row.requests
        move_checkpoint(
            session,
            video_id,
            status=CommentStatus.running,
            started_at=row.started_at or utcnow(),
        )
    outcome = VideoComments(video_id=video_id, status="done")

    def finish(status: CommentStatus, note: str | None) -> VideoComments:
        with session_scope(ctx.database_url) as session:
            move_checkpoint(
                session,
                video_id,
                status=status,
                last_error=note,
                requests=requests_before + outcome.requests,
            )
        outcome.status, outcome.note = status.value, note
        return outcome

    fruitless = 0
    while True:
        try:
            page = fetch_comment_page(ctx, video_id, cursor, outcome)
        except (DailyQuotaExhausted, ShortRateLimit) as fault:
            reason = str(fault) if isinstance(fault, DailyQuotaExhausted) else f"429s: {fault}"
            finish(CommentStatus.quota_exhausted, reason)
            raise CommentsQuotaExhausted(outcome, reason) from None
        except (TokenRejected, RequestRejected) as fault:
            finish(CommentStatus.failed, f"request refused: {fault}")
            if refuses_every_video(fault):
                raise CommentsAborted(outcome, str(fault)) from None
            return outcome
        except ApiFault as fault:
            return finish(CommentStatus.failed, f"{fault.kind} after retries: {fault}")
        if page.invalid:
            log.warning("video %s: skipped invalid comments: %s", video_id, "; ".join(page.invalid))
        last = not page.has_more or page.cursor >= MAX_COMMENTS_PER_VIDEO
        checkpoint = {"cursor": page.cursor, "requests": requests_before + outcome.requests}
        if last:  # done with the last page: a rerun never asks past the end
            checkpoint.update(status=CommentStatus.done, finished_at=utcnow(), last_error=None)
        with session_scope(ctx.database_url) as session:
            outcome.comments += store_comments(
                session, video_id, page.comments, page.raw, checkpoint
            )
        outcome.pages += 1
        if last:
            return outcome
        fruitless = fruitless + 1 if not page.comments else 0
        if fruitless >= ctx.policies.max_empty_pages:
            note = f"{fruitless} pages in a row with has_more and no comment (cursor {page.cursor})"
            return finish(CommentStatus.failed, note)
        cursor = page.cursor


def refuses_every_video(fault: ApiFault) -> bool:
    """A refusal no other video can get past: the token, the scope or the field list. Any other
    400 names this video alone (recorded on it; the run goes on)."""
    words = str(fault).lower()
    return (
        isinstance(fault, TokenRejected)
        or fault.error_code == "scope_permission_missed"
        or "field" in words
        or "scope" in words
    )


def fetch_comment_page(
    ctx: CommentsContext, video_id: int, cursor: int, outcome: VideoComments
) -> CommentPage:
    """One page, each fault retried under its policy; raised once the policy gives up."""
    before = ctx.client.ledger.reserved[None]
    try:
        return retried(ctx, lambda: list_comments(ctx.client, video_id, cursor), outcome.faults)
    finally:
        outcome.requests += ctx.client.ledger.reserved[None] - before


def retried(ctx: CommentsContext, call: Callable[[], T], faults: dict[str, int]) -> T:
    """`call()`, each Research API fault retried under its named policy (gettok.retry: waits as
    the server asked, never sooner); the fault is raised once its policy gives up or has none."""

    def counted() -> T:
        try:
            return call()
        except ApiFault as fault:
            faults[fault.kind] = faults.get(fault.kind, 0) + 1
            raise

    return call_with_retries(
        counted,
        policies=ctx.policies.retried(),
        kind_of=lambda exc: exc.kind if isinstance(exc, ApiFault) else None,
        server_wait_s=lambda exc: getattr(exc, "retry_after_s", None),
    )
