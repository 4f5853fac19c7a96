"""Stage watermarks: a daily start does work in proportion to what is new, not to the campaign.

A stage's input becomes ready at a recorded time: a video joins the campaign (`first_seen_at`)
or is seen again (`last_seen_at`), its download changes (`updated_at`), it is transcribed,
framed or answered (`created_at`, `recorded_at`). Each of those times is indexed. After a pass,
the stage's watermark for the campaign and its settings' fingerprint is set to a time at or
before which every ready input has its outcome row (done or failed): before the earliest input
the pass met and left pending (`finish_downstream`; a stage whose inputs have several times
moves it only when nothing is left, `finish_if_settled`), and at most `MARGIN` before the
pass's start. The next pass looks only at inputs ready after the mark, plus the retries each
stage finds by their status (dropped downloads, answers asked again).

The mark is read from the data, so an input a dead worker held or a limit left keeps the mark
before it. What it cannot see is a row written with an earlier time than its commit (a long
transaction, a worker's clock behind the others'): the mark stays `MARGIN` behind the pass's
start for those, and every `WALK_EVERY` a pass looks at every member again, so an input that
slipped anyway is found within a week, not lost. A pass with other settings (a new Whisper
model, prompt or watch target) has no mark yet: it looks at every member.
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gettok import db, membership
from gettok.keyset import KeysetPages
from gettok.membership import campaign_id
from gettok.models.schema import CampaignVideo, Download, StageWatermark, utcnow

log = logging.getLogger(__name__)

MARGIN = timedelta(hours=1)  # how late a commit may come after the time it recorded
WALK_EVERY = timedelta(days=7)  # how often a pass looks at every member regardless


@dataclass(frozen=True)
class Sweep:
    """One pass of one stage over one campaign: from where it looks (`since`; None: at every
    member) and when it started (the mark it may set is at most `started - MARGIN`)."""

    url: str
    campaign_id: int
    stage: str
    fingerprint: str
    started: datetime
    since: datetime | None
    walked_at: datetime | None  # the last pass over every member (None: none yet)

    @property
    def whole(self) -> bool:
        return self.since is None


def begin(
    url: str, campaign: str | int | None, stage: str, fingerprint: str, *, whole: bool = False
) -> Sweep | None:
    """The pass a stage starts now: past its watermark, or over every member when `whole`, when
    there is none yet for these settings or the last whole pass is `WALK_EVERY` old. None for a
    pass over every video of every campaign (no campaign: nothing to keep a mark for)."""
    if campaign is None:
        return None
    started = utcnow()
    with db.session_scope(url) as session:
        cid = session.scalar(select(campaign_id(campaign)))
        if cid is None:
            return None
        row = session.get(StageWatermark, (cid, stage, fingerprint))
        mark, walked = (row.mark, row.walked_at) if row else (None, None)
    due = walked is None or started - walked >= WALK_EVERY
    since = None if whole or due else mark
    return Sweep(url, cid, stage, fingerprint, started, since, walked)


def finish(sweep: Sweep | None, first_unsettled: datetime | None) -> datetime | None:
    """Record the mark after a pass: just before `first_unsettled` (when the earliest input
    still without an outcome became ready; None: none is left) and at most `MARGIN` before the
    pass started. Returns the mark."""
    if sweep is None:
        return None
    mark = sweep.started - MARGIN
    if first_unsettled is not None:
        mark = min(mark, first_unsettled - timedelta(microseconds=1))
    walked = sweep.started if sweep.whole else sweep.walked_at
    key = (sweep.campaign_id, sweep.stage, sweep.fingerprint)
    try:
        with db.session_scope(sweep.url) as session:
            row = session.get(StageWatermark, key)
            if row is None:
                session.add(
                    StageWatermark(
                        campaign_id=sweep.campaign_id,
                        stage=sweep.stage,
                        fingerprint=sweep.fingerprint,
                        mark=mark,
                        walked_at=walked,
                    )
                )
            else:
                row.mark, row.walked_at = mark, max(walked, row.walked_at)
    except IntegrityError:  # a concurrent pass recorded its own first: it is as true as ours
        log.info("%s watermark for campaign %d recorded by another pass", *key[1::-1])
    return mark


# --- stages that take a downloaded video (transcribe, frames) ---------------------------------

CHUNK = 500  # ids one query of a stage's pending check is given, at most


DOWNLOADED = (Download.video_id, Download.updated_at)  # the input most stages take


def fingerprint(*parts: str) -> str:
    """A watermark's key for settings made of several parts."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def ready_since(
    url: str, campaign: int, since: datetime, video=DOWNLOADED[0], changed=DOWNLOADED[1]
) -> list[int]:
    """The campaign's members whose input (a table's `video` id and `changed` time columns:
    their download unless given) changed, or who joined it, after `since`, in id order: read
    from the index on each time, however many members came before."""
    member = (CampaignVideo.video_id == video) & (CampaignVideo.campaign_id == campaign)
    inputs = select(video).join(CampaignVideo, member)
    joined = select(CampaignVideo.video_id).where(CampaignVideo.campaign_id == campaign)
    with db.session_scope(url) as session:
        ids = set(session.scalars(inputs.where(changed > since)))
        ids.update(session.scalars(joined.where(CampaignVideo.first_seen_at > since)))
    return sorted(ids)


