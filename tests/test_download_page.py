"""How a tiktok.com answer maps to a download status, including shapes the sandbox never serves."""

from __future__ import annotations

import pytest
import requests
from gettok.models.schema import DownloadStatus

from gettok.clients.tiktok_web import PageFailure, classify_page

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
        (answer(200, "<div>Verify to continue: captcha</div>"), None, DownloadStatus.blocked, ""),
        (answer(200, url="https://www.tiktok.com/login?r=1"), None, DownloadStatus.private, ""),
        (answer(404), None, DownloadStatus.removed, "HTTP 404"),
        (answer(503), None, DownloadStatus.transient, "HTTP 503"),
        (answer(), None, DownloadStatus.transient, "page without embedded data"),
        (answer(), {"__DEFAULT_SCOPE__": []}, DownloadStatus.transient, ""),
        (answer(), scope({"statusCode": 10216}), DownloadStatus.removed, "10216"),
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
