"""Comments end to end on the sandbox over HTTP, on Postgres and SQLite: every comment once, the
fewest requests, inside the daily budget, resumable after kill -9; the public export; and user
info for the authors, cached and inside the budget."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import date, timedelta

import polars as pl
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

from gettok.clients.research_comments import COMMENT_LIST_ENDPOINT, USER_INFO_ENDPOINT
from gettok.db import session_scope
from gettok.models.campaign import load_campaign
from gettok.models.schema import ApiRequest, Comment, CommentCheckpoint, TikTokUser, utcnow
from gettok.sandbox.comments import HANDLES, comment_slots
from gettok.sandbox.config import SandboxConfig
from gettok.settings import get_settings
from gettok.tasks.collect import collect_campaign
from gettok.tasks.comments import collect_comments, fetch_user_info
from gettok.tasks.comments.store import campaign_authors, chosen_videos
from gettok.tasks.export.dataset import export_dataset, user_hash
from tests.test_bad_input_cli import PERU

DAY = date(2022, 12, 7)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    # 400 videos a day: the day's most commented video has more than the API's 1,000 comments.
    return SandboxConfig(fault_seed=20221207, videos_per_day=400)


@pytest.fixture
def collected(sandbox, db_url):
    """Settings pointing at the sandbox, and the Peru campaign's videos of one day collected."""
    settings = get_settings(
        database_url=db_url,
        tiktok_api_url=sandbox.base_url,
        tiktok_client_key=sandbox.state.config.client_key,
        tiktok_client_secret=sandbox.state.config.client_secret,
    )
    campaign = load_campaign(PERU)
    assert collect_campaign(settings, campaign, DAY, DAY).state == "completed"
    return settings, campaign


def top_videos(url: str, n: int) -> list[int]:
    with session_scope(url) as session:
        return chosen_videos(session, "peru_2022", n)[0]


def expected(sandbox, video_ids: list[int]) -> tuple[dict[int, dict], int]:
    """The comments the API shows for these videos, and the fewest requests that fetch them."""
    comments, pages = {}, 0
    for video_id in video_ids:
        slots = comment_slots(sandbox.state.corpus.get(video_id), sandbox.state.config.seed)
        comments.update({c.id: c.api_record() for c in slots if c.visible})
        pages += max(1, math.ceil(len(slots) / 100))
    return comments, pages


def stored(url: str) -> dict[int, dict]:
    with session_scope(url) as session:
        return {c.id: c.raw for c in session.scalars(select(Comment))}


