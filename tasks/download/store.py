"""The `downloads` table: what each video's download came to, and what a run should ask for.

A row is written only after its file is in place, so the table is the truth about the media
folder; reruns ask again only for what can still succeed (never tried, dropped connections past
their back-off, throttled ones after the pause) and `--retry-failed` for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, computed_field
from sqlalchemy import and_, delete, func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from gettok import db, membership
from gettok.keyset import KeysetPages, in_id_ranges
from gettok.membership import campaign_videos
from gettok.models.schema import (
    CampaignVideo,
    Download,
    DownloadStatus,
    Frame,
    FrameExtraction,
    PruneRecord,
    Video,
    utcnow,
)
from gettok.models.schema import (
    MediaInfo as MediaInfoRow,
)
from gettok.stage import StageResult
from gettok.tasks.download.media import MediaInfo, save_media_info

STAGE = "download"
DONE = (DownloadStatus.ok, DownloadStatus.slideshow)
# Decided by TikTok, not by luck: asked again only with --retry-failed.
FINAL_FAILURES = (
    DownloadStatus.invalid,
    DownloadStatus.private,
    DownloadStatus.removed,
    DownloadStatus.age_restricted,
    DownloadStatus.unreachable,
)
NOT_PUBLIC = (DownloadStatus.private, DownloadStatus.removed)


class DownloadResult(BaseModel):
    """What one run did: the status each attempted video ended with, and what it put off."""

    statuses: dict[int, DownloadStatus] = {}
    deferred: list[int] = []  # not asked: the run was throttled (global back-off)
    put_off: int = 0  # not asked and not even read: still pending past where the run stopped
    busy: int = 0  # claimed by another worker at the time
    blocked_until: datetime | None = None
    requests: int = 0
    seconds: float = 0.0
    outage: str | None = None  # the site refused every connection: the run stopped

    @computed_field
    @property
    def done(self) -> int:
        return sum(s in DONE for s in self.statuses.values())

    @computed_field
    @property
    def failed(self) -> int:
        return len(self.statuses) - self.done

    @computed_field
    @property
    def skipped(self) -> int:
        return len(self.deferred) + self.put_off

    @computed_field
    @property
    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in self.statuses.values():
            counts[status.value] = counts.get(status.value, 0) + 1
        return dict(sorted(counts.items()))

    def summary(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.by_status.items()) or "nothing asked"
        text = f"{self.done} downloaded of {len(self.statuses)} ({counts})"
        if self.skipped:
            until = (
                f" until {self.blocked_until:%Y-%m-%d %H:%M:%S} UTC" if self.blocked_until else ""
            )
            why = "the site refused every connection" if self.outage else f"throttled{until}"
            text += f"; {self.skipped} put off ({why})"
        if self.busy:
            text += f"; {self.busy} held by other workers"
        if self.outage:
            text += f"; stopped: {self.outage}"
        return text

    def stage_result(self) -> StageResult:
        """Failed by the status each video ended with; put off and held ones are skipped."""
        failed = {s: n for s, n in self.by_status.items() if s not in {d.value for d in DONE}}
        return StageResult(
            stage="download",
            done=self.done,
            skipped=self.skipped + self.busy,
            failed=failed,
            counts={"requests": self.requests},
        )

    def merge(self, other: DownloadResult) -> DownloadResult:
        """This run followed by `other` (a later round or batch): the later status wins."""
        statuses = {**self.statuses, **other.statuses}
        deferred = [i for i in dict.fromkeys(self.deferred + other.deferred) if i not in statuses]
        until = max((t for t in (self.blocked_until, other.blocked_until) if t), default=None)
        return DownloadResult(
            statuses=statuses,
            deferred=deferred,
            put_off=self.put_off + other.put_off,
            blocked_until=until,
            busy=self.busy + other.busy,
            requests=self.requests + other.requests,
            seconds=self.seconds + other.seconds,
            outage=other.outage or self.outage,
        )


@dataclass
class Outcome:
    """One video's download, ready to record."""

    video_id: int
    status: DownloadStatus
    tries: int = 1
    error: str | None = None
    next_attempt_at: datetime | None = None
    path: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    image_paths: list[str] = field(default_factory=list)
    audio_path: str | None = None
    media_info: MediaInfo | None = None
    # How it failed ("statusCode 10204", "HTTP 503"): the same kind run after run ends
    # `unreachable`. None for failures of ours (a full disk) that say nothing about the video.
    kind: str | None = None


