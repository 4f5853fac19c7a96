"""Each Research API fault against the sandbox over HTTP, and what the collect stage does about it.

The expected set is computed here from the sandbox corpus itself (every visible video of the
query's region with a keyword in its description or one of its hashtags), independently of the
sandbox's query engine and of the code under test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import uvicorn
from sqlalchemy import func, select

from gettok.clients.research_api import RequestLedger
from gettok.db import session_scope
from gettok.models.campaign import load_campaign
from gettok.models.schema import ApiRequest, CampaignVideo, EngagementSnapshot, Video, utcnow
from gettok.models.schema import CollectionWindow as WindowRow
from gettok.sandbox.app import create_app
from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.server import RunningSandbox
from gettok.sandbox.state import SandboxState
from gettok.settings import DEFAULT_VIDEO_FIELDS, get_settings
from gettok.tasks.collect import collect_campaign
from gettok.tasks.collect.paging import CollectPolicies, collect_window
from gettok.tasks.collect.windows import next_utc_midnight
from tests.conftest import FIXTURES

CAMPAIGN = load_campaign(FIXTURES.parent.parent / "campaigns" / "peru_2022.toml")
START, END = date(2022, 12, 6), date(2022, 12, 9)
FAULTS = (
    "error_500",
    "expired_search_id",
    "invalid_cursor",
    "rate_limit_429",
    "empty_page",
    "duplicates",
)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    # ~130 matching videos a day: two or three pages per one-day window.
    return SandboxConfig(fault_seed=20221207, videos_per_day=400)


def settings_for(sandbox, database_url: str, **overrides):
    values = {
        "database_url": database_url,
        "tiktok_api_url": sandbox.base_url,
        "tiktok_client_key": sandbox.state.config.client_key,
        "tiktok_client_secret": sandbox.state.config.client_secret,
        **overrides,
    }
    return get_settings(**values)


def expected_ids(sandbox, start: date = START, end: date = END) -> set[int]:
    query = CAMPAIGN.query
    keywords = [k.lower() for k in query.keywords]
    hashtags = {h.lower() for h in query.hashtags}
    return {
        v.id
        for v in sandbox.state.corpus.videos_between(start, end)
        if v.api_visible
        and v.region_code in query.region_codes
        and (
            any(k in v.description.lower() for k in keywords)
            or any(h.lower() in hashtags for h in v.hashtags)
        )
    }


def stored_ids(database_url: str) -> set[int]:
    with session_scope(database_url) as session:
        return set(session.scalars(select(CampaignVideo.video_id)))


def count(database_url: str, table) -> int:
    with session_scope(database_url) as session:
        return session.scalar(select(func.count()).select_from(table))


def windows(database_url: str) -> dict[str, WindowRow]:
    with session_scope(database_url) as session:
        rows = session.scalars(select(WindowRow).order_by(WindowRow.window_start)).all()
    return {f"{r.window_start}..{r.window_end}": r for r in rows}


def set_faults(sandbox, **rates: float) -> None:
    sandbox.state.update_config({"api": {name: rates.get(name, 0.0) for name in FAULTS}})


def assert_complete(sandbox, database_url: str, result, start=START, end=END) -> None:
    expected = expected_ids(sandbox, start, end)
    assert result.state == "completed", [(w.window, w.status, w.note) for w in result.windows]
    assert len(expected) > 300
    assert stored_ids(database_url) == expected
    assert count(database_url, Video) == len(expected)
    # One engagement snapshot per video per window pass, whatever the repeats.
    assert count(database_url, EngagementSnapshot) == len(expected)
    assert sum(r.videos for r in windows(database_url).values()) == len(expected)


def test_fault_free_run_collects_the_matching_set_in_the_fewest_requests(
    sandbox, db_url, settings_env
):
    result = collect_campaign(settings_for(sandbox, db_url), CAMPAIGN, START, END)
    assert_complete(sandbox, db_url, result)
    assert result.windows_done == 4
    # Fault-free, every request is a page: one search per window, no page asked twice.
    assert (
        result.requests == sum(w.pages for w in result.windows) == RequestLedger(db_url, 1).used()
    )
    assert sandbox.state.counters["searches"] == 4
    # A rerun says what is already there, not "0 videos".
    again = collect_campaign(settings_for(sandbox, db_url), CAMPAIGN, START, END)
    assert [w.note for w in again.windows] == [
        f"already collected: {w.videos} videos" for w in result.windows
    ]


def test_ten_percent_faults_collect_exactly_the_matching_set(sandbox, db_url, settings_env):
    end = START + timedelta(days=11)
    set_faults(sandbox, **{name: 0.10 for name in FAULTS})
    result = collect_campaign(settings_for(sandbox, db_url), CAMPAIGN, START, end)
    assert_complete(sandbox, db_url, result, START, end)
    fired = [name for name in sandbox.state.counters if name.startswith("fault_")]
    assert len(fired) >= 4, f"too few faults fired to prove anything: {fired}"


def test_server_errors_are_retried_with_backoff(sandbox, sqlite_url, settings_env):
    set_faults(sandbox, error_500=0.4)
    result = collect_campaign(settings_for(sandbox, sqlite_url), CAMPAIGN, START, END)
    assert_complete(sandbox, sqlite_url, result)
    assert sum(w.faults.get("server_error", 0) for w in result.windows) > 0
    with session_scope(sqlite_url) as session:
        errors = session.scalar(select(func.count()).where(ApiRequest.status_code == 500))
    assert errors == sandbox.state.counters["fault_500"]  # 500s are counted in the ledger


def test_persistent_server_errors_split_the_window_and_a_rerun_finishes(
    sandbox, sqlite_url, settings_env
):
    settings = settings_for(sandbox, sqlite_url, window_days=4)
    set_faults(sandbox, error_500=1.0)
    first = collect_campaign(settings, CAMPAIGN, START, END)
    # 4 days -> two halves of 2 -> four single days, which cannot be split further.
    assert [str(w.window) for w in first.windows if w.status == "split"] == [
        "2022-12-06..2022-12-09",
        "2022-12-06..2022-12-07",
        "2022-12-08..2022-12-09",
    ]
    assert first.windows_failed == 4 and first.state == "incomplete: 4 window(s) failed"
    policy_tries = CollectPolicies().server_error.attempts
    assert first.requests == 7 * policy_tries  # bounded: each window gives up after its policy
    assert windows(sqlite_url)["2022-12-06..2022-12-09"].last_error.startswith(
        "persistent server errors"
    )

    set_faults(sandbox)
    second = collect_campaign(settings, CAMPAIGN, START, END)
    assert second.windows_skipped == 3  # the split windows, whose halves are collected instead
    assert second.windows_done == 4
    assert_complete(sandbox, sqlite_url, second)


def test_expired_search_ids_are_retried(sandbox, sqlite_url, settings_env):
    set_faults(sandbox, expired_search_id=0.5)
    result = collect_campaign(settings_for(sandbox, sqlite_url), CAMPAIGN, START, END)
    assert_complete(sandbox, sqlite_url, result)
    assert sum(w.faults.get("search_id_expired", 0) for w in result.windows) > 0


def test_a_search_id_that_never_works_restarts_the_search_once_then_fails(
    sandbox, sqlite_url, settings_env
):
    # ~480 videos: what the restart leaves (it leaves out the first page's) is still 2+ pages.
    sandbox.state.update_config({"videos_per_day": 1500})
    set_faults(sandbox, expired_search_id=1.0)
    result = collect_campaign(settings_for(sandbox, sqlite_url), CAMPAIGN, START, START)
    (outcome,) = result.windows
    tries = CollectPolicies().search_id_expired.attempts
    # page 1, its follow-up failing `tries` times; the restart's page 1 and follow-up again.
    assert outcome.status == "failed" and outcome.requests == 2 * (1 + tries), outcome.note
    assert sandbox.state.counters["searches"] == 2
    assert "after a restart" in outcome.note
    # Two first pages, different videos (the restart left out the first's), each counted once.
    stored = stored_ids(sqlite_url)
    assert 0 < len(stored) < len(expected_ids(sandbox, START, START))
    assert count(sqlite_url, EngagementSnapshot) == len(stored) == outcome.videos


def test_invalid_cursor_fails_the_window_keeping_the_checkpoint_and_a_rerun_resumes(
    sandbox, sqlite_url, settings_env
):
    settings = settings_for(sandbox, sqlite_url)
    set_faults(sandbox, invalid_cursor=1.0)  # the sandbox sends it only past the first page
    first = collect_campaign(settings, CAMPAIGN, START, START)
    (outcome,) = first.windows
    assert outcome.status == "failed" and outcome.pages == 1
    assert outcome.faults == {"invalid_cursor": CollectPolicies().invalid_cursor.attempts}
    row = windows(sqlite_url)["2022-12-06..2022-12-06"]
    assert row.cursor == 100 and row.search_id and row.status.value == "failed"

    set_faults(sandbox)
    searches = sandbox.state.counters["searches"]
    second = collect_campaign(settings, CAMPAIGN, START, START)
    assert second.windows_done == 1
    assert sandbox.state.counters["searches"] == searches  # resumed the same search, no restart
    assert second.windows[0].pages == windows(sqlite_url)["2022-12-06..2022-12-06"].pages - 1
    assert stored_ids(sqlite_url) == expected_ids(sandbox, START, START)


def test_rejected_token_is_refreshed(sandbox, sqlite_url, settings_env):
    settings = settings_for(sandbox, sqlite_url)
    calls = []

    def forget_tokens_between_windows(ctx, window):
        calls.append(window)
        if len(calls) > 1:
            sandbox.state.tokens.clear()  # the server forgets (expires) the cached token
        return collect_window(ctx, window)

    result = collect_campaign(
        settings, CAMPAIGN, START, END, run_window=forget_tokens_between_windows
    )
    assert_complete(sandbox, sqlite_url, result)
    assert sandbox.state.counters["token_requests"] == 4
    with session_scope(sqlite_url) as session:
        unauthorised = session.scalar(select(func.count()).where(ApiRequest.status_code == 401))
    assert unauthorised == 3


def test_short_term_rate_limits_are_waited_out(sandbox, sqlite_url, settings_env):
    set_faults(sandbox, rate_limit_429=0.5)
    result = collect_campaign(settings_for(sandbox, sqlite_url), CAMPAIGN, START, END)
    assert_complete(sandbox, sqlite_url, result)
    assert sum(w.faults.get("rate_limited", 0) for w in result.windows) > 0


def test_a_rate_limit_that_never_lifts_stops_the_run_for_the_day(sandbox, sqlite_url, settings_env):
    set_faults(sandbox, rate_limit_429=1.0)
    result = collect_campaign(settings_for(sandbox, sqlite_url), CAMPAIGN, START, END)
    assert result.quota_exhausted and result.state == "quota exhausted, resumes at 00:00 UTC"
    assert len(result.windows) == 1  # nothing else was tried
    assert result.windows[0].requests == CollectPolicies().rate_limited.attempts


def test_daily_quota_checkpoints_and_the_next_run_resumes_without_repeating_pages(
    sandbox, sqlite_url, settings_env
):
    settings = settings_for(sandbox, sqlite_url)
    sandbox.state.update_config({"daily_quota": 5})  # mid-window
    first = collect_campaign(settings, CAMPAIGN, START, END)
    assert first.quota_exhausted and first.state == "quota exhausted, resumes at 00:00 UTC"
    assert first.resumes_at == next_utc_midnight()
    stopped = first.windows[-1]
    assert stopped.status == "quota_exhausted"
    row = windows(sqlite_url)[f"{stopped.window.start}..{stopped.window.end}"]
    assert row.status.value == "quota_exhausted" and row.cursor and row.search_id
    assert "daily quota" in row.last_error
    assert len(windows(sqlite_url)) == len(first.windows)  # later windows not even started

    sandbox.state.update_config({"daily_quota": 1000})  # the next day's quota
    second = collect_campaign(settings, CAMPAIGN, START, END)
    assert_complete(sandbox, sqlite_url, second)
    pages = sum(r.pages for r in windows(sqlite_url).values())
    # Every page was asked for once; the only extra request is the one the quota refused.
    assert RequestLedger(sqlite_url, 1).used() == pages + 1
    assert sandbox.state.counters["searches"] == 4


def test_waiting_for_the_quota_sleeps_until_midnight_utc_then_finishes(
    sandbox, sqlite_url, settings_env
):
    sandbox.state.update_config({"daily_quota": 3})
    slept = []

    def sleep(seconds: float) -> None:
        if seconds >= 1:  # the quota wait, not a retry's
            slept.append(seconds)
            sandbox.state.update_config({"daily_quota": 1000})  # midnight came

    result = collect_campaign(
        settings_for(sandbox, sqlite_url), CAMPAIGN, START, END, wait_for_quota=True, sleep=sleep
    )
    assert len(slept) == 1
    expected_wait = (next_utc_midnight() - utcnow()).total_seconds() + 60
    assert abs(slept[0] - expected_wait) < 30
    assert not result.quota_exhausted
    assert stored_ids(sqlite_url) == expected_ids(sandbox)


def test_empty_pages_with_has_more_are_followed(sandbox, sqlite_url, settings_env):
    set_faults(sandbox, empty_page=0.4)
    result = collect_campaign(settings_for(sandbox, sqlite_url), CAMPAIGN, START, END)
    assert_complete(sandbox, sqlite_url, result)


def test_endless_empty_pages_stop_after_a_bound_and_are_not_counted_done(
    sandbox, sqlite_url, settings_env
):
    set_faults(sandbox, empty_page=1.0)
    result = collect_campaign(settings_for(sandbox, sqlite_url), CAMPAIGN, START, START)
    (outcome,) = result.windows
    limit = CollectPolicies().max_empty_pages
    assert outcome.status == "failed" and outcome.requests == limit
    assert f"stopped after {limit} pages" in outcome.note
    assert windows(sqlite_url)["2022-12-06..2022-12-06"].status.value == "failed"


def test_duplicates_across_pages_are_stored_once(sandbox, db_url, settings_env):
    set_faults(sandbox, duplicates=1.0)
    result = collect_campaign(settings_for(sandbox, db_url), CAMPAIGN, START, END)
    assert sandbox.state.counters["fault_duplicates"] > 0
    assert_complete(sandbox, db_url, result)


class SlowVideoQuery(BaseHTTPRequestHandler):
    """Answers the token endpoint, then never answers a video query in time."""

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/v2/oauth/token/"):
            payload = b'{"access_token": "clt.x", "expires_in": 7200, "token_type": "Bearer"}'
        else:
            time.sleep(1.0)
            payload = b'{"data": {"videos": [], "has_more": false}, "error": {"code": "ok"}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def test_timeouts_and_network_errors_are_retried_then_fail_the_window(sqlite_url, settings_env):
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowVideoQuery)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = get_settings(
            database_url=sqlite_url,
            tiktok_api_url=f"http://127.0.0.1:{server.server_address[1]}",
            tiktok_client_key="k",
            tiktok_client_secret="s",
            tiktok_request_timeout_s=0.2,
        )
        result = collect_campaign(settings, CAMPAIGN, START, START + timedelta(days=1))
    finally:
        server.shutdown()
        server.server_close()
    tries = CollectPolicies().network.attempts
    assert [w.status for w in result.windows] == ["failed", "failed"]  # one bad window, not the run
    assert all(w.faults == {"network": tries} for w in result.windows)
    assert "timeout" in result.windows[0].note
    with session_scope(sqlite_url) as session:
        network = session.scalar(select(func.count()).where(ApiRequest.error_code == "network"))
    assert network == 2 * tries

    # Nothing listening at all: the token request fails the same way.
    closed = get_settings(
        database_url=sqlite_url,
        tiktok_api_url=f"http://127.0.0.1:{server.server_address[1]}",
        tiktok_client_key="k",
        tiktok_client_secret="s",
    )
    result = collect_campaign(closed, CAMPAIGN, START, START)
    assert result.windows[0].status == "failed" and result.windows[0].faults == {"network": tries}


def test_a_rejected_field_aborts_the_run_at_the_first_request(sandbox, sqlite_url, settings_env):
    sandbox.state.rejected_fields.add("video_tag")  # as if the service withdrew a field
    settings = settings_for(sandbox, sqlite_url, tiktok_video_fields=DEFAULT_VIDEO_FIELDS)
    result = collect_campaign(settings, CAMPAIGN, START, END)
    assert result.aborted and "video_tag" in result.aborted
    assert len(result.windows) == 1 and result.requests == 1


def test_the_daily_budget_is_never_exceeded(sandbox, sqlite_url, settings_env):
    settings = settings_for(sandbox, sqlite_url, daily_request_budget=3)
    result = collect_campaign(settings, CAMPAIGN, START, END)
    assert result.quota_exhausted
    assert "budget" in result.windows[-1].note
    assert RequestLedger(sqlite_url, 3).used() == 3
    assert sandbox.state.counters["research_requests"] == 3
    again = collect_campaign(settings, CAMPAIGN, START, END)  # a rerun the same day
    assert again.quota_exhausted and again.requests == 0
    assert sandbox.state.counters["research_requests"] == 3


def test_nul_bytes_are_kept_in_the_raw_payload_and_stripped_from_columns(
    sandbox, db_url, settings_env
):
    result = collect_campaign(settings_for(sandbox, db_url), CAMPAIGN, START, END)
    assert result.state == "completed"
    expected = expected_ids(sandbox)
    with_nul = [v for v in sandbox.state.corpus.videos_between(START, END) if v.id in expected]
    with_nul = [v for v in with_nul if v.nul_in and v.nul_in not in v.missing]
    assert with_nul, "the corpus holds no matching record with a NUL byte"
    with session_scope(db_url) as session:
        for corpus_video in with_nul:
            stored = session.get(Video, corpus_video.id)
            field = corpus_video.nul_in
            assert "\x00" in stored.raw[field]  # the payload exactly as the API sent it
            if hasattr(stored, field) and isinstance(getattr(stored, field), str):
                assert "\x00" not in getattr(stored, field)
                assert getattr(stored, field) == stored.raw[field].replace("\x00", "")


@contextmanager
def sandbox_with_hook(config: SandboxConfig, after_request) -> Iterator[RunningSandbox]:
    """The sandbox app with `after_request(path, state)` called after each answer it sends."""
    state = SandboxState(config)
    app = create_app(state)

    @app.middleware("http")
    async def hook(request, call_next):
        response = await call_next(request)
        after_request(request.url.path, state)
        return response

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield RunningSandbox(f"http://127.0.0.1:{sock.getsockname()[1]}", state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_a_search_lost_deep_in_a_window_is_restarted_and_the_window_completes(
    sqlite_url, settings_env
):
    served = []

    def forget_searches_once(path: str, state: SandboxState) -> None:
        if path.startswith("/v2/research/"):
            served.append(path)
            if len(served) == 5:  # five pages in: the server forgets every search it issued
                state.searches.clear()

    # ~480 matching videos on the day: six pages; the restart leaves out the five pages stored.
    config = SandboxConfig(fault_seed=1, videos_per_day=1500)
    with sandbox_with_hook(config, forget_searches_once) as sandbox:
        result = collect_campaign(settings_for(sandbox, sqlite_url), CAMPAIGN, START, START)
        expected = expected_ids(sandbox, START, START)
    (outcome,) = result.windows
    assert outcome.status == "done", outcome.note
    # Five before the loss, then only what they did not hold (before: all six pages again).
    assert 5 + 1 <= outcome.pages <= 5 + 2, outcome.pages
    assert outcome.faults == {"search_id_expired": CollectPolicies().search_id_expired.attempts}
    assert stored_ids(sqlite_url) == expected
    assert outcome.videos == len(expected) == count(sqlite_url, EngagementSnapshot)


def test_two_collectors_on_one_campaign_never_page_a_window_twice(pg_url, settings_env):
    def slow(path: str, state: SandboxState) -> None:
        if path.startswith("/v2/research/"):
            time.sleep(0.05)

    config = SandboxConfig(fault_seed=1, videos_per_day=400)
    with sandbox_with_hook(config, slow) as sandbox:
        settings = settings_for(sandbox, pg_url)
        results = []

        def collector() -> None:
            results.append(collect_campaign(settings, CAMPAIGN, START, END))

        threads = [threading.Thread(target=collector) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        searches = sandbox.state.counters["searches"]
        expected = expected_ids(sandbox)
    outcomes = [w for result in results for w in result.windows]
    assert {w.status for w in outcomes} <= {"done", "skipped", "busy"}
    assert stored_ids(pg_url) == expected
    assert count(pg_url, EngagementSnapshot) == len(expected)
    assert sum(1 for w in outcomes if w.status == "done") == 4  # each window paged by one of them
    assert searches == 4
    pages = sum(r.pages for r in windows(pg_url).values())
    assert RequestLedger(pg_url, 1).used() == pages  # no page asked for twice
