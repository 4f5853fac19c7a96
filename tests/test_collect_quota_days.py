"""A day whose videos need more than one day's quota: collected over several days, each video once,
each stored page fetched once (issue 20 #3).

The sandbox forgets its searches at each simulated midnight (as the live API's search ids do not
outlive the day), so resuming at the saved cursor fails: the search starts again leaving out what
is stored, or (over the cap of left-out ids) the window is split by query.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gettok.db import session_scope
from gettok.models.schema import CampaignVideo, Video
from gettok.models.schema import CollectionWindow as WindowRow
from gettok.sandbox.config import SandboxConfig
from gettok.tasks.collect import collect_campaign
from gettok.tasks.collect.policies import CollectPolicies
from tests.test_collect_faults import (
    CAMPAIGN,
    START,
    count,
    expected_ids,
    settings_for,
    stored_ids,
)

DAYS_ALLOWED = 20


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    # ~480 matching videos on the day (six pages); four requests a day.
    return SandboxConfig(fault_seed=1, videos_per_day=1500, daily_quota=4)


def collect_day_after_day(sandbox, settings, policies=None):
    """Collect START each simulated day until done; (last result, videos stored after each day,
    Research API requests the sandbox answered within the quota)."""
    days, requests = [], 0
    for _ in range(DAYS_ALLOWED):
        result = collect_campaign(settings, CAMPAIGN, START, START, policies=policies)
        days.append(len(stored_ids(settings.resolved_database_url)))
        requests += sandbox.state.counters["research_requests"]
        if not result.quota_exhausted:
            break
        sandbox.state.reset_usage()  # midnight UTC: a new quota, every search id forgotten
    return result, days, requests


def window_rows(db_url):
    with session_scope(db_url) as session:
        return session.scalars(select(WindowRow)).all()


def pages_needed(expected) -> int:
    return -(-len(expected) // 100)


def assert_complete(db_url, result, days, expected) -> None:
    outcomes = [(w.window, w.status, w.note) for w in result.windows]
    assert result.state == "completed", (days, outcomes)
    assert len(days) > 1 and days[-1] > days[0], days  # later days brought the rest
    assert stored_ids(db_url) == expected
    assert count(db_url, Video) == count(db_url, CampaignVideo) == len(expected)
    statuses = {r.status.value for r in window_rows(db_url)}
    assert statuses <= {"done", "split"}, statuses


def test_a_day_bigger_than_the_quota_finishes_over_several_days(sandbox, db_url, settings_env):
    """Each new day's search leaves out what is stored: no page is fetched twice. (Before, every
    day split the window once more and its parts paged the stored videos again: 44 requests
    over 11 days for these 5 pages' worth of videos.)"""
    settings = settings_for(sandbox, db_url, daily_request_budget=10_000)
    expected = expected_ids(sandbox, START, START)
    assert len(expected) > 4 * 100  # more than one day's quota of pages
    result, days, requests = collect_day_after_day(sandbox, settings)
    assert_complete(db_url, result, days, expected)
    # The pages of the videos, the slots of invisible videos, one lost resume a day.
    assert requests <= pages_needed(expected) + 2 * len(days), (requests, days)
    assert len(days) == 2, days


def test_over_the_cap_of_left_out_ids_the_window_is_split(sandbox, db_url, settings_env):
    """More stored than a query may leave out: split by query, each part its own checkpoint and
    leaving out its own share of the stored videos."""
    settings = settings_for(sandbox, db_url, daily_request_budget=10_000)
    expected = expected_ids(sandbox, START, START)
    policies = CollectPolicies(max_excluded_ids=150)
    result, days, requests = collect_day_after_day(sandbox, settings, policies)
    assert_complete(db_url, result, days, expected)
    rows = window_rows(db_url)
    assert len({r.query_hash for r in rows}) == len(rows) > 1  # each part its own checkpoint
    assert requests <= 2 * pages_needed(expected) + 2 * len(days), (requests, days)
    assert len(days) <= 3, days  # a part a day at worst (before: 11 days)


def test_a_search_leaving_out_stored_videos_resumes_at_its_cursor(sandbox, db_url, settings_env):
    """The left-out ids are those stored before the search started, so a later process sends the
    same query with the saved search id and cursor (the API would call it another search)."""
    settings = settings_for(sandbox, db_url, daily_request_budget=10_000)
    expected = expected_ids(sandbox, START, START)
    assert collect_campaign(settings, CAMPAIGN, START, START).quota_exhausted
    sandbox.state.reset_usage()  # midnight: searches forgotten
    sandbox.state.update_config({"daily_quota": 2})  # the lost resume, one page of the restart
    assert collect_campaign(settings, CAMPAIGN, START, START).quota_exhausted
    (row,) = window_rows(db_url)
    assert row.search_id and row.cursor, "the restarted search stopped on its first page"
    searches, lost = sandbox.state.counters["searches"], sandbox.state.counters["bad_search_id"]
    sandbox.state.requests_by_day.clear()  # more quota the same day: the search id still lives
    sandbox.state.update_config({"daily_quota": 100})
    result = collect_campaign(settings, CAMPAIGN, START, START)
    assert result.state == "completed", [(w.status, w.note) for w in result.windows]
    assert sandbox.state.counters["bad_search_id"] == lost
    assert sandbox.state.counters["searches"] == searches  # resumed, not started again
    assert stored_ids(db_url) == expected
