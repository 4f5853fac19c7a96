"""Research API field names as the API spells them, and pages the API can never send: a documented
page with every current field (tests/fixtures/), served over HTTP, through the real client and the
real storage on Postgres and SQLite."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from gettok.clients.research_api import ResearchApiClient
from gettok.db import session_scope
from gettok.models.campaign import parse_campaign
from gettok.models.schema import CampaignVideo, EngagementSnapshot, RejectedRecord, Video
from gettok.settings import get_settings
from gettok.tasks.collect.paging import CollectContext, CollectPolicies, collect_window
from gettok.tasks.collect.store import save_campaign
from gettok.tasks.collect.windows import CollectionWindow
from tests.conftest import FIXTURES

ALL_FIELDS = json.loads(
    (FIXTURES / "tiktok-research-api" / "api_videos_response_all_fields.json").read_text()
)
DAY = date(2024, 1, 5)


class OnePageApi(BaseHTTPRequestHandler):
    """A token endpoint and one video query answer (`page`), whatever is asked."""

    page: dict = ALL_FIELDS
    fields: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/v2/oauth/token/"):
            answer = {"access_token": "clt.t", "expires_in": 7200, "token_type": "Bearer"}
            return self._send(answer)
        OnePageApi.fields = self.path.split("fields=", 1)[1].split("%2C")
        return self._send(self.page)

    def _send(self, answer: dict) -> None:
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve() -> Iterator:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OnePageApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def serving(page: dict) -> str:
        OnePageApi.page = page
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serving
    server.shutdown()
    server.server_close()


def collect_day(base_url: str, database_url: str):
    campaign = parse_campaign(
        {"name": "fields", "start_date": str(DAY), "query": {"hashtags": ["cats"]}}
    )
    settings = get_settings(
        database_url=database_url,
        tiktok_api_url=base_url,
        tiktok_client_key="k",
        tiktok_client_secret="s",
    )
    with session_scope(database_url) as session:
        campaign_id = save_campaign(session, campaign)
    with ResearchApiClient.from_settings(settings) as client:
        ctx = CollectContext(database_url, client, campaign, campaign_id, CollectPolicies())
        return collect_window(ctx, CollectionWindow(start=DAY, end=DAY))


def test_every_current_video_field_is_asked_for_and_stored(serve, db_url):
    outcome = collect_day(serve(ALL_FIELDS), db_url)
    assert outcome.status == "done" and outcome.new_videos == 2, outcome.note
    assert "favorites_count" in OnePageApi.fields and "favourites_count" not in OnePageApi.fields
    for name in ("sticker_info_list", "effect_info_list", "video_tag", "is_stem_verified"):
        assert name in OnePageApi.fields
    sent = ALL_FIELDS["data"]["videos"][0]
    with session_scope(db_url) as session:
        video = session.get(Video, sent["id"])
        assert video.favorites_count == 3
        assert video.sticker_info_list == sent["sticker_info_list"]
        assert video.effect_info_list == sent["effect_info_list"]
        assert video.video_tag == sent["video_tag"]
        assert video.video_label == sent["video_label"]
        assert video.hashtag_info_list == sent["hashtag_info_list"]
        assert video.is_stem_verified is False and video.video_duration == 14
        # A field the API adds later is kept, not rejected.
        assert video.extra_fields == {"some_future_field": {"added": "later"}}
        assert video.raw == sent
        counts = session.scalars(
            select(EngagementSnapshot.favorites_count).where(
                EngagementSnapshot.video_id == sent["id"]
            )
        ).all()
        assert counts == [3]
        assert session.get(Video, ALL_FIELDS["data"]["videos"][1]["id"]).favorites_count == 0


def test_a_record_in_the_old_spelling_still_fills_the_column(serve, sqlite_url):
    record = {"id": 7320768048418311455, "create_time": 1704499169, "favourites_count": 9}
    page = {**ALL_FIELDS, "data": {**ALL_FIELDS["data"], "videos": [record]}}
    collect_day(serve(page), sqlite_url)
    with session_scope(sqlite_url) as session:
        assert session.get(Video, record["id"]).favorites_count == 9


def test_a_page_of_more_than_100_records_is_refused_and_nothing_stored(serve, db_url):
    records = [{"id": 7320768048418311455 + i, "create_time": 1704499169} for i in range(101)]
    page = {**ALL_FIELDS, "data": {**ALL_FIELDS["data"], "videos": records}}
    outcome = collect_day(serve(page), db_url)
    assert outcome.status == "failed"
    assert "101 records, more than the API's 100" in outcome.note
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(Video)) == 0
        assert session.scalar(select(func.count()).select_from(CampaignVideo)) == 0


def test_a_negative_id_is_named_as_negative(serve, sqlite_url):
    records = [{"id": -7320768048418311455, "create_time": 1704499169}]
    page = {**ALL_FIELDS, "data": {**ALL_FIELDS["data"], "videos": records}}
    outcome = collect_day(serve(page), sqlite_url)
    assert outcome.invalid_videos == 1
    with session_scope(sqlite_url) as session:
        reason = session.scalars(select(RejectedRecord.reason)).one()
    assert "-7320768048418311455 is negative" in reason


def test_the_rename_migration_keeps_the_counts(db_url):
    from alembic import command
    from sqlalchemy import text

    from gettok import db

    command.downgrade(db.alembic_config(db_url), "0004")
    now = "2024-01-05 00:00:00"
    with db.get_engine(db_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO videos (id, favourites_count, raw, first_seen_at, last_seen_at) "
                "VALUES (7, 41, '{}', :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO engagement_snapshots (video_id, collected_at, favourites_count) "
                "VALUES (7, :now, 40)"
            ),
            {"now": now},
        )
    db.upgrade(db_url)
    with session_scope(db_url) as session:
        assert session.get(Video, 7).favorites_count == 41
        assert session.scalars(select(EngagementSnapshot.favorites_count)).one() == 40
