"""The sandbox Research API over HTTP, checked against the corpus' own ground truth.

Ground truth is computed here from `Corpus.videos_on` with a predicate written independently
of the server's query compiler.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.corpus import Corpus, CorpusVideo
from gettok.sandbox.server import RunningSandbox, running_sandbox

FIELDS = "id,create_time,username,region_code,video_description,hashtag_names,music_id"
PERU_QUERY = {
    "and": [{"operation": "IN", "field_name": "region_code", "field_values": ["PE"]}],
    "or": [
        {"operation": "IN", "field_name": "keyword", "field_values": ["Castillo", "boluarte"]},
        {"operation": "IN", "field_name": "hashtag_name", "field_values": ["GOLPEDEESTADO"]},
    ],
}


def in_peru_query(v: CorpusVideo) -> bool:
    text = v.description.lower()
    tags = {h.lower() for h in v.hashtags}
    return v.region_code == "PE" and (
        "castillo" in text or "boluarte" in text or "golpedeestado" in tags
    )


def truth(config: SandboxConfig, start: date, end: date, predicate) -> list[int]:
    corpus, out, day = Corpus(config), [], start
    while day <= end:
        out += [v.id for v in corpus.videos_on(day) if v.api_visible and predicate(v)]
        day += timedelta(days=1)
    return out


class Api:
    """A minimal client for the tests: a token, one request, and a crawl with retries."""

    def __init__(self, sandbox: RunningSandbox):
        self.base = sandbox.base_url
        self.state = sandbox.state
        self.http = httpx.Client(base_url=self.base, timeout=10)
        self.token = self.new_token()

    def new_token(self) -> str:
        cfg = self.state.config
        r = self.http.post(
            "/v2/oauth/token/",
            data={
                "client_key": cfg.client_key,
                "client_secret": cfg.client_secret,
                "grant_type": "client_credentials",
            },
        )
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def query(self, body: dict, fields: str = FIELDS, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return self.http.post(
            f"/v2/research/video/query/?fields={fields}", json=body, headers=headers
        )

    def crawl(self, query: dict, start: str, end: str, max_count: int = 100) -> dict:
        """Page through a search as a correct client would: retry, re-request, dedupe."""
        body = {"query": query, "start_date": start, "end_date": end, "max_count": max_count}
        ids: list[int] = []
        pages, retries = [], 0
        cursor, search_id = 0, None
        while True:
            request = dict(body, cursor=cursor) | ({"search_id": search_id} if search_id else {})
            r = self.query(request)
            if r.status_code != 200:
                retries += 1
                assert retries < 200, r.text
                assert r.status_code in (400, 429, 500), r.text
                continue
            data = r.json()["data"]
            pages.append(data)
            ids += [v["id"] for v in data["videos"] if v["id"] not in set(ids)]
            search_id = data["search_id"]
            if not data["has_more"]:
                return {"ids": ids, "pages": pages, "retries": retries}
            cursor = data["cursor"]


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(videos_per_day=300, fault_seed=7, daily_quota=1000)


@pytest.fixture
def sandbox(sandbox_config) -> Iterator[RunningSandbox]:
    with running_sandbox(sandbox_config) as running:
        yield running


@pytest.fixture
def api(sandbox) -> Iterator[Api]:
    client = Api(sandbox)
    yield client
    client.http.close()


# ---- token ----------------------------------------------------------------------------------


def test_token_answers_like_the_live_service(api: Api):
    cfg = api.state.config
    good = {"client_key": cfg.client_key, "client_secret": cfg.client_secret}
    r = api.http.post("/v2/oauth/token/", data=good | {"grant_type": "client_credentials"})
    assert r.json()["token_type"] == "Bearer" and r.json()["expires_in"] == cfg.token_ttl_s
    assert r.json()["access_token"].startswith("clt.")

    wrong = api.http.post(
        "/v2/oauth/token/",
        data=good | {"client_secret": "nope", "grant_type": "client_credentials"},
    )
    assert wrong.status_code == 401
    assert set(wrong.json()) == {"error", "error_description", "log_id"}  # flat, not nested
    no_grant = api.http.post("/v2/oauth/token/", data=good)
    assert no_grant.status_code == 400 and no_grant.json()["error"] == "invalid_request"


def test_expired_or_unknown_token_is_401_access_token_invalid(api: Api):
    body = {"query": PERU_QUERY, "start_date": "20221207", "end_date": "20221207"}
    assert api.query(body).status_code == 200
    assert api.query(body, token="clt.unknown").json()["error"]["code"] == "access_token_invalid"
    later = datetime.now(UTC) + timedelta(seconds=api.state.config.token_ttl_s + 1)
    api.state.clock = lambda: later
    r = api.query(body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "access_token_invalid"
    assert api.query(body, token=api.new_token()).status_code == 200
    no_header = api.http.post(f"/v2/research/video/query/?fields={FIELDS}", json=body)
    assert no_header.status_code == 401


# ---- paging and filtering -----------------------------------------------------------------


def test_paging_returns_exactly_the_matching_set_in_short_pages(api: Api, sandbox_config):
    expected = truth(sandbox_config, date(2022, 12, 7), date(2022, 12, 8), in_peru_query)
    assert len(expected) > 150  # several pages
    result = api.crawl(PERU_QUERY, "20221207", "20221208")
    assert result["ids"] == expected  # creation order, nothing missing, nothing extra
    pages = result["pages"]
    assert len({p["search_id"] for p in pages}) == 1
    assert [p["has_more"] for p in pages] == [True] * (len(pages) - 1) + [False]
    # Invisible slots: the cursor advances by max_count while the page holds fewer videos.
    assert pages[0]["cursor"] == 100 and len(pages[0]["videos"]) < 100
    assert all(v["id"] > 2**53 for p in pages for v in p["videos"])


def test_ids_stay_exact_integers_in_the_raw_json(api: Api):
    r = api.query({"query": PERU_QUERY, "start_date": "20221207", "end_date": "20221207"})
    raw_ids = [v["id"] for v in json.loads(r.content)["data"]["videos"]]
    assert raw_ids and all(isinstance(i, int) and i > 2**53 for i in raw_ids)
    assert b'"id":' + str(raw_ids[0]).encode() in r.content.replace(b" ", b"")


def _cond(op, field, *values):
    return {"operation": op, "field_name": field, "field_values": [str(v) for v in values]}


FILTERS = {
    "not": (
        {
            "or": [_cond("IN", "hashtag_name", "fyp", "parati")],
            "not": [_cond("IN", "keyword", "castillo")],
        },
        lambda v: (
            bool({"fyp", "parati"} & set(v.hashtags)) and "castillo" not in v.description.lower()
        ),
    ),
    "video_length": (
        {"and": [_cond("IN", "video_length", "MID")]},
        lambda v: 15 <= v.duration_s < 60,
    ),
    "region_in": (
        {"and": [_cond("IN", "region_code", "ec", "CO")]},
        lambda v: v.region_code in ("EC", "CO"),
    ),
    "keyword_phrase": (
        {"or": [_cond("IN", "keyword", "Pedro Castillo", "castillo de arena")]},
        lambda v: (
            "pedro castillo" in v.description.lower()
            or "castillo de arena" in v.description.lower()
        ),
    ),
    "create_date_range": (
        {"and": [_cond("GTE", "create_date", "20221208"), _cond("LT", "create_date", "20221209")]},
        lambda v: v.created_at.date() == date(2022, 12, 8),
    ),
    "english_words": (
        {"or": [_cond("IN", "keyword", "Congress", "protesters")]},
        lambda v: "congress" in v.description.lower() or "protesters" in v.description.lower(),
    ),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filters_match_the_corpus_ground_truth(api: Api, sandbox_config, name):
    query, predicate = FILTERS[name]
    expected = truth(sandbox_config, date(2022, 12, 7), date(2022, 12, 9), predicate)
    assert expected, "the filter must select something to be a test"
    assert api.crawl(query, "20221207", "20221209")["ids"] == expected


def test_username_music_and_video_id_filters(api: Api, sandbox_config):
    day = Corpus(sandbox_config).videos_on(date(2022, 12, 7))
    some = [v for v in day if v.api_visible][:3]
    by_id = api.crawl(
        {"and": [_cond("IN", "video_id", *(v.id for v in some))]}, "20221207", "20221207"
    )
    assert by_id["ids"] == [v.id for v in some]
    user = some[0].username
    by_user = api.crawl({"and": [_cond("EQ", "username", user)]}, "20221207", "20221207")
    assert by_user["ids"] == [v.id for v in day if v.api_visible and v.username == user]
    music = some[1].music_id
    by_music = api.crawl({"and": [_cond("IN", "music_id", music)]}, "20221207", "20221207")
    assert by_music["ids"] == [v.id for v in day if v.api_visible and v.music_id == music]


def test_end_date_is_inclusive_and_one_day_windows_partition_a_range(api: Api):
    whole = api.crawl(PERU_QUERY, "20221207", "20221209")["ids"]
    days = [api.crawl(PERU_QUERY, d, d)["ids"] for d in ("20221207", "20221208", "20221209")]
    assert sum(days, []) == whole
    assert all(days) and len(set(whole)) == len(whole)
    assert all(datetime.fromtimestamp(i >> 32, UTC).date() == date(2022, 12, 8) for i in days[1])


def test_thirty_day_rule_and_date_validation(api: Api):
    def status(start, end):
        r = api.query({"query": PERU_QUERY, "start_date": start, "end_date": end})
        return r.status_code, r.json()["error"]["code"]

    assert status("20240101", "20240131") == (200, "ok")
    assert status("20240101", "20240201") == (400, "invalid_params")
    assert status("20240105", "20240101") == (400, "invalid_params")
    assert status("2024-01-01", "20240102") == (400, "invalid_params")


def test_fields_are_validated_and_selected(api: Api):
    body = {"query": PERU_QUERY, "start_date": "20221207", "end_date": "20221207"}
    r = api.query(body, fields="id,username")
    assert r.status_code == 200
    # ... and the mark that keeps synthetic records from passing as TikTok's.
    assert {k for v in r.json()["data"]["videos"] for k in v} == {
        "id",
        "username",
        "gettok_sandbox",
    }
    bad = api.query(body, fields="id,colour")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_params"
    assert "colour" in bad.json()["error"]["message"]
    # The spelling one version of the spec page used is not a field; the API's own is served.
    assert api.query(body, fields="id,favourites_count").status_code == 400
    served = api.query(body, fields="id,favorites_count").json()["data"]["videos"]
    assert served and all("favorites_count" in v for v in served)
    assert api.query(body, fields="").status_code == 400


def test_max_count_cursor_and_search_id_are_checked(api: Api):
    body = {"query": PERU_QUERY, "start_date": "20221207", "end_date": "20221208"}
    assert api.query(body | {"max_count": 101}).status_code == 400
    first = api.query(body | {"max_count": 100}).json()["data"]
    assert api.query(body | {"cursor": 10**6, "search_id": first["search_id"]}).status_code == 400
    other = api.query(body | {"end_date": "20221209"}).json()["data"]
    # A search id belongs to its own query and dates.
    wrong = api.query(body | {"cursor": 100, "search_id": other["search_id"]})
    assert wrong.status_code == 400 and "is invalid or expired" in wrong.json()["error"]["message"]
    unknown = api.query(body | {"cursor": 100, "search_id": "123"})
    assert unknown.json()["error"]["message"] == "Search Id 123 is invalid or expired"
    assert api.query(body | {"cursor": 100, "search_id": first["search_id"]}).status_code == 200


def test_newest_two_days_are_not_indexed_yet(api: Api, sandbox_config):
    today = datetime.now(UTC).date()
    start, end = (today - timedelta(days=3)).strftime("%Y%m%d"), today.strftime("%Y%m%d")
    query = {"and": [_cond("GTE", "create_date", "20160101")]}
    ids = api.crawl(query, start, end)["ids"]
    cutoff = datetime.now(UTC).timestamp() - sandbox_config.index_lag_hours * 3600
    assert ids and max(i >> 32 for i in ids) <= cutoff
    assert min(i >> 32 for i in ids) < cutoff - 24 * 3600


# ---- quota ----------------------------------------------------------------------------------


def test_daily_quota_counts_500s_and_resets_at_midnight_utc(api: Api):
    api.state.update_config({"daily_quota": 3, "api": {"error_500": 1.0}})
    body = {"query": PERU_QUERY, "start_date": "20221207", "end_date": "20221207"}
    assert [api.query(body).status_code for _ in range(3)] == [500, 500, 500]
    api.state.update_config({"api": {"error_500": 0.0}})
    r = api.query(body)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
    assert "daily quota" in r.json()["error"]["message"]
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    api.state.clock = lambda: tomorrow
    api.token = api.new_token()
    assert api.query(body).status_code == 200


def test_short_term_429_is_distinguishable_and_free(api: Api):
    api.state.update_config({"daily_quota": 2, "api": {"rate_limit_429": 1.0}})
    body = {"query": PERU_QUERY, "start_date": "20221207", "end_date": "20221207"}
    for _ in range(4):
        r = api.query(body)
        assert r.status_code == 429 and "slow down" in r.json()["error"]["message"].lower()
        assert "quota" not in r.json()["error"]["message"].lower()
    api.state.update_config({"api": {"rate_limit_429": 0.0}})
    assert [api.query(body).status_code for _ in range(3)] == [200, 200, 429]


# ---- faults ---------------------------------------------------------------------------------


def _two_pages(api: Api) -> tuple[dict, dict]:
    body = {"query": PERU_QUERY, "start_date": "20221207", "end_date": "20221208", "max_count": 100}
    first = api.query(body).json()["data"]
    return body | {"cursor": first["cursor"], "search_id": first["search_id"]}, first


def test_fault_500(api: Api):
    api.state.update_config({"api": {"error_500": 1.0}})
    r = api.query({"query": PERU_QUERY, "start_date": "20221207", "end_date": "20221207"})
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"


def test_fault_expired_search_id_only_on_later_pages_and_retry_works(api: Api):
    second, _ = _two_pages(api)
    api.state.update_config({"api": {"expired_search_id": 1.0}})
    r = api.query(second)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == f"Search Id {second['search_id']} is invalid or expired"
    assert api.query(
        {k: v for k, v in second.items() if k not in ("cursor", "search_id")}
    ).is_success
    api.state.update_config({"api": {"expired_search_id": 0.0}})
    assert api.query(second).status_code == 200  # the same search id still works


def test_fault_invalid_cursor(api: Api):
    second, _ = _two_pages(api)
    api.state.update_config({"api": {"invalid_cursor": 1.0}})
    r = api.query(second)
    assert r.status_code == 400 and r.json()["error"]["message"] == "Invalid count or cursor"


def test_fault_empty_page_keeps_the_cursor(api: Api):
    second, _ = _two_pages(api)
    api.state.update_config({"api": {"empty_page": 1.0}})
    data = api.query(second).json()["data"]
    assert data["videos"] == [] and data["has_more"] is True
    assert data["cursor"] == second["cursor"] and data["search_id"] == second["search_id"]


def test_fault_duplicates_repeat_the_previous_page(api: Api):
    second, first = _two_pages(api)
    api.state.update_config({"api": {"duplicates": 1.0}})
    data = api.query(second).json()["data"]
    first_ids = {v["id"] for v in first["videos"]}
    repeated = [v["id"] for v in data["videos"] if v["id"] in first_ids]
    assert repeated
    api.state.update_config({"api": {"duplicates": 0.0}})
    clean = api.query(second).json()["data"]
    assert [v["id"] for v in data["videos"] if v["id"] not in first_ids] == [
        v["id"] for v in clean["videos"]
    ]


def test_ten_percent_faults_never_change_the_result_set(api: Api, sandbox_config):
    expected = truth(sandbox_config, date(2022, 12, 7), date(2022, 12, 10), in_peru_query)
    rates = dict.fromkeys(
        (
            "error_500",
            "expired_search_id",
            "invalid_cursor",
            "rate_limit_429",
            "empty_page",
            "duplicates",
        ),
        0.1,
    )
    api.state.update_config({"api": rates})
    result = api.crawl(PERU_QUERY, "20221207", "20221210", max_count=50)
    assert result["ids"] == expected
    assert result["retries"] > 0
    counters = api.state.counters
    assert counters["fault_duplicates"] > 0 and counters["fault_empty_page"] > 0


def test_fault_draws_repeat_with_a_fault_seed():
    def run() -> list[int]:
        config = SandboxConfig(videos_per_day=50, fault_seed=99, api={"error_500": 0.5})
        with running_sandbox(config) as sandbox:
            api = Api(sandbox)
            body = {"query": PERU_QUERY, "start_date": "20221207", "end_date": "20221207"}
            return [api.query(body).status_code for _ in range(12)]

    first = run()
    assert first == run() and 500 in first and 200 in first


# ---- control routes -------------------------------------------------------------------------


def test_config_can_be_changed_over_http(api: Api):
    assert api.http.get("/_sandbox/health").json()["ok"] is True
    r = api.http.post("/_sandbox/config", json={"api": {"error_500": 1.0}})
    assert r.status_code == 200 and r.json()["config"]["api"]["error_500"] == 1.0
    assert "client_secret" not in r.json()["config"]
    body = {"query": PERU_QUERY, "start_date": "20221207", "end_date": "20221207"}
    assert api.query(body).status_code == 500
    assert api.http.post("/_sandbox/config", json={"api": {"error_500": 2}}).status_code == 422
    assert api.state.config.api.error_500 == 1.0
    api.http.post("/_sandbox/config", json={"api": {"error_500": 0}})
    assert api.query(body).status_code == 200
