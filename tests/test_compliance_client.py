"""Batch compliance client: the documented create answer over HTTP, and the sandbox's tasks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from gettok.clients.api_faults import RequestRejected
from gettok.clients.research_api import RequestLedger, ResearchApiClient
from gettok.clients.research_compliance import (
    CREATE_ENDPOINT,
    CREATE_PATH,
    MAX_TASK_IDS,
    ComplianceNotOffered,
    MalformedTaskStatus,
    create_task,
    parse_task_status,
    task_status,
)
from tests.conftest import FIXTURES

DOCUMENTED_CREATE = FIXTURES / "tiktok-research-api" / "api_validation_task_create_response.json"


class DocumentedApi(BaseHTTPRequestHandler):
    """A token, then the documented create answer for a well-formed multipart request."""

    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/v2/oauth/token/"):
            answer = {"access_token": "clt.doc", "expires_in": 7200, "token_type": "Bearer"}
            return self._send(200, json.dumps(answer).encode())
        self.seen.append({"type": self.headers.get("Content-Type", ""), "body": body.decode()})
        return self._send(200, DOCUMENTED_CREATE.read_bytes())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def documented_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), DocumentedApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    DocumentedApi.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def client_for(base_url: str, url: str, budget: int = 1000, key: str = "k", secret: str = "s"):
    return ResearchApiClient(
        base_url=base_url,
        client_key=SecretStr(key),
        client_secret=SecretStr(secret),
        fields=["id"],
        ledger=RequestLedger(url, budget),
    )


def sandbox_client(sandbox, url: str, budget: int = 1000) -> ResearchApiClient:
    cfg = sandbox.state.config
    return client_for(sandbox.base_url, url, budget, cfg.client_key, cfg.client_secret)


def test_the_documented_create_answer_gives_a_task_id_beyond_64_bits(documented_api, sqlite_url):
    ids = [7171965565856099370, 7171965565856099371]
    with client_for(documented_api, sqlite_url) as client:
        task_id = create_task(client, "video", ids)
    assert task_id == "12345678910987654321"  # as text: int64 cannot hold it
    sent = DocumentedApi.seen[0]
    assert sent["type"].startswith("multipart/form-data")  # the documented form data
    assert 'name="category"' in sent["body"] and 'name="file_data"' in sent["body"]
    assert "7171965565856099370\n7171965565856099371" in sent["body"]  # one id a line
    assert RequestLedger(sqlite_url, 1000).used() == 1


def test_more_than_ten_thousand_ids_are_refused_before_any_request(sandbox, sqlite_url):
    with sandbox_client(sandbox, sqlite_url) as client:
        with pytest.raises(ValueError, match="10000"):
            create_task(client, "video", list(range(1, MAX_TASK_IDS + 2)))
        # and the sandbox refuses them as the API would (sent through the client's one path)
        with pytest.raises(RequestRejected, match="at most 10000"):
            client.post(
                CREATE_PATH,
                CREATE_ENDPOINT,
                form={"category": "video"},
                files={"file_data": ("ids.txt", b"1\n" * (MAX_TASK_IDS + 1), "text/plain")},
            )
    assert RequestLedger(sqlite_url, 1000).used() == 1


def corpus_videos(corpus, states: set[str], n: int) -> list:
    found, day = [], date(2022, 12, 1)
    while len(found) < n:
        found += [v for v in corpus.videos_on(day) if v.web_state in states][: n - len(found)]
        day += timedelta(days=1)
    return found


def test_a_sandbox_task_is_processing_then_says_what_is_gone(sandbox, sqlite_url):
    sandbox.state.config.compliance.processing_polls = 1
    public = corpus_videos(sandbox.state.corpus, {"public", "slideshow"}, 3)
    gone = corpus_videos(sandbox.state.corpus, {"private", "removed"}, 2)
    sent = {v.id for v in public + gone}
    with sandbox_client(sandbox, sqlite_url) as client:
        task_id = create_task(client, "video", sorted(sent))
        first = task_status(client, task_id, sent)
        second = task_status(client, task_id, sent)
    assert int(task_id) > 2**63
    assert (first.state, first.available, first.unavailable) == ("processing", set(), set())
    assert second.state == "done"
    assert second.available == {v.id for v in public}
    assert second.unavailable == {v.id for v in gone}
    assert RequestLedger(sqlite_url, 1000).used() == 3  # every call spends the daily budget


def test_an_account_without_batch_compliance_is_told_so(sandbox, sqlite_url):
    sandbox.state.config.compliance.offered = False
    with sandbox_client(sandbox, sqlite_url) as client:
        with pytest.raises(ComplianceNotOffered):
            create_task(client, "comment", [1, 2, 3])


def test_a_status_naming_ids_never_sent_decides_nothing(sqlite_url):
    answer = {"data": {"status": "success", "valid_ids": [1], "invalid_ids": [2, 99]}}
    with pytest.raises(MalformedTaskStatus, match="1 ids we never sent"):
        parse_task_status("5", answer, {1, 2})
    done = parse_task_status("5", {"data": {"status": "success", "invalid_ids": [2]}}, {1, 2})
    assert (done.state, done.available, done.unavailable) == ("done", set(), {2})  # 1: undecided
    waiting = parse_task_status("5", {"data": {"status": "processing", "invalid_ids": [2]}}, {2})
    assert waiting.unavailable == set()  # nothing is read from an unfinished task
