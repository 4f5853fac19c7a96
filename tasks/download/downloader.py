"""Download collected videos: page with Pyktok, media streamed with httpx, a status for every video.

Files are written under `<media>/.partial/` and renamed into place (`videos/<id>.mp4`, or
`slides/<id>/` for photo posts) only once complete and valid, and the database row is written after
the rename: a killed run leaves no partial file in place and no `ok` row without its file. Statuses
(`DownloadStatus`) follow the studies' failure taxonomy; reruns retry only what can succeed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import requests
from gettok.models.schema import DownloadStatus, utcnow
from gettok.tasks.download.gate import DownloadGate, GateClosed
from gettok.tasks.download.media import MediaProblem, probe_media
from gettok.tasks.download.store import (
    STAGE,
    DownloadResult,
    Outcome,
    global_backoff_until,
    pending_videos,
    record_outcome,
    still_pending,
)
from prefect import task
from prefect.cache_policies import NO_CACHE

from gettok import claims
from gettok.clients.tiktok_web import PageFailure, VideoPage, read_page, video_url
from gettok.retry import HOUR, rate_limit, task_retries
from gettok.settings import Settings

logger = logging.getLogger(__name__)
MAX_MEDIA_BYTES = 2 * 1024**3
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)


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
        if claims.process_alive(int(parts[2])):
            continue
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
        removed += 1
    return removed


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
            if failure.status != DownloadStatus.blocked:
                self.gate.succeeded()  # an answer, if not the one hoped for: not throttled
            return self._failed(video_id, failure.status, failure.reason)
        except InvalidMedia as exc:
            return self._failed(video_id, DownloadStatus.invalid, str(exc))
        except (requests.RequestException, httpx.TransportError) as exc:
            return self._failed(video_id, DownloadStatus.transient, f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                raise  # the disk, not the video: stop the batch
            return self._failed(video_id, DownloadStatus.transient, f"{type(exc).__name__}: {exc}")
        except GateClosed:
            raise
        except Exception as exc:  # a page shaped in a way nobody foresaw: one video, not the batch
            logger.exception("video %s: unexpected error", video_id)
            error = f"unexpected {type(exc).__name__}: {exc}"
            return self._failed(video_id, DownloadStatus.transient, error)

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
        response = self._open(address, headers)
        with contextlib.closing(response):
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

    def _open(self, address: str, headers: dict[str, str]) -> httpx.Response:
        request = self.client.build_request("GET", address, headers=headers)
        try:
            return self.client.send(request, stream=True)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            # No answer at all: most often a kept-alive connection the server closed just then.
            # One more try on a fresh connection; a body cut mid-way is never retried here.
            return self.client.send(request, stream=True)

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
        also_wait = rate_limit(shared_rate_limit) if shared_rate_limit else None
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
    lease_s = max(3600.0, 30.0 * len(videos) / settings.download_concurrency)
    held = claims.claim(url, STAGE, [i for i, _ in videos], lease_s=lease_s)
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
    videos = pending_videos(url, campaign_name, retry_failed=retry_failed, limit=limit)
    until = global_backoff_until(url)
    if until is not None:
        return DownloadResult(deferred=[i for i, _ in videos], blocked_until=until)
    return download_videos(videos, settings, gate, retry_failed)


# Retried for the database only: videos never fail the batch (each gets a status). 200 videos
# (download_batch_size) at 2 requests/s take minutes; half of them at their 60 s timeout plus the
# gate's pauses (5, 10, 20 min) still under 2 h, so 6 h means a hang.
@task(name="download-videos", cache_policy=NO_CACHE, **task_retries(), timeout_seconds=6 * HOUR)
def download_batch(
    videos: list[tuple[int, str | None]],
    settings: Settings,
    retry_failed: bool = False,
    shared_rate_limit: str | None = None,
) -> DownloadResult:
    """One batch as a Prefect task; the database, not a cache, says what is already done."""
    gate = shared_gate(settings, shared_rate_limit)
    return download_videos(videos, settings, gate, retry_failed)
