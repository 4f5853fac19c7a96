"""The client and the storage against the live API's recorded pages (tests/fixtures/), served
over HTTP by a tiny local server that answers exactly what the live service answered."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import func, select

from gettok.clients.research_api import RequestLedger, ResearchApiClient
from gettok.db import session_scope
from gettok.models.campaign import parse_campaign
from gettok.models.schema import ApiRequest, CampaignVideo, EngagementSnapshot, Video
from gettok.models.schema import CollectionWindow as WindowRow
from gettok.settings import DEFAULT_VIDEO_FIELDS, get_settings
from gettok.tasks.collect.paging import CollectContext, CollectPolicies, collect_window
from gettok.tasks.collect.store import save_campaign
from gettok.tasks.collect.windows import CollectionWindow
from tests.conftest import FIXTURES

RECORDED = FIXTURES / "tiktok-research-api"
PAGE_1 = (RECORDED / "api_videos_response_page_1_of_2.json").read_bytes()
PAGE_2 = (RECORDED / "api_videos_response_page_2_of_2.json").read_bytes()
SEARCH_ID = json.loads(PAGE_1)["data"]["search_id"]
TOKEN = "clt.recorded"


class RecordedApi(BaseHTTPRequestHandler):
    """Token endpoint plus the two recorded pages of one search, keyed by cursor and search_id."""

    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if url.path == "/v2/oauth/token/":
            form = parse_qs(body.decode())
            ok = form.get("grant_type") == ["client_credentials"] and form.get("client_key")
            answer = {"access_token": TOKEN, "expires_in": 7200, "token_type": "Bearer"}
            return self._send(200 if ok else 400, json.dumps(answer).encode())
        request = json.loads(body)
        self.seen.append(
            {
                "fields": parse_qs(url.query).get("fields", [""])[0],
                "auth": self.headers.get("Authorization"),
                "body": request,
            }
        )
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, b'{"data":{},"error":{"code":"access_token_invalid"}}')
        if request.get("cursor", 0) == 0 and "search_id" not in request:
            return self._send(200, PAGE_1)
        if request.get("cursor") == 100 and request.get("search_id") == SEARCH_ID:
            return self._send(200, PAGE_2)
        return self._send(400, b'{"data":{},"error":{"code":"invalid_params","message":"?"}}')

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorded_api() -> Iterator[str]:
    RecordedApi.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordedApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def campaign():
    return parse_campaign(
        {
            "name": "recorded_cats",
            "start_date": "2024-01-05",
            "end_date": "2024-01-05",
            "query": {"region_codes": ["US"], "hashtags": ["cats", "cat"]},
        }
    )


def client_for(base_url: str, database_url: str) -> ResearchApiClient:
    settings = get_settings(
        database_url=database_url,
        tiktok_api_url=base_url,
        tiktok_client_key="recorded-key",
        tiktok_client_secret="recorded-secret",
    )
    return ResearchApiClient.from_settings(settings)


def test_client_pages_the_recorded_search(recorded_api, sqlite_url, campaign):
    with client_for(recorded_api, sqlite_url) as client:
        body = campaign.api_request_body(date(2024, 1, 5), date(2024, 1, 5))
        first = client.query_videos(body)
        second = client.query_videos(body, cursor=first.cursor, search_id=first.search_id)

    recorded_ids = [v["id"] for v in json.loads(PAGE_1)["data"]["videos"]]
    assert [v.id for v in first.videos] == recorded_ids  # ints above 2^53, exact
    assert min(recorded_ids) > 2**53
    assert (first.cursor, first.has_more, first.search_id) == (100, True, SEARCH_ID)
    assert first.raw[0]["id"] == recorded_ids[0]
    assert (second.cursor, second.has_more) == (200, False)
    # The recorded page 2 has an id beyond BIGINT: that one record is reported, the rest kept.
    assert len(second.videos) == 26 and len(second.invalid) == 1
    assert "73207681965695992750" in second.invalid[0]

    first_request, second_request = RecordedApi.seen
    assert first_request["fields"].split(",") == DEFAULT_VIDEO_FIELDS
    assert first_request["auth"] == f"Bearer {TOKEN}"
    assert first_request["body"]["start_date"] == first_request["body"]["end_date"] == "20240105"
    assert first_request["body"]["max_count"] == 100
    assert "cursor" not in first_request["body"]
    assert (second_request["body"]["cursor"], second_request["body"]["search_id"]) == (
        100,
        SEARCH_ID,
    )

    with session_scope(sqlite_url) as session:
        ledger = session.execute(
            select(ApiRequest.endpoint, ApiRequest.status_code, ApiRequest.videos).order_by(
                ApiRequest.id
            )
        ).all()
    assert ledger == [
        ("oauth/token", 200, 0),
        ("research/video/query", 200, 27),
        ("research/video/query", 200, 26),
    ]
    assert RequestLedger(sqlite_url, 1000).used() == 2  # the token request is not counted


def test_recorded_window_is_stored_once_and_not_fetched_again(recorded_api, db_url, campaign):
    with session_scope(db_url) as session:
        campaign_id = save_campaign(session, campaign)
    window = CollectionWindow(start=date(2024, 1, 5), end=date(2024, 1, 5))
    policies = CollectPolicies()
    with client_for(recorded_api, db_url) as client:
        ctx = CollectContext(db_url, client, campaign, campaign_id, policies)
        outcome = collect_window(ctx, window)
        again = collect_window(ctx, window)

    page_1 = json.loads(PAGE_1)["data"]["videos"]
    assert outcome.status == "done"
    assert (outcome.pages, outcome.requests, outcome.invalid_videos) == (2, 2, 1)
    # Page 2 repeats 26 videos of page 1: each video stored and sighted once.
    assert outcome.videos == outcome.new_videos == len({v["id"] for v in page_1}) == 27
    assert again.status == "skipped" and again.requests == 0
    assert len(RecordedApi.seen) == 2

    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(Video)) == 27
        assert session.scalar(select(func.count()).select_from(EngagementSnapshot)) == 27
        assert session.scalar(select(func.count()).select_from(CampaignVideo)) == 27
        row = session.scalars(select(WindowRow)).one()
        assert (row.status.value, row.pages, row.videos, row.requests) == ("done", 2, 27, 2)
        assert row.last_error.startswith("1 invalid record(s) skipped: video 73207681965695992750")
        assert (row.cursor, row.search_id) == (200, SEARCH_ID)
        stored = session.get(Video, page_1[0]["id"])
        assert stored.raw == page_1[0]  # the payload as sent, big ints intact
        assert stored.username == page_1[0]["username"]
        assert stored.hashtag_names == page_1[0]["hashtag_names"]
        assert stored.created_at.timestamp() == page_1[0]["create_time"]
        assert stored.first_seen_at <= stored.last_seen_at


def test_a_field_list_without_ids_is_refused_before_any_request(recorded_api, sqlite_url):
    # Refused when the settings are read, so neither the CLI nor a worker gets as far as a request.
    with pytest.raises(ValueError, match="must include 'id'"):
        settings = get_settings(
            database_url=sqlite_url,
            tiktok_api_url=recorded_api,
            tiktok_client_key="k",
            tiktok_client_secret="s",
            tiktok_video_fields=["video_description", "create_time"],
        )
        ResearchApiClient.from_settings(settings)
    assert RecordedApi.seen == []