@dataclass(frozen=True)
class GiveUp:
    """When a video that keeps failing the same way is given up: after `runs` runs over `days`."""

    runs: int = 5
    days: float = 3.0


def record_outcome(url: str, outcome: Outcome, give_up: GiveUp = GiveUp()) -> DownloadStatus:
    """Write a video's status (after its file is in place), adding this run's tries; return the
    status recorded (`unreachable` when the same failure has lasted long enough)."""
    for retry in range(2):
        try:
            with db.session_scope(url) as session:
                row = session.get(Download, outcome.video_id)
                if row is None:
                    row = Download(video_id=outcome.video_id, attempts=0, failed_runs=0)
                    session.add(row)
                _write(row, outcome)
                _track_failure(row, outcome, give_up)
                if outcome.media_info is not None:
                    save_media_info(session, outcome.video_id, outcome.media_info)
                if outcome.status in NOT_PUBLIC:
                    _mark_not_public(session, outcome.video_id, outcome.status.value)
                return row.status
        except IntegrityError:  # another worker inserted the row first: update it instead
            if retry:
                raise
    raise AssertionError("record_outcome: the retried write neither returned nor raised")


def _write(row: Download, outcome: Outcome) -> None:
    row.status = outcome.status
    row.attempts = (row.attempts or 0) + outcome.tries
    row.last_error = outcome.error
    row.next_attempt_at = outcome.next_attempt_at
    row.is_slideshow = outcome.status == DownloadStatus.slideshow
    row.path, row.bytes, row.sha256 = outcome.path, outcome.bytes, outcome.sha256
    row.image_paths = outcome.image_paths or None
    row.audio_path = outcome.audio_path


def _track_failure(row: Download, outcome: Outcome, give_up: GiveUp) -> None:
    """Count the runs a transient failure repeats the same way; past the limit, give up."""
    if outcome.status != DownloadStatus.transient:
        row.failure_kind, row.failing_since, row.failed_runs = None, None, 0
        return
    if outcome.kind is None:
        return  # our own trouble (disk full): says nothing about the video
    now = utcnow()
    if row.failure_kind == outcome.kind and row.failing_since is not None:
        row.failed_runs = (row.failed_runs or 0) + 1
    else:
        row.failure_kind, row.failing_since, row.failed_runs = outcome.kind[:64], now, 1
    lasted = now - row.failing_since
    if row.failed_runs >= give_up.runs and lasted >= timedelta(days=give_up.days):
        row.status, row.next_attempt_at = DownloadStatus.unreachable, None
        row.last_error = (
            f"unreachable: {row.failed_runs} runs since {row.failing_since:%Y-%m-%d} failed "
            f"the same way ({outcome.error})"
        )[:500]


def _mark_not_public(session, video_id: int, reason: str) -> None:
    """Mark a video found private or removed as prune does: pruned, with nothing derived kept.

    The downloader has deleted its files already; later stages and public exports skip it.
    """
    now = utcnow()
    session.execute(delete(Frame).where(Frame.video_id == video_id))
    session.execute(delete(FrameExtraction).where(FrameExtraction.video_id == video_id))
    session.execute(delete(MediaInfoRow).where(MediaInfoRow.video_id == video_id))
    marked = session.execute(
        update(Video)
        .where(Video.id == video_id, Video.pruned_at.is_(None))
        .values(pruned_at=now, pruned_reason=reason)
    )
    if marked.rowcount:
        session.add(PruneRecord(video_id=video_id, reason=reason, removed_paths=[], pruned_at=now))


def _askable(retry_failed: bool):
    """Videos worth asking for now: never tried, or failed in a way that can still succeed."""
    due = or_(Download.next_attempt_at.is_(None), Download.next_attempt_at <= utcnow())
    askable = [
        Download.video_id.is_(None),
        and_(Download.status.in_([DownloadStatus.transient, DownloadStatus.blocked]), due),
    ]
    if retry_failed:
        askable.append(Download.status.in_(FINAL_FAILURES))
    return or_(*askable)


