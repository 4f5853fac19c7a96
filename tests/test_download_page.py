"""How a tiktok.com answer maps to a download status, including shapes the sandbox never serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from gettok.clients.tiktok_web import PageFailure, classify_page
from gettok.models.schema import DownloadStatus
from gettok.sandbox.web import CAPTCHA_PAGE

PAGES = Path(__file__).parent / "fixtures" / "tiktok-web"  # sources: README.md there

URL = "https://www.tiktok.com/@someone/video/7171965565856099370"


def answer(status: int = 200, text: str = "<html></html>", url: str = URL) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.url = status, text.encode(), url
    response.encoding = "utf-8"
    return response


def scope(detail) -> dict:
    return {"__DEFAULT_SCOPE__": {"webapp.video-detail": detail}}


def item(**fields) -> dict:
    return scope({"statusCode": 0, "itemInfo": {"itemStruct": {"id": "1", **fields}}})


@pytest.mark.parametrize(
    ("response", "data", "status", "reason"),
    [
        (answer(429), None, DownloadStatus.blocked, "throttled (HTTP 429)"),
        # the word alone is no challenge (real pages load captcha-*.js): a page without data
        (answer(200, "<div>Verify to continue: captcha</div>"), None, DownloadStatus.transient, ""),
        (answer(200, url="https://www.tiktok.com/login?r=1"), None, DownloadStatus.private, ""),
        (answer(404), None, DownloadStatus.removed, "HTTP 404"),
        (answer(503), None, DownloadStatus.transient, "HTTP 503"),
        (answer(), None, DownloadStatus.transient, "page without embedded data"),
        (answer(), {"__DEFAULT_SCOPE__": []}, DownloadStatus.transient, ""),
        (answer(), scope({"statusCode": 10216}), DownloadStatus.private, "10216: private post"),
        (answer(), scope({"statusCode": 10222}), DownloadStatus.private, "10222"),
        (answer(), scope({"statusCode": 10101}), DownloadStatus.transient, "10101"),
        (answer(), item(privateItem=True), DownloadStatus.private, "privateItem"),
        (answer(), item(author={"privateAccount": True}), DownloadStatus.private, ""),
        (answer(), item(video="gone"), DownloadStatus.invalid, "no media address"),
        (answer(), item(video={"playAddr": 5}), DownloadStatus.invalid, "no media address"),
        (
            answer(),
            item(imagePost={"images": [{"imageURL": {"urlList": []}}]}),
            DownloadStatus.invalid,
            "slideshow image without an address",
        ),
    ],
)
def test_each_answer_gets_its_status(response, data, status, reason):
    with pytest.raises(PageFailure) as failure:
        classify_page(URL, response, data, {})
    assert failure.value.status == status
    assert reason in failure.value.reason


def test_media_addresses_in_pyktoks_order():
    both = item(video={"playAddr": "https://cdn/play.mp4", "downloadAddr": "https://cdn/dl.mp4"})
    assert classify_page(URL, answer(), both, {}).video_address == "https://cdn/play.mp4"
    fallback = item(video={"playAddr": "", "downloadAddr": "https://cdn/dl.mp4"})
    assert classify_page(URL, answer(), fallback, {}).video_address == "https://cdn/dl.mp4"
    photos = item(
        imagePost={"images": [{"imageURL": {"urlList": ["https://cdn/1.jpg", "https://x"]}}]},
        music={"playUrl": "https://cdn/sound.mp3"},
    )
    page = classify_page(URL, answer(), photos, {"tt_chain_token": "t"})
    assert page.is_slideshow and page.image_addresses == ["https://cdn/1.jpg"]
    assert page.audio_address == "https://cdn/sound.mp3" and page.cookies == {"tt_chain_token": "t"}


def fixture(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def failure_of(response, data, video_id=None) -> PageFailure:
    with pytest.raises(PageFailure) as failure:
        classify_page(URL, response, data, {}, video_id)
    return failure.value


def test_a_real_page_cut_short_is_transient_not_a_captcha():
    """Real pages list `captcha-*.js` chunks in their head; cut short, they are no challenge."""
    page = fixture("page_cut_short.html")
    assert "captcha-" in page
    failure = failure_of(answer(200, page), None)
    assert failure.status == DownloadStatus.transient and "without embedded data" in failure.reason


@pytest.mark.parametrize("page", ["waf_challenge.html", "sandbox captcha"])
def test_a_real_challenge_page_is_a_throttle(page):
    text = CAPTCHA_PAGE if page == "sandbox captcha" else fixture(page)
    failure = failure_of(answer(200, text), None)
    assert failure.status == DownloadStatus.blocked and "challenge page" in failure.reason


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        ("detail_10216.json", DownloadStatus.private, "statusCode 10216: private post"),
        ("detail_10222.json", DownloadStatus.private, "statusCode 10222: private account"),
        # "not available": deleted, or our IP is blocked; never `removed` on this alone
        ("detail_10204.json", DownloadStatus.transient, "statusCode 10204: not available"),
        ("detail_age_restricted.json", DownloadStatus.age_restricted, "isContentClassified"),
    ],
)
def test_documented_status_codes(name, status, reason):
    failure = failure_of(answer(), json.loads(fixture(name)))
    assert failure.status == status and failure.reason.startswith(reason)


def test_a_page_showing_another_video_is_not_that_video():
    """A redirect to another video's page stored copies of one video as "ok" (issue 20 #8)."""
    other = item(video={"playAddr": "https://cdn/play.mp4"})  # itemStruct.id "1"
    failure = failure_of(answer(), other, video_id=7171965565856099370)
    assert failure.status == DownloadStatus.transient and failure.reason.startswith("wrong video")
    assert classify_page(URL, answer(), other, {}, 1).video_address == "https://cdn/play.mp4"
