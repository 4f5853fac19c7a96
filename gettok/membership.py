"""Which videos belong to a campaign: the one selector every stage's queries start from.

A video joins a campaign when a collection window finds it (`campaign_videos` rows); a video the
prune stage removed stays a member (exports list it as pruned) but no stage works on it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from gettok import db
from gettok.keyset import KeysetPages, id_bounds, in_id_ranges
from gettok.models.schema import Campaign, CampaignVideo, Video


def campaign_videos(
    campaign: str | int,
    *,
    with_pruned: bool = False,
    after: int | None = None,
    until: int | None = None,
) -> Select:
    """SELECT of the ids of the campaign's videos (by campaign name or row id), pruned ones left
    out unless `with_pruned`, ids in (after, until] only when given (a page's range: SQLite
    builds the whole list for each statement); use it as `X.video_id.in_(campaign_videos(name))`."""
    query = select(CampaignVideo.video_id)
    if after is not None or until is not None:  # a range of the membership key's index
        bounds = id_bounds(after, until, CampaignVideo.video_id)
        query = query.where(CampaignVideo.campaign_id == campaign_id(campaign), *bounds)
    elif isinstance(campaign, str):
        query = query.join(Campaign, Campaign.id == CampaignVideo.campaign_id).where(
            Campaign.name == campaign
        )
    else:
        query = query.where(CampaignVideo.campaign_id == campaign)
    if not with_pruned:
        query = query.join(Video, Video.id == CampaignVideo.video_id).where(
            Video.pruned_at.is_(None)
        )
    # Never borrow the outer query's `videos`: membership is decided inside this subquery alone.
    return query.correlate(None)


def range_end(
    session: Session, campaign: str | int | None, after: int | None, span: int
) -> int | None:
    """The id of the campaign's (by name or row id) `span`-th member past `after` (or its last
    member, if fewer are left); None when none is left. Every video when `campaign` is None.
    Read from the membership key's index: `span` index entries, whatever the campaign's size."""
    if campaign is None:
        ids = select(Video.id.label("video_id"))
        column = Video.id
    else:
        ids = select(CampaignVideo.video_id)
        ids = ids.where(CampaignVideo.campaign_id == campaign_id(campaign))
        column = CampaignVideo.video_id
    if after is not None:
        ids = ids.where(column > after)
    window = ids.order_by(column).limit(span).subquery()
    return session.scalar(select(func.max(window.c.video_id)))


def member_ranges(
    session: Session, campaign: str | int, span: int
) -> Iterator[tuple[int | None, int]]:
    """(after, until]: the campaign's member ids `span` at a time, in id order, for a pass over
    the whole campaign that reads each range with its own queries (`range_end` per range)."""
    after = None
    while (until := range_end(session, campaign, after, span)) is not None:
        yield after, until
        after = until


def member_pages(
    url: str,
    campaign: str | int | None,
    fetch: Callable[[int | None, int, int], list],
    size: int,
    limit: int | None = None,
    key: Callable[[Any], int] = lambda row: row,
) -> KeysetPages:
    """A stage's pending work, `size` rows at a time: `fetch(after, until, n)` asked for one
    range of the campaign's member ids at a time (`member_fetch`)."""
    return KeysetPages(member_fetch(url, campaign, fetch), size, limit, key=key)


def member_fetch(
    url: str, campaign: str | int | None, fetch: Callable[[int | None, int, int], list]
) -> Callable[[int | None, int], list]:
    """A page fetch for `KeysetPages`: `fetch(after, until, n)` asked for one range of the
    campaign's member ids at a time (`in_id_ranges`, ends from `range_end`)."""

    def end(after: int | None, span: int) -> int | None:
        with db.session_scope(url) as session:
            return range_end(session, campaign, after, span)

    return in_id_ranges(fetch, end)


def seen_range_end(
    session: Session, campaign: str, after: tuple[datetime, int] | None, span: int
) -> tuple[datetime, int] | None:
    """(first seen, id) of the campaign's `span`-th member past `after` in the order members
    were first seen (or its last one); None when none is left. Read from the index on
    (campaign, first seen, video): `span` entries, whatever the campaign's size."""
    seen, video = CampaignVideo.first_seen_at, CampaignVideo.video_id
    ids = select(seen.label("seen"), video.label("video_id"))
    ids = ids.where(CampaignVideo.campaign_id == campaign_id(campaign))
    if after is not None:
        ids = ids.where(tuple_(seen, video) > tuple_(*after))  # one range of the index
    window = ids.order_by(seen, video).limit(span).subquery()
    last = select(window.c.seen, window.c.video_id).order_by(
        window.c.seen.desc(), window.c.video_id.desc()
    )
    row = session.execute(last.limit(1)).first()
    return None if row is None else (row[0], row[1])


def campaign_id(campaign: str | int):
    """The campaign's row id, as a value the planner knows before it reads any member: joined
    by name instead, Postgres could not range-scan the (campaign, video) key and read every
    member of every campaign to find a page's range (90-160 ms a page at 500k)."""
    if isinstance(campaign, int):
        return campaign
    return select(Campaign.id).where(Campaign.name == campaign).scalar_subquery()