def still_pending(url: str, video_ids: list[int], retry_failed: bool = False) -> set[int]:
    """Which of `video_ids` are still worth asking for (another worker may have done them)."""
    found: set[int] = set()
    with db.session_scope(url) as session:
        for start in range(0, len(video_ids), 500):
            chunk = video_ids[start : start + 500]
            found.update(
                session.scalars(
                    select(Video.id)
                    .outerjoin(Download, Download.video_id == Video.id)
                    .where(Video.id.in_(chunk), Video.pruned_at.is_(None), _askable(retry_failed))
                )
            )
    return found


PendingKey = tuple[datetime, int]  # (first seen, video id): where a page of pending work ends


def _pending_query(
    campaign_name: str | None,
    retry_failed: bool,
    after: PendingKey | None,
    until: PendingKey | None = None,
):
    """(id, username, first seen) of the videos to ask for, first collected first; with keys
    in (after, until] only, when given."""
    if campaign_name is None:
        seen, member = Video.first_seen_at, Video.id
        stmt = (
            select(Video.id, Video.username, seen)
            .outerjoin(Download, Download.video_id == Video.id)
            .where(
                Video.pruned_at.is_(None),
                _askable(retry_failed),
                *_seen_bounds(after, until, seen, member),
            )
        )
        return stmt.order_by(seen, member)
    # Members worth asking for first (one `downloads` probe each), then `videos` for those only,
    # behind OFFSET 0 so Postgres keeps that order: planned for a row each, it probed `videos`
    # (the widest table, the first to outgrow the cache) for every member and sorted the whole
    # range before the page's LIMIT. EXPLAIN at 100k, a retry page: 43 ms, then 7 ms.
    seen, member = CampaignVideo.first_seen_at, CampaignVideo.video_id
    askable = (
        select(member.label("video_id"), seen.label("first_seen_at"))
        .outerjoin(Download, Download.video_id == member)
        .where(
            CampaignVideo.campaign_id == membership.campaign_id(campaign_name),
            _askable(retry_failed),
            *_seen_bounds(after, until, seen, member),
        )
        .order_by(seen, member)
        .offset(0)
        .subquery("askable")
    )
    stmt = (
        select(Video.id, Video.username, askable.c.first_seen_at)
        .join(askable, askable.c.video_id == Video.id)
        .where(Video.pruned_at.is_(None))
    )
    return stmt.order_by(askable.c.first_seen_at, askable.c.video_id)


def _seen_bounds(after: PendingKey | None, until: PendingKey | None, seen, member) -> list:
    """(first seen, id) in (after, until]. Row comparisons: Postgres reads them as one range of
    the (campaign, first seen, video) index; the same bounds spelt with OR left it scanning and
    sorting every member."""
    bounds = []
    if after is not None:
        bounds.append(tuple_(seen, member) > tuple_(*after))
    if until is not None:
        bounds.append(tuple_(seen, member) <= tuple_(*until))
    return bounds


def pending_videos(
    url: str,
    campaign_name: str | None = None,
    *,
    retry_failed: bool = False,
    limit: int | None = None,
    after: PendingKey | None = None,
) -> list[tuple[int, str | None]]:
    """(id, username) of the videos a run should ask for now, first collected first (past
    `after` only: keyset pages, see `pending_pages`)."""
    return [(i, u) for i, u, _ in _pending_rows(url, campaign_name, retry_failed, after, limit)]


def _pending_rows(
    url: str,
    campaign_name: str | None,
    retry_failed: bool,
    after: PendingKey | None,
    limit: int | None,
    until: PendingKey | None = None,
) -> list[tuple[int, str | None, datetime]]:
    with db.session_scope(url) as session:
        query = _pending_query(campaign_name, retry_failed, after, until).limit(limit)
        return [(i, u, seen) for i, u, seen in session.execute(query)]


