"""A search started again leaves out the videos already stored, so no stored page is fetched twice.

A search id does not outlive the day's quota: a window stopped for the quota restarts from cursor
0 the next day (and a split part starts from 0 by itself). Paged again as it is, the new search
would spend the new day on the pages already stored. So every search that starts from cursor 0
asks the API to leave out (`not: video_id IN [...]`) the campaign's videos of the window's days
that were stored before the search started; only what is missing is paged.

"Stored before the search started" (the window row's `started_at`) keeps the list the same on
every page of one search, as the API wants the same query with its search id, also when a later
process resumes the search at its saved cursor. The list is capped (`max_excluded_ids`): beyond
it the window is split by query instead (`parts.py`), each part leaving out its own share.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import or_, select

from gettok.db import session_scope
from gettok.models.schema import CampaignVideo, Video
from gettok.tasks.collect.parts import LENGTH_SECONDS, Query, part_length
from gettok.tasks.collect.windows import CollectionWindow


@dataclass(frozen=True)
class LeftOut:
    """The stored videos a search leaves out; `complete`: all of them (none over the cap)."""

    ids: list[int]
    complete: bool


def _epoch(day, days_after: int = 0) -> int:
    return int(datetime.combine(day + timedelta(days=days_after), time(), UTC).timestamp())


def stored_to_leave_out(
    database_url: str,
    campaign_id: int,
    window: CollectionWindow,
    before: datetime,
    limit: int,
) -> LeftOut:
    """The campaign's videos created on the window's days (of the part's length bucket, give or
    take a second, or of unknown length) first stored before `before`, lowest ids first."""
    if limit <= 0:
        return LeftOut([], False)
    stmt = (
        select(CampaignVideo.video_id)
        .join(Video, Video.id == CampaignVideo.video_id)
        .where(
            CampaignVideo.campaign_id == campaign_id,
            CampaignVideo.first_seen_at < before,
            Video.create_time >= _epoch(window.start),
            Video.create_time < _epoch(window.end, 1),
        )
        .order_by(CampaignVideo.video_id)
        .limit(limit + 1)
    )
    length = part_length(window.part)
    if length:
        low, high = LENGTH_SECONDS[length]
        stmt = stmt.where(
            or_(
                Video.video_duration.is_(None),
                Video.video_duration.between(low - 1, high + 1),
            )
        )
    with session_scope(database_url) as session:
        ids = list(session.scalars(stmt))
    return LeftOut(ids[:limit], len(ids) <= limit)


def leaving_out(query: Query, ids: list[int]) -> Query:
    """`query` with the stored ids left out (ids as strings: they exceed 2^53)."""
    if not ids:
        return query
    out = copy.deepcopy(query)
    condition = {"operation": "IN", "field_name": "video_id", "field_values": [str(i) for i in ids]}
    out["not"] = [*out.get("not", []), condition]
    return out
