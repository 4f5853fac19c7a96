"""Queries with more videos in play than Postgres allows bind parameters (65,535): watch's
unchecked frames and the enrich dry run must read them in bounded batches, never one IN list;
the export's last page reads that page of `videos`, not the campaign before it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text

from bench.scale_data import scale_campaign
from gettok import db
from gettok.membership import range_end
from gettok.models.schema import Campaign as CampaignRow
from gettok.models.schema import CampaignVideo, Frame, Video
from gettok.settings import get_settings
from gettok.tasks.annotate.cost import estimate_enrich
from gettok.tasks.collect import store as collect_store
from gettok.tasks.export.table import videos_query
from gettok.tasks.watch.store import unchecked_frames
from tests.enrich_rows import point_at_sandbox

MANY = 66_000  # past Postgres' 65,535 parameters in one statement
FIRST = 7_200_000_000_000_000_000
BATCH = 20_000


def _many_framed_videos(url: str) -> int:
    """MANY videos in one campaign, one frame each, inserted in bulk; returns the campaign id."""
    db.upgrade(url)
    campaign = scale_campaign()
    now = datetime(2024, 3, 2, tzinfo=UTC)
    with db.session_scope(url) as session:
        cid = collect_store.save_campaign(session, campaign)
    for start in range(0, MANY, BATCH):
        ids = range(FIRST + start, FIRST + min(MANY, start + BATCH))
        with db.session_scope(url) as session:
            session.execute(
                insert(Video),
                [
                    {"id": i, "raw": {"id": i}, "first_seen_at": now, "last_seen_at": now}
                    for i in ids
                ],
            )
            session.execute(
                insert(CampaignVideo),
                [{"campaign_id": cid, "video_id": i, "first_seen_at": now} for i in ids],
            )
            session.execute(
                insert(Frame),
                [
                    {
                        "video_id": i,
                        "frame_index": 0,
                        "path": f"f/{i}.jpg",
                        "width": 9,
                        "height": 16,
                    }
                    for i in ids
                ],
            )
    return cid


@pytest.fixture
def many_url(db_url):
    _many_framed_videos(db_url)
    return db_url


def _rows_read(plan: dict, table: str) -> int:
    """Rows the plan's scans of `table` returned, over all their loops."""
    own = plan["Actual Rows"] * plan["Actual Loops"] if plan.get("Relation Name") == table else 0
    return own + sum(_rows_read(child, table) for child in plan.get("Plans", []))


def test_the_exports_last_page_reads_only_that_page_of_videos(pg_url):
    cid = _many_framed_videos(pg_url)
    page = 1_000
    with db.session_scope(pg_url) as session:
        session.execute(text("ANALYZE"))  # the statistics autovacuum gives a live database
        after = FIRST + MANY - page - 1
        until = range_end(session, cid, after, page)
        query = videos_query(cid, after, until, with_raw=True)
        sql = query.compile(session.bind, compile_kwargs={"literal_binds": True})
        (plan,) = session.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar()
    read = _rows_read(plan["Plan"], "videos")
    assert read <= 2 * page, f"read {read} rows of videos for a page of {page}"


def test_watch_lists_the_unchecked_frames_of_more_than_65535_videos(many_url):
    with db.session_scope(many_url) as session:
        cid = session.scalar(select(CampaignRow.id))
    frames = dict(unchecked_frames(many_url, cid, "opencv-orb", "a-target"))
    assert len(frames) == MANY
    assert all(len(stored) == 1 for stored in frames.values())
    assert frames[FIRST + MANY - 1][0].path == f"f/{FIRST + MANY - 1}.jpg"


def test_dry_run_estimates_more_than_65535_pending_videos(
    many_url, sandbox_env, monkeypatch, tmp_path
):
    point_at_sandbox(monkeypatch, many_url, tmp_path / "media")
    estimate = estimate_enrich(many_url, get_settings(), scale_campaign(), ["description"])
    assert [(k.kind, k.videos) for k in estimate.kinds] == [("description", MANY)]
    assert estimate.total_usd > 0
