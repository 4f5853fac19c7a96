"""The coding page in a real headless Chromium: code three videos with the keyboard, reload, and
find the codes kept and scored; media outside the sample are refused."""

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import update

from gettok.db import session_scope
from gettok.models.schema import Download
from gettok.tasks.validate import create_sample, score_sample
from gettok.tasks.validate.page import CodingSample, coding_app
from gettok.tasks.validate.store import sampled_videos
from tests.dataset_for_outputs import build_dataset

CHROMIUM = Path("/usr/bin/chromium")
STANCE = ["support", "no support", "neutral"]
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (make system-deps installs it)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def coding_page(sqlite_url, tmp_path):
    """A sample of five stance videos with media files on disk, served on a local port."""
    build_dataset(sqlite_url)
    sample = create_sample(sqlite_url, "peru", "stance", 5, tmp_path / "s.csv", seed=5,
                           stance_labels=STANCE)  # fmt: skip
    media = tmp_path / "media"
    with session_scope(sqlite_url) as session:  # the second video is a slideshow with sound
        second = sampled_videos(session, sample.sample_id)[1].video_id
        session.execute(
            update(Download)
            .where(Download.video_id == second)
            .values(image_paths=["slides/1.jpg", "slides/2.jpg"], audio_path="slides/a.m4a")
        )
    with session_scope(sqlite_url) as session:
        videos = sampled_videos(session, sample.sample_id)
    for video in videos:
        for path in (*video.media, *video.frames):
            (media / path).parent.mkdir(parents=True, exist_ok=True)
            (media / path).write_bytes(b"not really a video")
    (tmp_path / "secret.txt").write_text("do not serve")
    app = coding_app(CodingSample(sqlite_url, "peru", sample.sample_id, media))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", sample, videos
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_codes_made_with_the_keyboard_survive_a_reload_and_are_scored(coding_page, sqlite_url):
    from playwright.sync_api import expect, sync_playwright

    base, sample, videos = coding_page
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(f"{base}/?coder=ana")
            page.wait_for_url(f"{base}/code/ana/1")
            expect(page.locator("#progress")).to_have_text("0 of 5 coded")
            assert "confidence" not in page.content()  # blind: nothing of the model shown
            page.keyboard.press("1")  # support, then on to video 2
            page.wait_for_url(f"{base}/code/ana/2")
            expect(page.locator(".slide.shown")).to_have_attribute("alt", "image 1")
            page.keyboard.press(".")  # next image of the slideshow
            expect(page.locator(".slide.shown")).to_have_attribute("alt", "image 2")
            expect(page.locator("audio#player")).to_have_count(1)
            page.keyboard.press("f")  # flag video 2, stay
            expect(page.locator("#flag")).to_have_class("on")
            page.keyboard.press("3")  # neutral
            page.wait_for_url(f"{base}/code/ana/3")
            page.keyboard.press("2")  # no support
            page.wait_for_url(f"{base}/code/ana/4")
            expect(page.locator("#progress")).to_have_text("3 of 5 coded")

            page.goto(f"{base}/code/ana/1")
            page.reload()
            expect(page.locator("#progress")).to_have_text("3 of 5 coded")
            expect(page.locator("button.chosen")).to_contain_text("support")
            page.goto(f"{base}/code/ana/2")
            expect(page.locator("button.chosen")).to_contain_text("neutral")
            expect(page.locator("#flag")).to_have_class("on")
            page.goto(f"{base}/?coder=ana")  # coming back starts at the first uncoded video
            page.wait_for_url(f"{base}/code/ana/4")
            page.goto(f"{base}/code/bea/1")  # another coder starts from nothing
            expect(page.locator("#progress")).to_have_text("0 of 5 coded")
        finally:
            browser.close()

    result = score_sample(sqlite_url, "peru", sample.sample_id)
    assert (result.figures.coded, result.figures.coders) == (3, ["ana"])
    from gettok.tasks.validate.store import coded_videos

    with session_scope(sqlite_url) as session:
        coded = coded_videos(session, sample.sample_id)
    assert [c.codes.get("ana") for c in coded] == ["support", "neutral", "no support", None, None]
    assert [c.flagged for c in coded] == [0, 1, 0, 0, 0]


def test_media_are_served_only_from_the_sample(coding_page):
    base, _, videos = coding_page
    own = next(p for v in videos for p in (*v.media, *v.frames))
    assert httpx.get(f"{base}/media/{own}").status_code == 200
    for path in ("../secret.txt", "..%2Fsecret.txt", "%2Fetc%2Fpasswd", "videos/1.mp4"):
        assert httpx.get(f"{base}/media/{path}").status_code == 404, path
    bad = httpx.post(f"{base}/api/codes", json={"coder": "ana", "position": 1, "action": "label",
                                                "label": "maybe"})  # fmt: skip
    assert bad.status_code == 400 and "support" in bad.text
    assert httpx.get(f"{base}/code/ana/99").status_code == 404
