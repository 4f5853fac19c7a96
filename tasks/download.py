"""Download collected videos: page with Pyktok, media streamed with httpx, a status for every video.

Files are written under `<media>/.partial/` and renamed into place (`videos/<id>.mp4`, or
`slides/<id>/` for photo posts) only once complete and valid, and the database row is written after
the rename: a killed run leaves no partial file in place and no `ok` row without its file. Statuses
(`DownloadStatus`) follow the studies' failure taxonomy; reruns retry only what can succeed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import requests
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, computed_field
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from gettok import db
from gettok.settings import Settings
from models.schema import (
    Campaign,
    CampaignVideo,
    Download,
    DownloadStatus,
    Video,
    WorkClaim,
    utcnow,
)
from tasks import claims
from tasks.download_gate import DownloadGate, GateClosed, prefect_rate_limit
from tasks.download_page import PageFailure, VideoPage, read_page, video_url
from tasks.media import MediaInfo, MediaProblem, probe_media, save_media_info

STAGE = "download"
DONE = (DownloadStatus.ok, DownloadStatus.slideshow)
# Decided by TikTok, not by luck: asked again only with --retry-failed.
FINAL_FAILURES = (DownloadStatus.invalid, DownloadStatus.private, DownloadStatus.removed)
MAX_MEDIA_BYTES = 2 * 1024**3
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
# One retry policy for the batch task: only the database can fail it (videos never do).
DATABASE_RETRIES = {"retries": 2, "retry_delay_seconds": [10, 60]}


class DownloadResult(BaseModel):
    """What one run did: the status each attempted video ended with, and what it put off."""

    statuses: dict[int, DownloadStatus] = {}
    deferred: list[int] = []  # not asked: the run was throttled (global back-off)
    busy: int = 0  # claimed by another worker at the time
    blocked_until: datetime | None = None
    requests: int = 0
    seconds: float = 0.0

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
        return len(self.deferred)

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
        if self.deferred:
            until = (
                f" until {self.blocked_until:%Y-%m-%d %H:%M:%S} UTC" if self.blocked_until else ""
            )
            text += f"; {self.skipped} put off (throttled{until})"
        if self.busy:
            text += f"; {self.busy} held by other workers"
        return text

    def merge(self, other: DownloadResult) -> DownloadResult:
        """This run followed by `other` (a later round or batch): the later status wins."""
        statuses = {**self.statuses, **other.statuses}
        deferred = [i for i in dict.fromkeys(self.deferred + other.deferred) if i not in statuses]
        until = max((t for t in (self.blocked_until, other.blocked_until) if t), default=None)
        return DownloadResult(
            statuses=statuses,
            deferred=deferred,
            blocked_until=until,
            busy=self.busy + other.busy,
            requests=self.requests + other.requests,
            seconds=self.seconds + other.seconds,
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


class InvalidMedia(Exception):
    """A body that is not what the page promised (HTML, cut short, empty, undecodable)."""


# --- where files go ---


def video_file(media_dir: Path, video_id: int) -> Path:
    return media_dir / "videos" / f"{int(video_id)}.mp4"


def slides_folder(media_dir: Path, video_id: int) -> Path:
    return media_dir / "slides" / str(int(video_id))


def partial_dir(media_dir: Path) -> Path:
    return media_dir / ".partial"


def _partial_name(video_id: int, suffix: str) -> str:
    # host and pid in the name let a later run tell a dead run's leftovers from live work
    return f"{int(video_id)}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}"


def remove_stale_partials(media_dir: Path) -> int:
    """Delete what killed runs on this host left in `.partial/`; return how many were removed."""
    folder, host, removed = partial_dir(media_dir), socket.gethostname(), 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        parts = entry.name.split(".")
        if len(parts) < 4 or parts[1] != host or not parts[2].isdigit():
            continue
        if _process_alive(int(parts[2])):
            continue
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
        removed += 1
    return removed


def release_dead_claims(url: str) -> int:
    """Drop download claims held by dead processes of this host, so a rerun after kill -9 can
    take their videos at once instead of waiting for the lease to expire."""
    prefix = f"{socket.gethostname()}:"
    with db.session_scope(url) as session:
        workers = session.scalars(
            select(WorkClaim.worker)
            .where(WorkClaim.stage == STAGE, WorkClaim.worker.startswith(prefix))
            .distinct()
        ).all()
        dead = [
            w
            for w in workers
            if w[len(prefix) :].isdigit() and not _process_alive(int(w[len(prefix) :]))
        ]
        if dead:
            session.execute(
                delete(WorkClaim).where(WorkClaim.stage == STAGE, WorkClaim.worker.in_(dead))
            )
    return len(dead)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- one video ---


class Downloader:
    """Downloads videos with one HTTP client and one gate; safe to share between threads."""

    def __init__(self, settings: Settings, gate: DownloadGate):
        self.settings = settings
        self.gate = gate
        self.media_dir = settings.resolved_media_dir
        self.client = httpx.Client(
            timeout=httpx.Timeout(settings.download_timeout_s),
            follow_redirects=True,
            limits=httpx.Limits(max_connections=max(4, settings.download_concurrency * 2)),
        )

    def close(self) -> None:
        self.client.close()

    def download(self, video_id: int, username: str | None) -> Outcome:
        """Try one video until it has a status (invalid bodies are asked for again, N times)."""
        url = video_url(self.settings.tiktok_web_url, username, video_id)
        tries = self.settings.download_invalid_attempts
        for attempt in range(1, tries + 1):
            outcome = self._attempt(video_id, url)
            outcome.tries = attempt
            if outcome.status != DownloadStatus.invalid or attempt == tries:
                break
        if outcome.status in (DownloadStatus.private, DownloadStatus.removed):
            self._forget_media(video_id)  # no longer public: keep nothing of it
        return outcome

    def _attempt(self, video_id: int, url: str) -> Outcome:
        try:
            self.gate.wait()
            page = read_page(url, self.settings.download_timeout_s)
            self.gate.succeeded()
            if page.is_slideshow:
                return self._save_slideshow(video_id, page)
            return self._save_video(video_id, page)
        except PageFailure as failure:
            return self._failed(video_id, failure.status, failure.reason)
        except InvalidMedia as exc:
            return self._failed(video_id, DownloadStatus.invalid, str(exc))
        except (requests.RequestException, httpx.TransportError) as exc:
            return self._failed(video_id, DownloadStatus.transient, f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                raise  # the disk, not the video: stop the batch
            return self._failed(video_id, DownloadStatus.transient, f"{type(exc).__name__}: {exc}")

    def _failed(self, video_id: int, status: DownloadStatus, error: str) -> Outcome:
        next_attempt_at = None
        if status == DownloadStatus.transient:
            delay = self.settings.download_transient_backoff_s
            next_attempt_at = utcnow() + timedelta(seconds=delay)
        elif status == DownloadStatus.blocked:
            next_attempt_at = self.gate.throttled()
        return Outcome(video_id, status, error=error[:500], next_attempt_at=next_attempt_at)

    def _fetch(self, address: str, page: VideoPage, dest: Path) -> tuple[int, str, str]:
        """Stream one media body to `dest` with the page's cookies; return size, sha256, type."""
        if urlsplit(address).scheme not in ("http", "https"):
            raise InvalidMedia(f"media address is not http(s): {address[:80]!r}")
        headers = {
            "User-Agent": USER_AGENT,
            "Referer": page.url,
            "Cookie": "; ".join(f"{k}={v}" for k, v in page.cookies.items()),
        }
        self.gate.wait()
        digest, size = hashlib.sha256(), 0
        with self.client.stream("GET", address, headers=headers) as response:
            if response.status_code == 429:
                raise PageFailure(DownloadStatus.blocked, "media throttled (HTTP 429)")
            if response.status_code in (404, 410):
                raise InvalidMedia(f"media HTTP {response.status_code}")
            if response.status_code >= 400:
                raise PageFailure(DownloadStatus.transient, f"media HTTP {response.status_code}")
            promised = response.headers.get("content-length")
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(1 << 16):
                    size += len(chunk)
                    if size > MAX_MEDIA_BYTES:
                        raise InvalidMedia(f"media larger than {MAX_MEDIA_BYTES} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if promised is not None and promised.isdigit() and int(promised) != size:
                raise httpx.RemoteProtocolError(f"body cut short: {size} of {promised} bytes")
        self.gate.succeeded()
        return size, digest.hexdigest(), response.headers.get("content-type", "")

    def _save_video(self, video_id: int, page: VideoPage) -> Outcome:
        temp = partial_dir(self.media_dir) / _partial_name(video_id, ".mp4")
        temp.parent.mkdir(parents=True, exist_ok=True)
        try:
            size, sha256, content_type = self._fetch(page.video_address, page, temp)
            try:
                info = probe_media(temp)
            except MediaProblem as problem:
                raise InvalidMedia(f"{problem} [{content_type or 'no content type'}]") from None
            final = video_file(self.media_dir, video_id)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)
        return Outcome(
            video_id,
            DownloadStatus.ok,
            path=final.relative_to(self.media_dir).as_posix(),
            bytes=size,
            sha256=sha256,
            media_info=info,
        )

    def _save_slideshow(self, video_id: int, page: VideoPage) -> Outcome:
        temp = partial_dir(self.media_dir) / _partial_name(video_id, ".slides")
        temp.mkdir(parents=True, exist_ok=True)
        final = slides_folder(self.media_dir, video_id)
        try:
            total, names = 0, []
            for number, address in enumerate(page.image_addresses):
                name = f"{number}.jpg"
                size, _sha, content_type = self._fetch(address, page, temp / name)
                _check_image(temp / name, content_type)
                total, names = total + size, names + [name]
            audio_name = None
            if page.audio_address:
                suffix = PurePosixPath(urlsplit(page.audio_address).path).suffix or ".m4a"
                audio_name = f"audio{suffix if suffix.isascii() and len(suffix) <= 5 else '.m4a'}"
                size, _sha, content_type = self._fetch(page.audio_address, page, temp / audio_name)
                _check_audio(temp / audio_name, content_type)
                total += size
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                shutil.rmtree(final)
            os.replace(temp, final)
        finally:
            if temp.exists():
                shutil.rmtree(temp, ignore_errors=True)
        relative = final.relative_to(self.media_dir).as_posix()
        return Outcome(
            video_id,
            DownloadStatus.slideshow,
            path=relative,
            bytes=total,
            image_paths=[f"{relative}/{n}" for n in names],
            audio_path=f"{relative}/{audio_name}" if audio_name else None,
        )

    def _forget_media(self, video_id: int) -> None:
        video_file(self.media_dir, video_id).unlink(missing_ok=True)
        shutil.rmtree(slides_folder(self.media_dir, video_id), ignore_errors=True)


