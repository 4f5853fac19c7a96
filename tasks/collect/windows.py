"""Collection windows: a campaign's date range cut into UTC day ranges the Research API can page.

A window is a range of whole UTC days, both ends inclusive (like the campaign's own dates and the
`collection_windows` table). Consecutive windows share no day and leave none out. How a window
becomes the request's `start_date`/`end_date` is decided in one place, `request_dates`, to match
the sandbox and the live API: `end_date` is read as inclusive (a one-day window asks for
start_date == end_date).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, model_validator

# The API rejects an end_date more than 30 days after start_date.
MAX_WINDOW_DAYS = 30
# The newest ~48 hours are not yet in the API's index: collecting them would store a partial day
# as done (see the API reference). Days that ended less than this long ago are deferred.
INDEX_LAG = timedelta(hours=48)


class CollectionWindow(BaseModel):
    """Whole UTC days from `start` to `end`, both inclusive; `part` names a slice of the query
    (see `parts.py`; "" is the whole query)."""

    model_config = ConfigDict(frozen=True)

    start: date
    end: date
    part: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> CollectionWindow:
        if self.end < self.start:
            raise ValueError(f"window end {self.end} is before its start {self.start}")
        if self.days > MAX_WINDOW_DAYS:
            raise ValueError(f"a window spans at most {MAX_WINDOW_DAYS} days, got {self.days}")
        return self

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def request_dates(self) -> tuple[str, str]:
        """`start_date` and `end_date` of the API request, YYYYMMDD, end inclusive."""
        return self.start.strftime("%Y%m%d"), self.end.strftime("%Y%m%d")

    def halves(self) -> list[CollectionWindow]:
        """Two windows covering exactly this one (for windows hit by persistent 500s)."""
        if self.days < 2:
            return [self]
        middle = self.start + timedelta(days=self.days // 2 - 1)
        return [
            CollectionWindow(start=self.start, end=middle, part=self.part),
            CollectionWindow(start=middle + timedelta(days=1), end=self.end, part=self.part),
        ]

    def __str__(self) -> str:
        dates = str(self.start) if self.days == 1 else f"{self.start}..{self.end}"
        return f"{dates} [{self.part}]" if self.part else dates


def collection_windows(start: date, end: date, window_days: int = 1) -> list[CollectionWindow]:
    """Cut `start`..`end` (inclusive) into consecutive windows of `window_days` days."""
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"window_days must be 1..{MAX_WINDOW_DAYS}, got {window_days}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    windows = []
    first = start
    while first <= end:
        last = min(first + timedelta(days=window_days - 1), end)
        windows.append(CollectionWindow(start=first, end=last))
        first = last + timedelta(days=1)
    return windows


def last_indexed_day(now: datetime | None = None) -> date:
    """The most recent UTC day that ended at least `INDEX_LAG` ago (the index holds it in full)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return (now - INDEX_LAG).date() - timedelta(days=1)


def next_utc_midnight(now: datetime | None = None) -> datetime:
    """When the Research API's daily quota resets."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
