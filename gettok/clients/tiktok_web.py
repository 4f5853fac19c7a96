"""Read a video's tiktok.com page with Pyktok and say what it offers: media, or why not.

Pyktok keeps its cookies in a module global and prints instead of raising, so its `requests` is
replaced by a recorder that keeps each thread's HTTP response (and each page's own cookies): the
status code and the final URL are what tell a login wall, a throttle and a missing page apart.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from gettok.models.schema import DownloadStatus

# statusCode of `webapp.video-detail` as the live site uses it (yt-dlp's TikTok extractor,
# `TikTokIE._real_extract`): 10216 a private post, 10222 a private account. 10204 is "not
# available": a deleted post, but also what an IP that TikTok blocks sees, so it proves nothing on
# its own (the video is asked again, and ends `unreachable` if it never answers otherwise).
PRIVATE_CODES = {10216: "private post", 10222: "private account"}
REMOVED_CODES = {10217: "item removed"}
NOT_AVAILABLE_CODES = {10204: "not available (deleted, or this IP is blocked)"}

# A real challenge page (TikTok's WAF, as yt-dlp solves it): the challenge data in an element
# with id "cs" and the cookie name in one with id "wci"; or the slide captcha's own container.
# Real pages also list `captcha-*.js` chunks in their head: the word alone proves nothing.
_CHALLENGE_MARKERS = (
    re.compile(r"<[a-z]+[^>]*\bid=[\"']cs[\"'][^>]*\bclass=[\"'][A-Za-z0-9+/=]{8,}", re.I),
    re.compile(r"<[a-z]+[^>]*\bid=[\"']wci[\"']", re.I),
    re.compile(r"<div[^>]*\bid=[\"']captcha[-_]verify[-_]container[\"']", re.I),
    re.compile(r"<div[^>]*\bclass=[\"'][^\"']*\bcaptcha_verify_container\b", re.I),
)

logger = logging.getLogger(__name__)
_pyktok_lock = threading.Lock()
_pyktok = None
_recorder = None


def video_url(web_url: str, username: str | None, video_id: int) -> str:
    """The public page of a video. The handle is URL-quoted; TikTok resolves the page by id."""
    handle = (username or "").replace("\x00", "").strip() or "_"
    return f"{web_url.rstrip('/')}/@{quote(handle, safe='')}/video/{int(video_id)}"


@dataclass
class PageFailure(Exception):
    """The page offers no media: `status` is the download status that this means."""

    status: DownloadStatus
    reason: str

    def __str__(self) -> str:
        return f"{self.status}: {self.reason}"


@dataclass
class VideoPage:
    """What a page offers: a video address, or a slideshow's images and sound."""

    url: str
    item: dict[str, Any]
    cookies: dict[str, str] = field(repr=False)
    video_address: str | None = None
    image_addresses: list[str] = field(default_factory=list)
    audio_address: str | None = None

    @property
    def is_slideshow(self) -> bool:
        return bool(self.image_addresses)


class _RecordingRequests:
    """Stands in for the `requests` module inside Pyktok: same call, and each thread keeps its
    own response (Pyktok's module-global cookie jar is shared; the response is not)."""

    def __init__(self):
        self._local = threading.local()

    def get(self, url, **kwargs):
        self._local.response = None
        kwargs["timeout"] = getattr(self._local, "timeout_s", kwargs.get("timeout", 20))
        self._local.sent_cookies = _as_dict(kwargs.get("cookies"))
        self._local.response = requests.get(url, **kwargs)
        return self._local.response

    def fetch(self, fetch_json, url: str, timeout_s: float):
        """Run Pyktok's `fetch_json(url)`: its result, the HTTP response, the cookies sent."""
        self._local.timeout_s, self._local.response = timeout_s, None
        data = fetch_json(url)
        return data, self._local.response, getattr(self._local, "sent_cookies", {})


def _load_pyktok():
    global _pyktok, _recorder
    with _pyktok_lock:
        if _pyktok is None:
            with contextlib.redirect_stdout(io.StringIO()):  # it prints advice on import
                from pyktok import pyktok  # the module itself: its globals are what it reads
            _recorder = _RecordingRequests()
            pyktok.requests = _recorder
            pyktok.print = _pyktok_says  # it prints its errors; we classify the response instead
            _pyktok = pyktok
    return _pyktok, _recorder


def _as_dict(cookies) -> dict[str, str]:
    if not cookies:
        return {}
    if isinstance(cookies, dict):
        return {str(k): str(v) for k, v in cookies.items()}
    return {c.name: c.value for c in cookies}


def _pyktok_says(*args, **_kwargs) -> None:
    logger.debug("pyktok: %s", " ".join(str(a) for a in args))