def _check_image(path: Path, content_type: str) -> None:
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0 or cv2.imdecode(data, cv2.IMREAD_COLOR) is None:
        raise InvalidMedia(f"slide {path.name} is not an image [{content_type}]")


def _check_audio(path: Path, content_type: str) -> None:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InvalidMedia(f"slideshow sound has no audio stream [{content_type}]")
            next(container.decode(audio=0))
    except (av.FFmpegError, StopIteration, ValueError) as exc:
        raise InvalidMedia(f"slideshow sound does not decode [{content_type}]: {exc}") from None


# --- the database ---


def record_outcome(url: str, outcome: Outcome) -> None:
    """Write a video's status (after its file is in place), adding this run's tries."""
    for retry in range(2):
        try:
            with db.session_scope(url) as session:
                row = session.get(Download, outcome.video_id)
                if row is None:
                    row = Download(video_id=outcome.video_id, attempts=0)
                    session.add(row)
                row.status = outcome.status
                row.attempts = (row.attempts or 0) + outcome.tries
                row.last_error = outcome.error
                row.next_attempt_at = outcome.next_attempt_at
                row.is_slideshow = outcome.status == DownloadStatus.slideshow
                row.path, row.bytes, row.sha256 = outcome.path, outcome.bytes, outcome.sha256
                row.image_paths = outcome.image_paths or None
                row.audio_path = outcome.audio_path
                if outcome.media_info is not None:
                    save_media_info(session, outcome.video_id, outcome.media_info)
            return
        except IntegrityError:  # another worker inserted the row first: update it instead
            if retry:
                raise


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


