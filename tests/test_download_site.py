"""Downloads as the real site behaves (issues 14 and 20): expiring media addresses, pages of
another video, hosts and sizes, a full disk, an outage, and failures that never end.

Over HTTP against the sandbox, through the real Pyktok and httpx code.
"""

from __future__ import annotations

import socket
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from gettok import db
from gettok.clients.tiktok_web import read_page, video_url
from gettok.models.schema import DownloadStatus, Video
from gettok.sandbox.server import running_sandbox
from gettok.settings import TIKTOK_MEDIA_HOSTS, get_settings
from gettok.tasks.download.downloader import Downloader, download_pending, video_file
from gettok.tasks.download.gate import DownloadGate
from gettok.tasks.download.safety import RefusedMedia, check_media_address
from tests import test_download
from tests.test_download import (
    assert_media_consistent,
    pick_videos,
    rows,
    sandbox_config,
    store,
    use_sandbox,
)

media_cache = test_download.media_cache  # the session's sandbox clips, shared


def test_an_expired_media_address_reads_the_page_once_more(
    sqlite_url, settings_env, monkeypatch, media_cache
):
    """Media addresses expire (about a day): on a 403, the page is read again, once."""
    config = sandbox_config(media_cache, web={"stale_media_address": 1.0})
    with running_sandbox(config) as sandbox:
        videos = pick_videos(sandbox, {"public": 2, "slideshow": 1})
        name = store(sqlite_url, videos)
        use_sandbox(monkeypatch, sandbox, sqlite_url)
        result = download_pending(get_settings(), name)
        assert result.by_status == {"ok": 2, "slideshow": 1}, rows(sqlite_url)
        assert sandbox.state.counters["web_expired_media"] == 3
        assert sandbox.state.counters["web_pages"] == 6  # each page twice, never three times


def test_media_wants_the_site_as_referer_and_the_page_cookie(
    sqlite_url, settings_env, monkeypatch, media_cache
):
    with running_sandbox(sandbox_config(media_cache)) as sandbox:
        videos = pick_videos(sandbox, {"public": 1})
        store(sqlite_url, videos)
        use_sandbox(monkeypatch, sandbox, sqlite_url)
        settings = get_settings()
        page = read_page(video_url(sandbox.base_url, "x", videos[0].id), 10, videos[0].id)
        assert set(page.cookies) == {"tt_chain_token"}
        downloader = Downloader(settings, DownloadGate.from_settings(settings))
        assert downloader.referer == f"{sandbox.base_url}/"
        with httpx.Client() as client:
            bare = client.get(page.video_address, headers={"Referer": downloader.referer})
            assert bare.status_code == 403  # no cookie
            foreign = client.get(
                page.video_address,
                headers={"Referer": "https://elsewhere.example/"},
                cookies=page.cookies,
            )
            assert foreign.status_code == 403
        downloader.close()


def test_a_page_of_another_video_is_never_stored_as_this_one(
    sqlite_url, settings_env, monkeypatch, media_cache
):
    """Issue 20 #8: a redirect to another video's page stored 6 "ok" copies of one video."""
    config = sandbox_config(media_cache, web={"wrong_video": 1.0})
    with running_sandbox(config) as sandbox:
        videos = pick_videos(sandbox, {"public": 3})
        name = store(sqlite_url, videos)
        use_sandbox(monkeypatch, sandbox, sqlite_url)
        settings = get_settings()
        result = download_pending(settings, name)
        assert result.by_status == {"transient": 3}
        assert all(r.last_error.startswith("wrong video") for r in rows(sqlite_url).values())
        assert not any(video_file(settings.resolved_media_dir, v.id).exists() for v in videos)


def test_media_larger_than_the_maximum_is_refused_by_its_length(
    sqlite_url, settings_env, monkeypatch, media_cache
):
    with running_sandbox(sandbox_config(media_cache)) as sandbox:
        videos = pick_videos(sandbox, {"public": 2})
        name = store(sqlite_url, videos)
        use_sandbox(monkeypatch, sandbox, sqlite_url, download_max_media_mb=0.001)
        settings = get_settings()
        result = download_pending(settings, name)
        assert result.by_status == {"invalid": 2}
        for row in rows(sqlite_url).values():
            assert row.last_error.startswith("media too large:"), row.last_error
        assert_media_consistent(settings.resolved_media_dir, sqlite_url)


