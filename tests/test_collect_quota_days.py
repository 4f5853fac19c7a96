"""A day whose videos need more than one day's quota: collected over several days, each video once.

The sandbox forgets its searches at each simulated midnight (as the live API's search ids do not
outlive the day), so resuming at the saved cursor fails and the window must be split by query.
"""

from __future__ import annotations

import pytest
from gettok.models.schema import CampaignVideo, Video
from gettok.models.schema import CollectionWindow as WindowRow
from gettok.tasks.collect import collect_campaign
from sqlalchemy import select

from gettok.db import session_scope
from gettok.sandbox.config import SandboxConfig
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


def test_a_day_bigger_than_the_quota_finishes_over_several_days(sandbox, db_url, settings_env):
    settings = settings_for(sandbox, db_url, daily_request_budget=10_000)
    expected = expected_ids(sandbox, START, START)
    assert len(expected) > 4 * 100  # more than one day's quota of pages
    days = []
    for _ in range(DAYS_ALLOWED):
        result = collect_campaign(settings, CAMPAIGN, START, START)
        days.append(len(stored_ids(db_url)))
        if not result.quota_exhausted:
            break
        sandbox.state.reset_usage()  # midnight UTC: a new quota, every search id forgotten
    outcomes = [(w.window, w.status, w.note) for w in result.windows]
    assert result.state == "completed", (days, outcomes)
    assert len(days) > 1 and days[-1] > days[0], days  # later days brought the rest
    assert stored_ids(db_url) == expected
    assert count(db_url, Video) == count(db_url, CampaignVideo) == len(expected)
    with session_scope(db_url) as session:
        rows = session.scalars(select(WindowRow)).all()
    statuses = {r.status.value for r in rows}
    assert statuses <= {"done", "split"}, statuses
    assert len({r.query_hash for r in rows}) == len(rows) > 1  # each part its own checkpoint
