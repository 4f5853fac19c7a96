"""tiktok.com in the sandbox: video pages with the live site's embedded JSON, and their media.

A page sets a `tt_chain_token` cookie; media answers 403 without that cookie and the site as
referer, or once its address has expired (`?expire=`, a day by default), as the live CDN does.
Faults come from the video itself (private, removed, slideshow) and from the rates in
`state.config.web` (throttling, HTML served as the media, truncated bodies, dropped connections).
"""

from __future__ import annotations

import html
import json
import secrets
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from gettok.sandbox import faces, media, media_cache
from gettok.sandbox.state import SandboxState

TOKEN_COOKIE = "tt_chain_token"
DATA_SCRIPT_ID = "__UNIVERSAL_DATA_FOR_REHYDRATION__"
# Live statusCode values of `webapp.video-detail` (observed on tiktok.com).
STATUS_REMOVED = 10204  # "item doesn't exist"
STATUS_PRIVATE = 10222  # a private account
STATUS_PRIVATE_POST = 10216  # a private post (yt-dlp's TikTok extractor)

LOGIN_PAGE = """<!DOCTYPE html><html><head><title>Log in | TikTok</title></head>
<body><div id="loginContainer"><h2>Log in to TikTok</h2>
<p>This account is private. Log in to see its videos.</p></div></body></html>"""

CAPTCHA_PAGE = """<!DOCTYPE html><html><head><title>Security Check</title></head>
<body><div id="captcha-verify-container"><p>Drag the slider to fit the puzzle</p></div>
<script>window.__captcha = {"type": "slide", "region": "va"};</script></body></html>"""

NOT_FOUND_PAGE = """<!DOCTYPE html><html><head><title>TikTok - Make Your Day</title></head>
<body><p>Couldn't find this page</p></body></html>"""