def first_ready(
    url: str, campaign: int, ids: Iterable[int], video=DOWNLOADED[0], changed=DOWNLOADED[1]
) -> datetime | None:
    """The earliest time any of `ids` became ready for a stage: the later of when its input
    (columns as in `ready_since`) last changed and when it joined the campaign."""
    first = None
    stmt = select(changed, CampaignVideo.first_seen_at).join(
        CampaignVideo, (CampaignVideo.video_id == video) & (CampaignVideo.campaign_id == campaign)
    )
    with db.session_scope(url) as session:
        for chunk in chunks(ids, CHUNK):
            for changed_at, joined in session.execute(stmt.where(video.in_(chunk))):
                ready = max(changed_at, joined)
                first = ready if first is None else min(first, ready)
    return first


def chunks(items: Iterable[int], size: int = CHUNK) -> Iterator[list[int]]:
    """`items` as lists of at most `size`: the id lists one query is given."""
    items = iter(items)
    while chunk := list(islice(items, size)):
        yield chunk


PendingIds = Callable[[list[int], int], list[Any]]  # (candidate ids, n) -> pending rows
StillPending = Callable[[list[int]], list[int]]  # (ids) -> those still pending


class SweepPages(KeysetPages):
    """Keyset pages that remember every id they gave (`met`), so that after the pass the stage
    re-checks only those, not the campaign, for what is still left (`finish_downstream`)."""

    def __init__(self, fetch, size: int, limit: int | None, key: Callable[[Any], int]) -> None:
        super().__init__(fetch, size, limit, key)
        self.met = array("q")

    def __iter__(self):
        for page in super().__iter__():
            self.met.extend(self.key(row) for row in page)
            yield page

    @property
    def complete(self) -> bool:
        """The pass met everything pending (no limit cut it short)."""
        return self.limit is None or self.read < self.limit


def downstream_pages(
    url: str,
    sweep: Sweep | None,
    campaign: str | int | None,
    walk: Callable[[int | None, int, int], list],
    pending_among: PendingIds,
    size: int,
    limit: int | None = None,
    key: Callable[[Any], int] = lambda row: row,
    ready: Callable[[Sweep], list[int]] | None = None,
) -> SweepPages:
    """A downstream stage's pending work: past the sweep's mark, `pending_among` the members
    ready since (`ready(sweep)`, sorted ids; `ready_since` unless given), a chunk of ids per
    query; over every member (`walk`, the stage's ranged query) when the sweep is whole or
    there is none."""
    if sweep is None or sweep.whole:
        return SweepPages(membership.member_fetch(url, campaign, walk), size, limit, key)
    ids = (ready or _downloaded_or_joined)(sweep)

    def fetch(after: int | None, n: int) -> list:
        start = 0 if after is None else bisect_right(ids, after)
        rows: list = []
        while len(rows) < n and start < len(ids):
            rows += pending_among(ids[start : start + CHUNK], n - len(rows))
            start += CHUNK
        return rows

    return SweepPages(fetch, size, limit, key)


def _downloaded_or_joined(sweep: Sweep) -> list[int]:
    return ready_since(sweep.url, sweep.campaign_id, sweep.since)


def _left(pages: SweepPages, still_pending: StillPending) -> Iterator[int]:
    for chunk in chunks(pages.met, CHUNK):
        yield from still_pending(chunk)


def finish_downstream(
    sweep: Sweep | None,
    pages: SweepPages,
    still_pending: StillPending,
    ready: tuple[Any, Any] = DOWNLOADED,
) -> None:
    """Set the mark of a stage after its pass: what the pass met and is `still_pending` keeps
    it before the earliest of those to become ready (`first_ready` by the `ready` columns). A
    pass a limit cut short leaves the mark as it was."""
    if sweep is not None and pages.complete:
        left = _left(pages, still_pending)
        finish(sweep, first_ready(sweep.url, sweep.campaign_id, left, *ready))


def finish_if_settled(
    sweep: Sweep | None,
    pages: SweepPages,
    still_pending: StillPending,
    retried: set[int] = frozenset(),
) -> None:
    """Set the mark after a pass whose inputs have no single time to become ready by (several
    inputs, each with its own): to the pass's start, less `MARGIN`, only if nothing it met is
    still pending but the `retried` (the stage finds those by their status). Otherwise the
    mark, and the last whole pass, stay as they were, and the next pass looks again."""
    if sweep is None or not pages.complete:
        return
    if all(i in retried for i in _left(pages, still_pending)):
        finish(sweep, None)