def comment_requests(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(
            select(func.count())
            .select_from(ApiRequest)
            .where(ApiRequest.endpoint == COMMENT_LIST_ENDPOINT)
        )


def test_top_videos_comments_are_stored_once_with_the_fewest_requests(sandbox, collected, db_url):
    settings, _ = collected
    top = top_videos(db_url, 3)
    want, minimum = expected(sandbox, top)

    result = collect_comments(settings, "peru_2022", top_n=3)

    assert (result.done, result.failed, result.notes) == (3, {}, [])
    assert stored(db_url) == want  # every comment the API shows, once, as sent
    assert comment_requests(db_url) == result.counts["requests"] == minimum  # requests = minimum
    by_video = sandbox.state.corpus.get(top[0]).comment_count
    assert by_video > 1000 and len([c for c in want.values() if c["video_id"] == top[0]]) <= 1000
    with session_scope(db_url) as session:
        rows = session.scalars(select(Comment)).all()
        checkpoints = session.scalars(select(CommentCheckpoint)).all()
    # A reply names a comment of its video (which may have been deleted since, like on TikTok).
    seed = sandbox.state.config.seed
    slot_ids = {c.id for v in top for c in comment_slots(sandbox.state.corpus.get(v), seed)}
    assert all(r.parent_comment_id in (r.video_id, *slot_ids) for r in rows)
    assert any(r.parent_comment_id != r.video_id for r in rows)  # replies came too
    assert any(r.text == "" for r in rows)  # empty texts kept, as the API sends them
    assert {c.status.value for c in checkpoints} == {"done"}
    assert checkpoints[0].cursor <= 1000

    again = collect_comments(settings, "peru_2022", top_n=3)
    assert (again.done, again.skipped, again.counts["requests"]) == (0, 3, 0)
    assert comment_requests(db_url) == minimum


def test_faults_are_retried_and_cost_no_comment(sandbox, collected, db_url):
    if db_url.startswith("postgresql"):
        pytest.skip("fault handling is the same code on both databases; SQLite is enough")
    settings, _ = collected
    sandbox.state.update_config(
        {"api": {"error_500": 0.1, "invalid_cursor": 0.1, "rate_limit_429": 0.05,
                 "duplicates": 0.3}}
    )  # fmt: skip
    top = top_videos(db_url, 3)
    want, minimum = expected(sandbox, top)

    result = collect_comments(settings, "peru_2022", top_n=3)

    assert (result.done, result.failed) == (3, {})
    assert stored(db_url) == want
    faults = sandbox.state.counters
    assert faults["fault_500"] + faults["fault_invalid_cursor"] > 0 and faults["fault_duplicates"]
    # Every extra request is a retry of a fault (429s too: they were sent); no stored page again.
    extra = faults["fault_500"] + faults["fault_invalid_cursor"] + faults["fault_429"]
    assert comment_requests(db_url) == minimum + extra


def test_the_budget_is_never_exceeded_and_the_next_day_resumes(sandbox, collected, db_url):
    settings, _ = collected
    top = top_videos(db_url, 3)
    want, minimum = expected(sandbox, top)
    with session_scope(db_url) as session:
        used = session.scalar(select(func.count()).select_from(ApiRequest).where(
            ApiRequest.endpoint != "oauth/token"))  # fmt: skip
    tight = settings.model_copy(update={"daily_request_budget": used + 7})

    first = collect_comments(tight, "peru_2022", top_n=3)

    assert first.counts["requests"] == 7 and "daily quota reached" in first.notes[0]
    assert first.failed == {"quota_exhausted": 1} and first.skipped == 2
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(ApiRequest).where(
            ApiRequest.endpoint != "oauth/token")) == used + 7  # fmt: skip
        # 00:00 UTC: what was spent counts against yesterday.
        session.execute(update(ApiRequest).values(day=ApiRequest.day - timedelta(days=1)))

    second = collect_comments(settings, "peru_2022", top_n=3)  # a new day's whole budget

    assert (second.done, second.failed) == (3, {})
    assert stored(db_url) == want
    assert comment_requests(db_url) == minimum  # resumed by cursor: no page asked twice


KILLED_RUN = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from gettok.settings import get_settings
from gettok.tasks.comments import collect_comments, fetch_user_info

seen = 0

@event.listens_for(Engine, "before_cursor_execute")
def kill_midway(conn, cursor, statement, *args):
    global seen
    if statement.lstrip().upper().startswith("INSERT INTO COMMENTS"):
        seen += 1
        if seen == int(sys.argv[1]):
            os.kill(os.getpid(), signal.SIGKILL)  # mid-page: its transaction never commits

