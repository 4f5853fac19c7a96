"""Download one video: read its tiktok.com page (Pyktok), stream its media with httpx, check it.

Files are written under `<media>/.partial/` and renamed into place (`videos/<id>.mp4`, or
`slides/<id>/` for photo posts) only once complete and valid, so a killed run never leaves a partial
file where a finished one belongs. The `Outcome` says what happened; recording it is the store's.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
from datetime import timedelta
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np
import requests

from gettok.clients.tiktok_web import PageFailure, VideoPage, read_page, video_url
from gettok.models.schema import DownloadStatus, utcnow
from gettok.settings import Settings
from gettok.tasks.download.files import (
    partial_dir,
    partial_name,
    slides_folder,
    video_file,
)
from gettok.tasks.download.gate import DownloadGate, GateClosed, HostDown
from gettok.tasks.download.media import MediaProblem, probe_media
from gettok.tasks.download.safety import (
    MB,
    DiskFull,
    RefusedMedia,
    check_free_space,
    check_media_address,
    check_size,
    is_refused_connection,
)
from gettok.tasks.download.store import Outcome

logger = logging.getLogger(__name__)
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)


class InvalidMedia(Exception):
    """A body that is not what the page promised (HTML, cut short, empty, undecodable)."""


class MediaExpired(PageFailure):
    """The media host answered 403: the page's addresses expire (about a day); read it again."""


class Downloader:
    """Downloads videos with one HTTP client and one gate; safe to share between threads."""

    def __init__(self, settings: Settings, gate: DownloadGate):
        self.settings = settings
        self.gate = gate
        self.media_dir = settings.resolved_media_dir
        self.max_bytes = int(settings.download_max_media_mb * MB)
        self.reserve_bytes = settings.download_min_free_mb * MB
        # The live CDN wants the site as referer (yt-dlp sends it too) and the page's cookies.
        self.referer = f"{settings.tiktok_web_url}/"
        self.client = httpx.Client(
            timeout=httpx.Timeout(settings.download_timeout_s),
            follow_redirects=True,
            limits=httpx.Limits(max_connections=max(4, settings.download_concurrency * 2)),
            event_hooks={"request": [self._check_host]},  # redirects are checked too
        )

    def close(self) -> None:
        self.client.close()

    def _check_host(self, request: httpx.Request) -> None:
        s = self.settings
        check_media_address(str(request.url), s.tiktok_web_url, s.download_media_hosts)

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
            return self._attempt_once(video_id, url)
        finally:
            self.gate.done()

    def _attempt_once(self, video_id: int, url: str) -> Outcome:
        try:
            return self._read_and_save(video_id, url)
        except PageFailure as failure:
            if failure.status != DownloadStatus.blocked:
                self.gate.succeeded()  # an answer, if not the one hoped for: not throttled
            return self._failed(video_id, failure.status, failure.reason)
        except (InvalidMedia, RefusedMedia) as exc:
            return self._failed(video_id, DownloadStatus.invalid, str(exc))
        except DiskFull as exc:
            return self._failed(video_id, DownloadStatus.transient, str(exc), kind=None)
        except (requests.RequestException, httpx.TransportError) as exc:
            if is_refused_connection(exc):
                self.gate.refused()
            return self._failed(video_id, DownloadStatus.transient, f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                # the disk, not the video: this video waits, the batch goes on (each says so)
                error = f"disk full or read-only ({exc.strerror}): {exc.filename or self.media_dir}"
                return self._failed(video_id, DownloadStatus.transient, error, kind=None)
            return self._failed(video_id, DownloadStatus.transient, f"{type(exc).__name__}: {exc}")
        except (GateClosed, HostDown):
            raise
        except Exception as exc:  # a page shaped in a way nobody foresaw: one video, not the batch
            logger.exception("video %s: unexpected error", video_id)
            error = f"unexpected {type(exc).__name__}: {exc}"
            return self._failed(video_id, DownloadStatus.transient, error)

    def _read_and_save(self, video_id: int, url: str) -> Outcome:
        """Read the page and save its media; on a 403 from the media host, read the page once
        more (its addresses had expired) and try its new addresses."""
        for reading in (1, 2):
            self.gate.wait()
            page = read_page(url, self.settings.download_timeout_s, video_id)
            self.gate.succeeded()
            try:
                if page.is_slideshow:
                    return self._save_slideshow(video_id, page)
                return self._save_video(video_id, page)
            except MediaExpired as expired:
                if reading == 2:
                    reason = f"{expired.reason}, again after a new page"
                    raise PageFailure(expired.status, reason) from None
        raise AssertionError("the loop returns or raises")  # pragma: no cover

    def _failed(
        self, video_id: int, status: DownloadStatus, error: str, kind: str | None = ""
    ) -> Outcome:
        """An outcome for a failure; `kind` (how it failed) defaults to the error's first part."""
        next_attempt_at = None
        if status == DownloadStatus.transient:
            delay = self.settings.download_transient_backoff_s
            next_attempt_at = utcnow() + timedelta(seconds=delay)
        elif status == DownloadStatus.blocked:
            next_attempt_at = self.gate.throttled()
        kind = error.split(":")[0].strip()[:64] if kind == "" else kind
        return Outcome(
            video_id, status, error=error[:500], next_attempt_at=next_attempt_at, kind=kind
        )

    def _fetch(self, address: str, page: VideoPage, dest: Path) -> tuple[int, str, str]:
        """Stream one media body to `dest` with the page's cookies; return size, sha256, type."""
        s = self.settings
        check_media_address(address, s.tiktok_web_url, s.download_media_hosts)
        headers = {
            "User-Agent": USER_AGENT,
            "Referer": self.referer,
            "Cookie": "; ".join(f"{k}={v}" for k, v in page.cookies.items()),
        }
        self.gate.wait()
        digest, size = hashlib.sha256(), 0
        response = self._open(address, headers)
        with contextlib.closing(response):
            _check_media_status(response.status_code)
            promised = _length(response.headers.get("content-length"))
            check_size(promised, self.max_bytes)
            check_free_space(dest.parent, promised, self.reserve_bytes)
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(1 << 16):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise RefusedMedia(f"media larger than {self.max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if promised is not None and promised != size:
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
        temp = partial_dir(self.media_dir) / partial_name(video_id, ".mp4")
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
        temp = partial_dir(self.media_dir) / partial_name(video_id, ".slides")
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


def _check_media_status(code: int) -> None:
    if code == 429:
        raise PageFailure(DownloadStatus.blocked, "media throttled (HTTP 429)")
    if code == 403:
        raise MediaExpired(DownloadStatus.transient, "media HTTP 403: address expired or refused")
    if code in (404, 410):
        raise InvalidMedia(f"media HTTP {code}")
    if code >= 400:
        raise PageFailure(DownloadStatus.transient, f"media HTTP {code}")


def _length(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


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