def test_a_full_disk_fails_each_video_with_a_message_never_the_batch(
    db_url, settings_env, monkeypatch, media_cache
):
    """Issue 20 #13: one failing write aborted the batch (8 downloaded, 0 transcribed)."""
    with running_sandbox(sandbox_config(media_cache)) as sandbox:
        videos = pick_videos(sandbox, {"public": 3})
        name = store(db_url, videos)
        # more free space wanted than any disk has: every write would eat into the reserve
        use_sandbox(monkeypatch, sandbox, db_url, download_min_free_mb=10**12)
        settings = get_settings()
        result = download_pending(settings, name)
        assert result.by_status == {"transient": 3}
        for row in rows(db_url).values():
            assert row.last_error.startswith("disk full:") and "MB free" in row.last_error
            assert row.failed_runs == 0  # our disk, not the video: never counts to unreachable
        assert_media_consistent(settings.resolved_media_dir, db_url)


def test_a_site_that_refuses_every_connection_is_an_outage(
    sqlite_url, settings_env, monkeypatch, media_cache
):
    """Not 100 "transient" videos: the run stops, says so, and the rest is not marked."""
    with running_sandbox(sandbox_config(media_cache)) as sandbox:
        videos = pick_videos(sandbox, {"public": 12})
        name = store(sqlite_url, videos)
    with socket.socket() as probe:  # a port where nothing listens: connections are refused
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    use_sandbox(monkeypatch, sandbox, sqlite_url, download_concurrency=1)
    monkeypatch.setenv("GETTOK_TIKTOK_WEB_URL", closed)
    monkeypatch.setenv("GETTOK_DOWNLOAD_OUTAGE_REFUSALS", "3")
    result = download_pending(get_settings(), name)
    assert result.outage.startswith("tiktok.com (or its media host) refused 3 connections")
    assert result.by_status == {"transient": 3} and len(result.deferred) == 9
    found = rows(sqlite_url)
    assert len(found) == 3 and all(r.status == DownloadStatus.transient for r in found.values())


def test_the_same_failure_run_after_run_over_days_ends_unreachable(
    db_url, settings_env, monkeypatch, media_cache
):
    config = sandbox_config(media_cache, web={"wrong_video": 1.0})
    with running_sandbox(config) as sandbox:
        videos = pick_videos(sandbox, {"public": 1})
        name = store(db_url, videos)
        use_sandbox(
            monkeypatch,
            sandbox,
            db_url,
            download_transient_backoff_s=0,
            download_unreachable_runs=3,
            download_unreachable_days=2,
        )
        settings = get_settings()
        for _ in range(3):
            assert download_pending(settings, name).by_status == {"transient": 1}
        (row,) = rows(db_url).values()
        assert (row.failure_kind, row.failed_runs) == ("wrong video", 3)
        # three runs, but within a day: not yet; as if the first had been two days ago:
        with db.session_scope(db_url) as session:
            session.execute(
                update(type(row)).values(failing_since=row.failing_since - timedelta(2))
            )
        assert download_pending(settings, name).by_status == {"unreachable": 1}
        (row,) = rows(db_url).values()
        assert row.last_error.startswith("unreachable: 4 runs since")
        assert row.next_attempt_at is None
        assert download_pending(settings, name).statuses == {}  # asked no more
        with db.session_scope(db_url) as session:  # not proof of removal: not pruned
            assert session.scalar(select(Video.pruned_at)) is None


@pytest.mark.parametrize(
    ("address", "site", "allowed"),
    [
        ("https://v16-webapp-prime.tiktok.com/video/x", "https://www.tiktok.com", True),
        ("https://v77.tiktokcdn-us.com/a/b.mp4?x=1", "https://www.tiktok.com", True),
        ("https://evil.example/v.mp4", "https://www.tiktok.com", False),
        ("https://tiktokcdn.com.evil.example/v.mp4", "https://www.tiktok.com", False),
        ("http://127.0.0.1:8765/media/video/1.mp4", "https://www.tiktok.com", False),
        ("http://169.254.169.254/latest/meta-data", "https://www.tiktok.com", False),
        ("file:///etc/passwd", "https://www.tiktok.com", False),
        ("http://127.0.0.1:8765/media/video/1.mp4", "http://127.0.0.1:8765", True),  # sandbox
        ("http://localhost:8765/media/video/1.mp4", "http://127.0.0.1:8765", False),
    ],
)
def test_media_only_from_expected_hosts(address, site, allowed):
    if allowed:
        check_media_address(address, site, list(TIKTOK_MEDIA_HOSTS))
    else:
        with pytest.raises(RefusedMedia):
            check_media_address(address, site, list(TIKTOK_MEDIA_HOSTS))


def test_a_cdn_name_that_resolves_to_loopback_is_refused_in_production():
    """Even a listed host may not point at this machine when the site is the public one."""
    with pytest.raises(RefusedMedia, match="private or loopback"):
        check_media_address("http://localhost/v.mp4", "https://www.tiktok.com", ["localhost"])