collect_comments(get_settings(), "peru_2022", top_n=1)
"""


def test_killed_mid_video_the_rerun_resumes_by_cursor(sandbox, collected, db_url, tmp_path):
    settings, _ = collected
    top = top_videos(db_url, 1)
    want, minimum = expected(sandbox, top)
    env = {**os.environ, **sandbox.env(), "GETTOK_DATABASE_URL": db_url}
    env["GETTOK_DATA_DIR"] = str(tmp_path)

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, "4"], env=env, capture_output=True, timeout=120
    )

    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    with session_scope(db_url) as session:
        checkpoint = session.get(CommentCheckpoint, top[0])
        assert (checkpoint.status.value, checkpoint.pages, checkpoint.cursor) == ("running", 3, 300)
    slots = comment_slots(sandbox.state.corpus.get(top[0]), sandbox.state.config.seed)
    first_pages = {c.id: c.api_record() for c in slots[:300] if c.visible}
    assert stored(db_url) == first_pages  # the three committed pages, not the one in flight
    assert comment_requests(db_url) == 4  # three stored pages and the one in flight

    rerun = collect_comments(settings, "peru_2022", top_n=1)

    assert (rerun.done, rerun.failed) == (1, {})
    assert stored(db_url) == want
    # Only the page in flight at the kill was asked again.
    assert comment_requests(db_url) == minimum + 1


def test_public_export_pseudonymises_commenters_and_masks_mentions(
    sandbox, collected, db_url, tmp_path
):
    if db_url.startswith("postgresql"):
        pytest.skip("the export reads through the same queries on both databases")
    settings, _ = collected
    collect_comments(settings, "peru_2022", top_n=3)
    salt = SecretStr("project-secret")

    export_dataset(db_url, "peru_2022", tmp_path, "jsonl", public=True, salt=salt)
    export_dataset(db_url, "peru_2022", tmp_path, "jsonl")

    public = pl.read_ndjson(tmp_path / "peru_2022.public.comments.jsonl")
    full = pl.read_ndjson(tmp_path / "peru_2022.comments.jsonl")
    assert public.height == full.height == len(stored(db_url))
    assert not {"comment_id", "parent_comment_id", "raw"} & set(public.columns)
    assert {"comment_id", "parent_comment_id", "raw"} <= set(full.columns)
    hashes = set(public["comment_hash"])
    assert len(hashes) == public.height and not hashes & {str(i) for i in full["comment_id"]}
    # Threads stay whole: a reply points at its comment's hash (unless that comment is gone).
    kept, replies = set(full["comment_id"]), 0
    for row, parent in zip(public.iter_rows(named=True), full["parent_comment_id"], strict=True):
        if row["is_reply"]:
            replies += 1
            assert row["reply_to_hash"] == user_hash(str(parent), salt)
            assert (row["reply_to_hash"] in hashes) == (parent in kept)
        else:
            assert row["reply_to_hash"] is None
    assert replies
    texts = " ".join(public["text"].drop_nulls())
    assert "@user" in texts and not any(f"@{h}" in texts for h in HANDLES)
    assert any(f"@{h}" in " ".join(full["text"].drop_nulls()) for h in HANDLES)
    assert (tmp_path / "peru_2022.public.comments.dictionary.csv").exists()
    assert json.loads(full["raw"][0])["id"] == full["comment_id"][0]


# -- user info ------------------------------------------------------------------------------


def user_requests(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(
            select(func.count())
            .select_from(ApiRequest)
            .where(ApiRequest.endpoint == USER_INFO_ENDPOINT)
        )


def test_authors_are_recorded_once_with_a_status_and_cached(sandbox, collected, db_url):
    settings, _ = collected
    with session_scope(db_url) as session:
        authors = campaign_authors(session, "peru_2022")

    result = fetch_user_info(settings, "peru_2022")

    assert (result.done, result.failed, result.counts["requests"]) == (
        len(authors),
        {},
        len(authors),
    )
    with session_scope(db_url) as session:
        users = {u.username: u for u in session.scalars(select(TikTokUser))}
    assert set(users) == set(authors)
    statuses = {u.status for u in users.values()}
    assert "ok" in statuses and statuses <= {"ok", "not_found", "refused"}
    assert result.counts.get("not_found", 0) + result.counts.get("refused", 0) == sum(
        1 for u in users.values() if u.status != "ok"
    )
    ok = next(u for u in users.values() if u.status == "ok")
    assert ok.follower_count is not None and ok.raw["display_name"] == ok.display_name
    refused = [u for u in users.values() if u.status != "ok"]
    assert all(u.reason and u.follower_count is None for u in refused)

    again = fetch_user_info(settings, "peru_2022")  # within 30 days: nobody asked again
    assert (again.done, again.skipped, again.counts["requests"]) == (0, len(authors), 0)
    with session_scope(db_url) as session:  # 31 days later the cache has expired
        session.execute(update(TikTokUser).values(fetched_at=utcnow() - timedelta(days=31)))
    assert fetch_user_info(settings, "peru_2022").done == len(authors)
    assert user_requests(db_url) == 2 * len(authors)


def test_user_info_stops_at_the_budget_and_finishes_the_next_day(sandbox, collected, db_url):
    settings, _ = collected
    with session_scope(db_url) as session:
        authors = campaign_authors(session, "peru_2022")
        used = session.scalar(
            select(func.count()).select_from(ApiRequest).where(ApiRequest.endpoint != "oauth/token")
        )
    tight = settings.model_copy(update={"daily_request_budget": used + 5})

    first = fetch_user_info(tight, "peru_2022")

    assert (first.done, first.counts["requests"]) == (5, 5)
    assert first.skipped == len(authors) - 5 and "daily quota reached" in first.notes[0]
    with session_scope(db_url) as session:
        assert session.scalar(
            select(func.count()).select_from(ApiRequest).where(ApiRequest.endpoint != "oauth/token")
        ) == used + 5  # fmt: skip
        session.execute(update(ApiRequest).values(day=ApiRequest.day - timedelta(days=1)))

    second = fetch_user_info(settings, "peru_2022")

    assert (second.done, second.skipped) == (len(authors) - 5, 5)
    assert user_requests(db_url) == len(authors)  # each author asked once in all
