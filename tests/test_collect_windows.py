"""Collection windows: every UTC day of a range in exactly one window, requests end-inclusive."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from gettok.tasks.collect.windows import (
    MAX_WINDOW_DAYS,
    CollectionWindow,
    collection_windows,
    last_indexed_day,
    next_utc_midnight,
)


def covered_days(windows: list[CollectionWindow]) -> list[date]:
    return [day for w in windows for day in w.each_day()]


@pytest.mark.parametrize("window_days", [1, 2, 3, 7, 30])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2022, 11, 20), date(2023, 3, 1)),  # the Peru study, across a year end
        (date(2024, 2, 27), date(2024, 3, 2)),  # across a leap day
        (date(2023, 12, 31), date(2023, 12, 31)),  # a single day
    ],
)
def test_windows_cover_each_day_exactly_once(start, end, window_days):
    windows = collection_windows(start, end, window_days)
    days = covered_days(windows)
    expected = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    assert days == expected  # ordered, no gap, no repeat
    assert all(w.days <= window_days for w in windows)
    assert all(w.days == window_days for w in windows[:-1])
    for before, after in zip(windows, windows[1:], strict=False):
        assert after.start == before.end + timedelta(days=1)


def test_request_dates_are_end_inclusive_like_the_sandbox():
    # The sandbox (gettok/sandbox/research_api.py) reads end_date as inclusive.
    assert CollectionWindow(start=date(2022, 12, 7), end=date(2022, 12, 7)).request_dates() == (
        "20221207",
        "20221207",
    )
    week = collection_windows(date(2022, 12, 1), date(2022, 12, 14), 7)
    assert [w.request_dates() for w in week] == [
        ("20221201", "20221207"),
        ("20221208", "20221214"),
    ]


def test_window_limits():
    with pytest.raises(ValueError, match="window_days"):
        collection_windows(date(2022, 1, 1), date(2022, 3, 1), MAX_WINDOW_DAYS + 1)
    with pytest.raises(ValueError, match="before"):
        collection_windows(date(2022, 1, 2), date(2022, 1, 1))
    with pytest.raises(ValueError, match="at most"):
        CollectionWindow(start=date(2022, 1, 1), end=date(2022, 1, 31))  # 31 days
    month = CollectionWindow(start=date(2022, 1, 1), end=date(2022, 1, 30))
    start, end = month.request_dates()
    # The API's 30-day rule: end at most 30 days after start.
    assert (datetime.strptime(end, "%Y%m%d") - datetime.strptime(start, "%Y%m%d")).days <= 30


@pytest.mark.parametrize("days", [2, 3, 7, 30])
def test_halves_split_a_window_without_gap_or_overlap(days):
    window = CollectionWindow(
        start=date(2022, 12, 30), end=date(2022, 12, 30) + timedelta(days - 1)
    )
    halves = window.halves()
    assert len(halves) == 2
    assert covered_days(halves) == window.each_day()
    assert CollectionWindow(start=date(2022, 1, 1), end=date(2022, 1, 1)).halves() == [
        CollectionWindow(start=date(2022, 1, 1), end=date(2022, 1, 1))
    ]


def test_index_lag_and_quota_reset_are_utc():
    now = datetime(2024, 3, 5, 10, 30, tzinfo=UTC)
    # 48 h before is 2024-03-03 10:30, so 2024-03-02 is the last day that ended 48 h ago.
    assert last_indexed_day(now) == date(2024, 3, 2)
    assert next_utc_midnight(now) == datetime(2024, 3, 6, tzinfo=UTC)
    # 20:00 in Lima is already 01:00 UTC the next day.
    evening_in_lima = datetime(2024, 3, 5, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert next_utc_midnight(evening_in_lima) == datetime(2024, 3, 7, tzinfo=UTC)
    assert last_indexed_day(evening_in_lima) == date(2024, 3, 3)


def test_a_range_reaching_into_the_index_lag_is_deferred_not_collected_partially():
    from gettok.models.campaign import parse_campaign
    from gettok.tasks.collect import plan_range

    today = datetime.now(UTC).date()
    ongoing = parse_campaign(
        {
            "name": "ongoing",
            "start_date": str(today - timedelta(days=10)),
            "query": {"keywords": ["x"]},
        }
    )
    start, end, deferred = plan_range(ongoing, None, None)
    assert (start, end, deferred) == (today - timedelta(days=10), last_indexed_day(), None)
    start, end, deferred = plan_range(ongoing, None, today)
    assert end == deferred == last_indexed_day() < today - timedelta(days=1)
    # A range entirely inside the lag has nothing to collect yet.
    assert plan_range(ongoing, today - timedelta(days=1), today)[1] is None


def test_days_not_yet_indexed_are_named_in_the_run_summary(settings_env):
    from gettok.models.campaign import parse_campaign
    from gettok.settings import get_settings
    from gettok.tasks.collect import collect_campaign, last_indexed_day

    today = last_indexed_day() + timedelta(days=3)
    campaign = parse_campaign(
        {"name": "lagging", "start_date": str(today), "query": {"hashtags": ["peru"]}}
    )
    result = collect_campaign(get_settings(), campaign, today, today)
    assert result.end is None and result.deferred_after == last_indexed_day()
    (note,) = result.stage_result().notes
    assert f"days after {last_indexed_day()} not yet indexed" in note
