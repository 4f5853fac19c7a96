"""`gettok download` end to end: the real Prefect engine, the sandbox over HTTP, a second round."""

from __future__ import annotations

import socket
import threading
import time

from typer.testing import CliRunner

from gettok.cli import app
from gettok.sandbox.server import running_sandbox
from tests.test_download import (
    CAMPAIGN,
    media_cache,  # noqa: F401  (fixture)
    pick_videos,
    rows,
    sandbox_config,
    store,
    use_sandbox,
)


def test_download_command_waits_out_dropped_connections(
    prefect_harness,
    sqlite_url,
    settings_env,
    monkeypatch,
    media_cache,  # noqa: F811
):
    config = sandbox_config(media_cache, web={"dropped_connection": 1.0})
    with running_sandbox(config) as sandbox:
        videos = pick_videos(sandbox, {"public": 2, "private": 1, "slideshow": 1})
        store(sqlite_url, videos)
        use_sandbox(monkeypatch, sandbox, sqlite_url, download_transient_backoff_s=1.0)

        def connections_come_back() -> None:
            # Every page of the first round is dropped; then the network heals.
            deadline = time.monotonic() + 60
            while sandbox.state.counters["web_dropped_connection"] < 4:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)
            sandbox.state.update_config({"web": {"dropped_connection": 0.0}})

        healer = threading.Thread(target=connections_come_back, daemon=True)
        healer.start()
        runner = CliRunner()
        result = runner.invoke(app, ["download", "--campaign", str(CAMPAIGN)])
        healer.join(timeout=5)
        assert result.exit_code == 0, result.output
        assert "3 downloaded of 4 (2 ok, 1 private, 1 slideshow)" in result.output
        assert sandbox.state.counters["web_dropped_connection"] == 4
        recorded = rows(sqlite_url)
        assert {r.attempts for r in recorded.values()} == {2}  # dropped once, then asked again

        # Nothing left to ask; not with --retry-failed either: the private one is pruned now
        # (found private at download, marked as prune marks it: issue 20 #1).
        result = runner.invoke(app, ["download", "--campaign", str(CAMPAIGN)])
        assert result.exit_code == 0 and "nothing asked" in result.output
        result = runner.invoke(app, ["download", "--campaign", str(CAMPAIGN), "--retry-failed"])
        assert result.exit_code == 0 and "nothing asked" in result.output
        private = next(v.id for v in videos if v.web_state == "private")
        assert rows(sqlite_url)[private].attempts == 2


def test_download_command_says_the_site_is_down_and_exits_non_zero(
    prefect_harness,
    sqlite_url,
    settings_env,
    monkeypatch,
    media_cache,  # noqa: F811
):
    """A host that refuses every connection is an outage, not a list of "transient" videos."""
    with running_sandbox(sandbox_config(media_cache)) as sandbox:
        store(sqlite_url, pick_videos(sandbox, {"public": 8}))
    with socket.socket() as probe:  # nothing listens here once closed: connections refused
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    use_sandbox(monkeypatch, sandbox, sqlite_url, download_concurrency=1)
    monkeypatch.setenv("GETTOK_TIKTOK_WEB_URL", closed)
    monkeypatch.setenv("GETTOK_DOWNLOAD_OUTAGE_REFUSALS", "2")
    result = CliRunner().invoke(app, ["download", "--campaign", str(CAMPAIGN)])
    assert result.exit_code not in (0, None), result.output
    assert "refused 2 connections in a row" in result.output
    assert len(rows(sqlite_url)) == 2  # the rest was put off, not marked