def read_page(url: str, timeout_s: float = 20.0, video_id: int | None = None) -> VideoPage:
    """Fetch and classify one page. Raises PageFailure, or requests' errors on network failure.

    With `video_id`, a page that shows another video (a redirect) is a failure, not that video.
    """
    pyktok, recorder = _load_pyktok()
    data, response, sent = recorder.fetch(pyktok.alt_get_tiktok_json, url, timeout_s)
    if response is None:
        raise PageFailure(DownloadStatus.transient, "no response")
    # The media wants the session's cookies: those sent, updated by those the page set.
    cookies = {**sent, **_as_dict(response.cookies)}
    return classify_page(url, response, data, cookies, video_id)


def is_challenge_page(text: str) -> bool:
    """Whether an HTML answer is a captcha or JS challenge, by the markers of a real one."""
    return any(marker.search(text) for marker in _CHALLENGE_MARKERS)


def classify_page(
    url: str,
    response: requests.Response,
    data: dict | None,
    cookies: dict[str, str],
    video_id: int | None = None,
) -> VideoPage:
    """What one answer means: a VideoPage, or a PageFailure with the status it stands for."""
    _check_answer(response, data)
    detail = _dict(_dict(data).get("__DEFAULT_SCOPE__")).get("webapp.video-detail")
    if not isinstance(detail, dict):
        raise PageFailure(DownloadStatus.transient, "page without webapp.video-detail")
    item = _checked_item(detail)
    shown = str(item.get("id", ""))
    if video_id is not None and shown != str(int(video_id)):
        raise PageFailure(
            DownloadStatus.transient, f"wrong video: the page shows {shown[:24]!r}, not {video_id}"
        )
    if item.get("privateItem") or _dict(item.get("author")).get("privateAccount"):
        raise PageFailure(DownloadStatus.private, "privateItem")
    if item.get("isContentClassified") and not _dict(item.get("video")).get("playAddr"):
        raise PageFailure(DownloadStatus.age_restricted, "isContentClassified: needs a login")
    return _media_of(VideoPage(url=url, item=item, cookies=cookies))


def _check_answer(response: requests.Response, data: dict | None) -> None:
    """Fail on an answer that is not a video page: throttle, challenge, login, error, cut short."""
    final_path = urlsplit(response.url).path
    text_head = response.text[:200_000] if data is None else ""
    if response.status_code == 429:
        raise PageFailure(DownloadStatus.blocked, "throttled (HTTP 429)")
    if data is None and is_challenge_page(text_head):
        raise PageFailure(DownloadStatus.blocked, f"challenge page (HTTP {response.status_code})")
    if final_path.startswith("/login") or "logincontainer" in text_head[:4000].lower():
        raise PageFailure(DownloadStatus.private, "login page")
    if response.status_code in (404, 410):
        raise PageFailure(DownloadStatus.removed, f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise PageFailure(DownloadStatus.transient, f"HTTP {response.status_code}")
    if data is None:
        raise PageFailure(DownloadStatus.transient, "page without embedded data (cut short?)")


def _checked_item(detail: dict) -> dict:
    code = detail.get("statusCode", 0)
    if code in PRIVATE_CODES:
        raise PageFailure(DownloadStatus.private, f"statusCode {code}: {PRIVATE_CODES[code]}")
    if code in REMOVED_CODES:
        raise PageFailure(DownloadStatus.removed, f"statusCode {code}: {REMOVED_CODES[code]}")
    if code in NOT_AVAILABLE_CODES:
        reason = NOT_AVAILABLE_CODES[code]
        raise PageFailure(DownloadStatus.transient, f"statusCode {code}: {reason}")
    item = _dict(detail.get("itemInfo")).get("itemStruct")
    if code or not isinstance(item, dict):
        raise PageFailure(DownloadStatus.transient, f"statusCode {code}: {detail.get('statusMsg')}")
    return item


def _media_of(page: VideoPage) -> VideoPage:
    """The page's media addresses: a slideshow's images and sound, or the video."""
    item = page.item
    images = _dict(item.get("imagePost")).get("images")
    if isinstance(images, list) and images:
        page.image_addresses = [_first_url(_dict(image).get("imageURL")) for image in images]
        if not all(page.image_addresses):
            raise PageFailure(DownloadStatus.invalid, "slideshow image without an address")
        page.audio_address = _url(_dict(item.get("music")).get("playUrl"))
        return page
    video = _dict(item.get("video"))
    # Pyktok's order: playAddr, then downloadAddr (the latter is watermarked on the live site).
    page.video_address = _url(video.get("playAddr")) or _url(video.get("downloadAddr"))
    if not page.video_address:
        raise PageFailure(DownloadStatus.invalid, "no media address in the page")
    return page


def _dict(value: Any) -> dict:
    """The live JSON changes shape now and then: anything but an object reads as empty."""
    return value if isinstance(value, dict) else {}


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_url(image_url: dict) -> str | None:
    urls = image_url.get("urlList")
    return _url(urls[0]) if isinstance(urls, list) and urls else None