def build_router(state: SandboxState) -> APIRouter:
    """The site's routes, all served by one `_Site` (the chain tokens it gave out are shared)."""
    site = _Site(state)
    router = APIRouter(tags=["tiktok.com"])
    router.add_api_route(
        "/@{username:path}/video/{video_id}",
        site.video_page,
        methods=["GET"],
        response_class=HTMLResponse,
    )
    router.add_api_route("/login", login_page, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/media/video/{video_id}.mp4", site.media_video, methods=["GET"])
    router.add_api_route("/media/slides/{video_id}/{number}.jpg", site.media_slide, methods=["GET"])
    router.add_api_route("/media/audio/{video_id}", site.media_audio, methods=["GET"])
    return router


def login_page() -> Response:
    return HTMLResponse(LOGIN_PAGE)


class _Site:
    """Video pages and their media, with the chain tokens handed out and the pages served."""

    def __init__(self, state: SandboxState):
        self.state = state
        self.tokens: set[str] = set()
        self.pages_seen: set[int] = set()  # videos whose page was served once (stale_media_address)

    def draw(self, fault: str, rate: float) -> bool:
        """Whether the fault happens to this request (counted as `web_<fault>` when it does)."""
        if self.state.chance(rate):
            with self.state.lock:
                self.state.counters[f"web_{fault}"] += 1
            return True
        return False

    def throttled(self) -> Response:
        if self.state.randint(0, 1):
            return Response("Too many requests", status_code=429, headers={"Retry-After": "60"})
        return HTMLResponse(CAPTCHA_PAGE)

    def video_page(self, username: str, video_id: str, request: Request) -> Response:
        web = self.state.config.web
        if self.draw("throttle", web.throttle):
            return self.throttled()
        if self.draw("dropped_connection", web.dropped_connection):
            return _dropped()
        video = self.state.corpus.get(int(video_id)) if video_id.isdigit() else None
        base = str(request.base_url).rstrip("/")
        token = self.chain_token(request)
        if video is None or video.web_state == "removed":
            response = _removed_page(video)
        elif video.web_state == "private":
            response = self.private_page(video, base, request)
        else:
            response = self.public_page(video, base)
        with self.state.lock:
            self.state.counters["web_pages"] += 1
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="lax")
        return response

    def chain_token(self, request: Request) -> str:
        """The visitor's token if this site gave it out, else a new one."""
        token = request.cookies.get(TOKEN_COOKIE)
        if token not in self.tokens:
            token = secrets.token_urlsafe(16)
            if len(self.tokens) > 100_000:
                self.tokens.clear()
            self.tokens.add(token)
        return token

    def private_page(self, video, base: str, request: Request) -> Response:
        """Each of the ways the live site shows a private video (by the video's id)."""
        variant = video.id % 4
        if variant == 0:
            return RedirectResponse(f"{base}/login?redirect_url={request.url}", 302)
        if variant == 1:
            return HTMLResponse(_page(_detail(STATUS_PRIVATE, "")))
        if variant == 3:
            return HTMLResponse(_page(_detail(STATUS_PRIVATE_POST, "")))
        item = self.item_struct(video, base, int(time.time()))
        item["privateItem"] = True
        item["video"] = {"playAddr": "", "downloadAddr": ""}
        return HTMLResponse(_page(_detail(0, "", item)))

    def public_page(self, video, base: str) -> Response:
        """The page with the media's signed addresses (or a drawn fault: expired addresses,
        another video's page, an age-restricted one)."""
        web = self.state.config.web
        with self.state.lock:
            first_view = video.id not in self.pages_seen
            self.pages_seen.add(video.id)
        # a page read a day ago: its addresses have expired by now
        stale = first_view and self.draw("stale_media_address", web.stale_media_address)
        expire = int(time.time()) + (-1 if stale else web.media_url_ttl_s)
        item = self.item_struct(video, base, expire)
        if self.draw("wrong_video", web.wrong_video):
            item["id"] = item["video"]["id"] = str(video.id + 1)
        elif self.draw("age_restricted", web.age_restricted):  # as yt-dlp reads it: no media
            item["isContentClassified"] = True
            item.pop("video", None)
        return HTMLResponse(_page(_detail(0, "", item)))

    def item_struct(self, video, base: str, expire: int) -> dict:
        """The page's `itemStruct`, with media addresses signed until `expire`."""
        item = _base_item(video)
        signed = f"?expire={expire}"
        if video.web_state == "slideshow":
            images, _audio = media_cache.slideshow_assets(video, self.state.config.media_cache_dir)
            item["imagePost"] = {
                "images": [
                    {
                        "imageURL": {
                            "urlList": [f"{base}/media/slides/{video.id}/{n}.jpg{signed}"]
                        },
                        "imageWidth": 1080,
                        "imageHeight": 1920,
                    }
                    for n in range(len(images))
                ],
                "title": "",
            }
            item["music"]["playUrl"] = f"{base}/media/audio/{video.id}{signed}"
            item["video"] = {"playAddr": "", "downloadAddr": "", "duration": 0}
        else:
            url = f"{base}/media/video/{video.id}.mp4{signed}"
            item["video"].update({"playAddr": url, "downloadAddr": url})
        return item

    def media_video(self, video_id: int, request: Request) -> Response:
        return self.media_response(request, lambda: self.clip_path(video_id))

    def media_slide(self, video_id: int, number: int, request: Request) -> Response:
        return self.media_response(request, lambda: self.slide_path(video_id, number))

    def media_audio(self, video_id: int, request: Request) -> Response:
        return self.media_response(request, lambda: self.audio_path(video_id))

    def media_response(self, request: Request, path_of: Callable[[], Path | None]) -> Response:
        """Media as the CDN serves it: only to a visitor with a chain token and the site as
        referer, at an unexpired address; then with the drawn faults."""
        web = self.state.config.web
        site = str(request.base_url).rstrip("/")
        referer = request.headers.get("referer", "")
        if request.cookies.get(TOKEN_COOKIE) not in self.tokens or not referer.startswith(site):
            return Response("Forbidden", status_code=403)
        expire = request.query_params.get("expire", "")
        if not expire.lstrip("-").isdigit() or int(expire) < time.time():
            with self.state.lock:
                self.state.counters["web_expired_media"] += 1
            return Response("Forbidden: URL expired", status_code=403)
        if self.draw("throttle", web.throttle):
            return Response("Too many requests", status_code=429, headers={"Retry-After": "60"})
        path = path_of()
        if path is None:
            return Response("Not Found", status_code=404)
        media_type = _media_type(path)
        if self.draw("html_as_media", web.html_as_media):
            # A CDN error page with a 200 status and the media's content type: only content tells.
            return Response(media.html_page(), media_type=media_type)
        body = path.read_bytes()
        if self.draw("truncated_media", web.truncated_media):
            # in turn: cut mid-transfer, a complete short file, an empty body
            return _truncated(body, media_type, self.state.counters["web_truncated_media"] % 3)
        if self.draw("dropped_connection", web.dropped_connection):
            return _dropped(body[: len(body) // 3], media_type)
        rate = getattr(web, "media_bytes_per_s", 0.0)
        if rate > 0:
            return _paced(body, media_type, rate)
        return Response(body, media_type=media_type)

    def corpus_video(self, video_id: int, web_state: str):
        """The video if it is in the corpus in that web state (else its media is not found)."""
        video = self.state.corpus.get(video_id)
        if video is None or video.web_state != web_state:
            return None
        return video

    def clip_path(self, video_id: int) -> Path | None:
        video = self.corpus_video(video_id, "public")
        if video is None:
            return None
        face = faces.face_in(video, self.state.config)
        return media_cache.clip_for(video, self.state.config.media_cache_dir, face)

    def slide_path(self, video_id: int, number: int) -> Path | None:
        video = self.corpus_video(video_id, "slideshow")
        if video is None:
            return None
        images, _audio = media_cache.slideshow_assets(video, self.state.config.media_cache_dir)
        return images[number] if 0 <= number < len(images) else None

    def audio_path(self, video_id: int) -> Path | None:
        video = self.corpus_video(video_id, "slideshow")
        if video is None:
            return None
        return media_cache.slideshow_assets(video, self.state.config.media_cache_dir)[1]


def _removed_page(video) -> Response:
    """The live site answers both ways: a 200 page whose JSON says 10204, or a bare 404."""
    if video is not None and video.id % 2:
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404)
    return HTMLResponse(_page(_detail(STATUS_REMOVED, "item doesn't exist")))


def _base_item(video) -> dict:
    return {
        "id": str(video.id),
        "desc": video.description,
        "createTime": str(video.create_time),
        "author": {
            "id": str(zlib.crc32(video.username.encode()) * 7919),
            "uniqueId": video.username,
            "nickname": video.username,
            "privateAccount": False,
            "verified": False,
        },
        "video": {
            "id": str(video.id),
            "height": 640,
            "width": 360,
            "duration": int(round(video.duration_s)),
            "ratio": "540p",
            "format": "mp4",
            "codecType": "h264",
            "playAddr": "",
            "downloadAddr": "",
        },
        "music": {
            "id": str(video.music_id),
            "title": "original sound",
            "playUrl": "",
            "duration": int(round(video.duration_s)),
        },
        "stats": {
            "diggCount": video.like_count,
            "shareCount": video.share_count,
            "commentCount": video.comment_count,
            "playCount": video.view_count,
        },
        "locationCreated": video.region_code,
        "privateItem": False,
        "isAd": False,
    }


def _detail(status_code: int, status_msg: str, item: dict | None = None) -> dict:
    detail: dict = {"statusCode": status_code, "statusMsg": status_msg}
    if item is not None:
        detail["itemInfo"] = {"itemStruct": item}
        detail["shareMeta"] = {"title": item["author"]["nickname"], "desc": item["desc"][:120]}
    return detail


def _page(detail: dict) -> str:
    data = {
        "__DEFAULT_SCOPE__": {
            "webapp.app-context": {"language": "en", "region": "US", "user": {}},
            "webapp.video-detail": detail,
        }
    }
    # `</` inside a script element would end it early: the live site escapes it the same way.
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    title = html.escape(detail.get("shareMeta", {}).get("desc", "") or "TikTok")
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title} | TikTok</title></head>'
        f'<body><div id="app"></div>'
        f'<script id="{DATA_SCRIPT_ID}" type="application/json">{payload}</script>'
        f"</body></html>"
    )


