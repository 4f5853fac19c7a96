"""The comment list and user info calls against the live API's recorded and documented bodies,
served over HTTP by a tiny local server that answers exactly what the live service answered."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from gettok.clients.research_api import RequestLedger, ResearchApiClient
from gettok.clients.research_comments import COMMENT_FIELDS, USER_FIELDS, list_comments, user_info
from gettok.db import session_scope
from gettok.models.schema import ApiRequest
from gettok.settings import get_settings
from tests.conftest import FIXTURES

RECORDED = FIXTURES / "tiktok-research-api"
COMMENTS = (RECORDED / "api_comments_response.json").read_bytes()
USER = (RECORDED / "api_user_info_response.json").read_bytes()
USER_ERRORS = json.loads((RECORDED / "api_user_info_errors.json").read_text())
VIDEO_ID = 7385291383449439519  # the video of the recorded comments


class RecordedApi(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if url.path == "/v2/oauth/token/":
            answer = {"access_token": "clt.recorded", "expires_in": 7200, "token_type": "Bearer"}
            return self._send(200, json.dumps(answer).encode())
        request = json.loads(body)
        fields = parse_qs(url.query).get("fields", [""])[0]
        self.seen.append({"path": url.path, "fields": fields, "body": request})
        if url.path == "/v2/research/video/comment/list/":
            return self._send(200, COMMENTS)
        errors = {e["username"]: e for e in USER_ERRORS.values()}
        if request["username"] in errors:
            error = errors[request["username"]]
            return self._send(error["status"], json.dumps(error["body"]).encode())
        return self._send(200, USER)

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def client(sqlite_url) -> Iterator[ResearchApiClient]:
    RecordedApi.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordedApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = get_settings(
        database_url=sqlite_url,
        tiktok_api_url=f"http://127.0.0.1:{server.server_address[1]}",
        tiktok_client_key="recorded-key",
        tiktok_client_secret="recorded-secret",
    )
    with ResearchApiClient.from_settings(settings) as api:
        yield api
    server.shutdown()


def ledger_rows(url: str) -> list[tuple]:
    with session_scope(url) as session:
        return session.execute(
            select(
                ApiRequest.endpoint,
                ApiRequest.status_code,
                ApiRequest.error_code,
                ApiRequest.videos,
            ).order_by(ApiRequest.id)
        ).all()


def test_the_recorded_comment_page_is_parsed_exactly(client, sqlite_url):
    page = list_comments(client, VIDEO_ID)

    recorded = json.loads(COMMENTS)["data"]
    assert page.raw == recorded["comments"]  # as sent, ids exact
    assert [(c.id, c.video_id, c.parent_comment_id, c.text, c.like_count, c.create_time)
            for c in page.comments] == [
        (r["id"], r["video_id"], r["parent_comment_id"], r["text"], r["like_count"],
         r["create_time"])
        for r in recorded["comments"]
    ]  # fmt: skip
    assert all(c.reply_count is None for c in page.comments)  # not in the recorded answer
    assert sum(1 for c in page.comments if c.text == "") == 3
    assert all(c.parent_comment_id == VIDEO_ID for c in page.comments)  # top-level
    assert (page.cursor, page.has_more, page.invalid) == (6, False, [])
    assert page.log_id == "20240707145106E052B2ED6E8D603B7BB0"

    (request,) = RecordedApi.seen
    assert request["fields"].split(",") == COMMENT_FIELDS
    assert request["body"] == {"video_id": VIDEO_ID, "max_count": 100, "cursor": 0}
    # The same ledger and budget as the video query: one counted request, six records.
    assert ledger_rows(sqlite_url) == [
        ("oauth/token", 200, None, 0),
        ("research/video/comment/list", 200, None, 6),
    ]
    assert RequestLedger(sqlite_url, 1000).used() == 1


def test_user_info_parses_the_documented_answer_and_names_users_it_will_not_describe(
    client, sqlite_url
):
    found = user_info(client, "joe123456")
    missing = user_info(client, USER_ERRORS["cannot_find"]["username"])
    refused = user_info(client, USER_ERRORS["cannot_return"]["username"])

    assert found.status == "ok" and found.raw == json.loads(USER)["data"]
    assert found.user.model_dump(exclude_none=True) == json.loads(USER)["data"]
    assert (missing.status, refused.status) == ("not_found", "refused")
    assert "cannot find the user" in missing.reason
    assert "cannot return this user's information" in refused.reason
    assert RecordedApi.seen[0]["fields"].split(",") == USER_FIELDS
    assert RecordedApi.seen[0]["body"] == {"username": "joe123456"}
    # Refusals are answers the API counts: three requests spent, two with their error.
    assert ledger_rows(sqlite_url)[1:] == [
        ("research/user/info", 200, None, 1),
        ("research/user/info", 400, "invalid_params", 0),
        ("research/user/info", 400, "invalid_params", 0),
    ]
    assert RequestLedger(sqlite_url, 1000).used() == 3


class RefusingApi(RecordedApi):
    """Refuses one video's comments (as the API words a bad parameter) and, for another, the
    field list itself."""

    def do_POST(self) -> None:  # noqa: N802
        if self.path.startswith("/v2/research/video/comment/list/"):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            message = {1: "Invalid parameters: video_id", 2: "Invalid fields: reply_count"}
            error = {"code": "invalid_params", "message": message[body["video_id"]]}
            return self._send(400, json.dumps({"data": {}, "error": error}).encode())
        return super().do_POST()


def test_a_refused_video_fails_alone_and_a_refused_field_list_stops_the_run(sqlite_url):
    from gettok.models.schema import CommentCheckpoint, Video
    from gettok.tasks.collect.policies import CollectPolicies
    from gettok.tasks.comments.paging import (
        CommentsAborted,
        CommentsContext,
        collect_video_comments,
    )

    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = get_settings(
        database_url=sqlite_url,
        tiktok_api_url=f"http://127.0.0.1:{server.server_address[1]}",
        tiktok_client_key="recorded-key",
        tiktok_client_secret="recorded-secret",
    )
    with session_scope(sqlite_url) as session:
        session.add_all([Video(id=1, raw={"id": 1}), Video(id=2, raw={"id": 2})])
    with ResearchApiClient.from_settings(settings) as api:
        ctx = CommentsContext(sqlite_url, api, CollectPolicies())
        alone = collect_video_comments(ctx, 1)
        with pytest.raises(CommentsAborted, match="Invalid fields"):
            collect_video_comments(ctx, 2)
    server.shutdown()

    assert (alone.status, alone.requests) == ("failed", 1)  # 400s are not retried
    with session_scope(sqlite_url) as session:
        first, second = session.get(CommentCheckpoint, 1), session.get(CommentCheckpoint, 2)
        assert "video_id" in first.last_error and first.requests == 1
        assert second.status.value == "failed" and "Invalid fields" in second.last_error