def pending_videos(
    url: str,
    campaign_name: str | None = None,
    *,
    retry_failed: bool = False,
    limit: int | None = None,
) -> list[tuple[int, str | None]]:
    """(id, username) of the videos a run should ask for now, first collected first."""
    stmt = (
        select(Video.id, Video.username)
        .outerjoin(Download, Download.video_id == Video.id)
        .where(Video.pruned_at.is_(None), _askable(retry_failed))
    )
    if campaign_name is not None:
        stmt = (
            stmt.join(CampaignVideo, CampaignVideo.video_id == Video.id)
            .join(Campaign, Campaign.id == CampaignVideo.campaign_id)
            .where(Campaign.name == campaign_name)
            .order_by(CampaignVideo.first_seen_at, Video.id)
        )
    else:
        stmt = stmt.order_by(Video.first_seen_at, Video.id)
    with db.session_scope(url) as session:
        return [(i, u) for i, u in session.execute(stmt.limit(limit))]


def transient_due(url: str, campaign_name: str) -> datetime | None:
    """When every dropped connection of the campaign so far may be asked for again."""
    stmt = (
        select(func.max(Download.next_attempt_at))
        .join(CampaignVideo, CampaignVideo.video_id == Download.video_id)
        .join(Campaign, Campaign.id == CampaignVideo.campaign_id)
        .where(Campaign.name == campaign_name, Download.status == DownloadStatus.transient)
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


# --- a batch ---

_gates: dict[tuple, DownloadGate] = {}


def shared_gate(settings: Settings, shared_rate_limit: str | None = None) -> DownloadGate:
    """The process-wide gate for these settings: every batch in a process shares its rate.

    `shared_rate_limit` names a Prefect global rate limit that every request also takes a slot of
    (the `download-rate` limit of `gettok setup`), for workers in several processes.
    """
    key = (
        settings.download_requests_per_s,
        settings.download_block_backoff_s,
        settings.download_block_limit,
        shared_rate_limit,
    )
    gate = _gates.get(key)
    if gate is None or gate.closed_until is not None:
        also_wait = prefect_rate_limit(shared_rate_limit) if shared_rate_limit else None
        gate = _gates[key] = DownloadGate.from_settings(settings, also_wait)
    return gate


def download_videos(
    videos: list[tuple[int, str | None]],
    settings: Settings,
    gate: DownloadGate | None = None,
    retry_failed: bool = False,
) -> DownloadResult:
    """Download `videos` ((id, username) pairs) with bounded parallelism; record each status."""
    started, url = time.monotonic(), settings.resolved_database_url
    gate = gate or shared_gate(settings)
    requests_before = gate.requests
    held = claims.claim(url, STAGE, [i for i, _ in videos])
    # Claimed, then checked: a worker that finished one of these just before our claim wins.
    todo = still_pending(url, held, retry_failed)
    mine = [(i, u) for i, u in videos if i in todo]
    statuses: dict[int, DownloadStatus] = {}
    deferred: list[int] = []
    downloader = Downloader(settings, gate)

    def one(video: tuple[int, str | None]) -> None:
        video_id, username = video
        try:
            outcome = downloader.download(video_id, username)
        except GateClosed:
            deferred.append(video_id)
            return
        record_outcome(url, outcome)
        statuses[video_id] = outcome.status

    try:
        with ThreadPoolExecutor(settings.download_concurrency, "download") as pool:
            for future in [pool.submit(one, video) for video in mine]:
                future.result()
    finally:
        downloader.close()
        claims.release(url, STAGE, held)
    return DownloadResult(
        statuses=statuses,
        deferred=deferred,
        busy=len(videos) - len(held),
        blocked_until=gate.closed_until,
        requests=gate.requests - requests_before,
        seconds=round(time.monotonic() - started, 3),
    )


def download_pending(
    settings: Settings,
    campaign_name: str | None = None,
    *,
    retry_failed: bool = False,
    limit: int | None = None,
    gate: DownloadGate | None = None,
) -> DownloadResult:
    """Everything a campaign has pending, in one call (the flow does the same in batches)."""
    url = settings.resolved_database_url
    remove_stale_partials(settings.resolved_media_dir)
    release_dead_claims(url)
    videos = pending_videos(url, campaign_name, retry_failed=retry_failed, limit=limit)
    until = global_backoff_until(url)
    if until is not None:
        return DownloadResult(deferred=[i for i, _ in videos], blocked_until=until)
    return download_videos(videos, settings, gate, retry_failed)


@task(name="download-videos", cache_policy=NO_CACHE, **DATABASE_RETRIES)
def download_batch(
    videos: list[tuple[int, str | None]],
    settings: Settings,
    retry_failed: bool = False,
    shared_rate_limit: str | None = None,
) -> DownloadResult:
    """One batch as a Prefect task; the database, not a cache, says what is already done."""
    gate = shared_gate(settings, shared_rate_limit)
    return download_videos(videos, settings, gate, retry_failed)