def _media_type(path: Path) -> str:
    return {
        ".mp4": "video/mp4",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".m4a": "audio/mp4",
        ".mp3": "audio/mpeg",
        ".aac": "audio/aac",
        ".ogg": "audio/ogg",
        ".wav": "audio/wav",
    }.get(path.suffix.lower(), "application/octet-stream")


def _truncated(body: bytes, media_type: str, variant: int) -> Response:
    """A body cut short: mid-transfer (promised length unmet), a complete short file, or empty."""
    if variant == 0:
        return _dropped(body[: len(body) // 2], media_type)
    if variant == 1:
        return Response(body[: len(body) // 2], media_type=media_type)
    return Response(b"", media_type=media_type)


def _paced(body: bytes, media_type: str, bytes_per_s: float) -> Response:
    """The whole body at a slow CDN's pace (so a test can kill a download mid-transfer)."""
    step = max(1024, int(bytes_per_s / 20))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), step):
            yield body[start : start + step]
            time.sleep(step / bytes_per_s)

    return StreamingResponse(
        chunks(), media_type=media_type, headers={"content-length": str(len(body))}
    )


def _dropped(sent: bytes = b"", media_type: str = "text/html") -> Response:
    """Headers promise more than is sent, then the connection closes (the server aborts)."""

    def chunks() -> Iterator[bytes]:
        if sent:
            yield sent
        raise ConnectionAbortedError("sandbox: dropped connection")

    promised = str(max(len(sent) * 2, 1024))
    return StreamingResponse(chunks(), media_type=media_type, headers={"content-length": promised})