def pending_pages(
    url: str,
    campaign_name: str | None,
    size: int,
    *,
    retry_failed: bool = False,
    limit: int | None = None,
    since: datetime | None = None,
) -> KeysetPages[tuple[int, str | None, datetime], PendingKey]:
    """What `pending_videos` lists, `size` rows (id, username, first seen) at a time, each page
    read when the previous one is done; a campaign's members are looked at a range at a time,
    in the order they were first seen (`in_id_ranges`: a page sorted every member otherwise).

    With `since` (the stage's watermark: every member seen by then has a row), only members
    seen after it are walked; the older ones' retries come from the status index first."""

    def between(after: PendingKey | None, until: PendingKey, n: int) -> list:
        return _pending_rows(url, campaign_name, retry_failed, after, n, until=until)

    def range_end(after: PendingKey | None, span: int) -> PendingKey | None:
        with db.session_scope(url) as session:
            return membership.seen_range_end(session, campaign_name, after, span)

    def past(after: PendingKey | None, n: int) -> list:  # every video: no member order to walk
        return _pending_rows(url, None, retry_failed, after, n)

    fetch = past if campaign_name is None else in_id_ranges(between, range_end)
    if since is not None and campaign_name is not None:
        fetch = _past_watermark(url, campaign_name, since, fetch)
    return KeysetPages(fetch, size, limit, key=lambda row: (row[2], row[0]))


LAST_ID = 2**63 - 1  # above every video id: (since, LAST_ID) ends every key seen at `since`


def _past_watermark(url: str, campaign_name: str, since: datetime, walk):
    """A page fetch over the retries of members seen up to `since` (by the status index: they
    are the few with a retryable row), then the walk of members seen after it; one key order."""
    start = (since, LAST_ID)

    def fetch(after: PendingKey | None, n: int) -> list:
        rows = []
        if after is None or after < start:
            rows = _due_retries(url, campaign_name, after, start, n)
        if len(rows) < n:
            rows += walk(max(after, start) if after is not None else start, n - len(rows))
        return rows

    return fetch


def _due_retries(
    url: str, campaign_name: str, after: PendingKey | None, until: PendingKey, n: int
) -> list[tuple[int, str | None, datetime]]:
    """(id, username, first seen) of members with a dropped or throttled download now due,
    keys in (after, until], from the rows of those statuses rather than from every member."""
    seen, member = CampaignVideo.first_seen_at, CampaignVideo.video_id
    stmt = (
        select(Video.id, Video.username, seen)
        .select_from(Download)
        .join(CampaignVideo, CampaignVideo.video_id == Download.video_id)
        .join(Video, Video.id == Download.video_id)
        .where(
            Download.status.in_([DownloadStatus.transient, DownloadStatus.blocked]),
            or_(Download.next_attempt_at.is_(None), Download.next_attempt_at <= utcnow()),
            CampaignVideo.campaign_id == membership.campaign_id(campaign_name),
            Video.pruned_at.is_(None),
            *_seen_bounds(after, until, seen, member),
        )
        .order_by(seen, member)
        .limit(n)
    )
    with db.session_scope(url) as session:
        return [(i, u, t) for i, u, t in session.execute(stmt)]


def first_unsettled(url: str, campaign: str | int, since: datetime | None) -> datetime | None:
    """When the first member (seen after `since`, when given) still without any download row
    was first seen: the download stage's watermark stays before it (`gettok.watermarks`)."""
    seen, member = CampaignVideo.first_seen_at, CampaignVideo.video_id
    stmt = (
        select(seen)
        .join(Video, Video.id == member)
        .where(
            CampaignVideo.campaign_id == membership.campaign_id(campaign),
            Video.pruned_at.is_(None),
            ~select(Download.video_id).where(Download.video_id == member).exists(),
        )
        .order_by(seen, member)
        .limit(1)
    )
    if since is not None:
        stmt = stmt.where(seen > since)
    with db.session_scope(url) as session:
        return session.scalar(stmt)


def transient_due(url: str, campaign_name: str) -> datetime | None:
    """When every dropped connection of the campaign so far may be asked for again."""
    stmt = select(func.max(Download.next_attempt_at)).where(
        Download.video_id.in_(campaign_videos(campaign_name, with_pruned=True)),
        Download.status == DownloadStatus.transient,
    )
    with db.session_scope(url) as session:
        return session.scalar(stmt)


def global_backoff_until(url: str) -> datetime | None:
    """The end of the current back-off, if the last throttle is still recent: then ask nothing."""
    with db.session_scope(url) as session:
        until = session.scalar(
            select(func.max(Download.next_attempt_at)).where(
                Download.status == DownloadStatus.blocked
            )
        )
    return until if until is not None and until > utcnow() else None
