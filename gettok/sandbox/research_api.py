"""The Research API's token and video query endpoints, with the live service's semantics.

Dates: `start_date` and `end_date` are UTC days as YYYYMMDD and BOTH ARE INCLUSIVE: a one-day
window is `start_date == end_date`, and the next window starts the day after the previous one
ended (what `Campaign.api_request_body(day, day)` sends). `end_date` more than 30 days after
`start_date` (e.g. 20240101 to 20240201) is 400 invalid_params; 20240101 to 20240131 is fine.

Filtering uses what the index knows about a video, even where its record omits the field
(a record without `region_code` still matches `region_code IN [PE]` if it is from Peru).

Index lag: videos newer than `index_lag_hours` (default 48) are not searchable yet, as on the
live service; a daily run should query windows that ended at least two days ago.

Paging: the result set is every indexed video that matches, in creation order, INCLUDING
deleted/private slots that are never shown. `cursor` indexes slots, so a page of `max_count`
100 can hold fewer than 100 videos while the returned cursor still advances by 100 (as in the
recorded fixtures). The first page issues a `search_id`; later pages must send the same query,
dates and search_id (another request's id is "invalid or expired").

Quota: `daily_quota` requests per UTC day on research endpoints, 500s and 400s included; past it,
429 rate_limit_exceeded with "daily quota ... reached". A short-term 429 says "too many requests,
slow down" and does not count.

Faults (`config.api` rates): 500 internal_error; 400 "Search Id N is invalid or expired" (only on
pages sent with a search_id; the search stays valid, so a retry works); 400 "Invalid count or
cursor" (only past the first page); short-term 429; an empty page with has_more true and the
cursor NOT advanced; duplicates (the page also repeats videos of the previous page). None of
them changes the result set: a client that retries, re-requests and dedupes gets exactly it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date, datetime, timedelta
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gettok.models.api import SANDBOX_RECORD_MARK
from gettok.models.campaign import FieldName, Operation
from gettok.sandbox.corpus import CorpusVideo
from gettok.sandbox.state import MAX_SEARCHES, SandboxState, Search
from gettok.settings import ALL_VIDEO_FIELDS

MAX_WINDOW_DAYS = 30
# The query language is the one campaigns are validated against: one definition for both sides.
OPERATIONS = set(get_args(Operation))
FIELD_NAMES = set(get_args(FieldName))
VIDEO_LENGTHS = {"SHORT": (0, 15), "MID": (15, 60), "LONG": (60, 300), "EXTRA_LONG": (300, 10**9)}


class ApiFailure(Exception):
    """An error answer in the research endpoints' `{data, error}` shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def response(self) -> JSONResponse:
        body = {
            "data": {},
            "error": {"code": self.code, "message": self.message, "log_id": _log_id()},
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _log_id() -> str:
    return datetime.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()

    @router.post("/v2/oauth/token/")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        cfg = state.config
        state.counters["token_requests"] += 1

        def flat_error(status: int, error: str, description: str) -> JSONResponse:
            body = {"error": error, "error_description": description, "log_id": _log_id()}
            return JSONResponse(body, status_code=status)

        if form.get("grant_type") != "client_credentials":
            return flat_error(400, "invalid_request", "grant_type must be client_credentials")
        if not form.get("client_key") or not form.get("client_secret"):
            return flat_error(400, "invalid_request", "client_key and client_secret are required")
        if (
            form.get("client_key") != cfg.client_key
            or form.get("client_secret") != cfg.client_secret
        ):
            return flat_error(401, "invalid_client", "Client key or secret is incorrect.")
        access_token = "clt." + secrets.token_hex(24)
        with state.lock:
            state.tokens[access_token] = state.clock() + timedelta(seconds=cfg.token_ttl_s)
        return JSONResponse(
            {"access_token": access_token, "expires_in": cfg.token_ttl_s, "token_type": "Bearer"}
        )

    @router.post("/v2/research/video/query/")
    async def video_query(request: Request) -> JSONResponse:
        try:
            _authorise(state, request)
            _count_request(state)
            body = await _json_body(request)
            fields = _fields(state, request.query_params.get("fields"))
            page = _query_page(state, body, fields)
        except ApiFailure as failure:
            return failure.response()
        return JSONResponse(
            {"data": page, "error": {"code": "ok", "message": "", "log_id": _log_id()}}
        )

    return router


def _authorise(state: SandboxState, request: Request) -> None:
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    with state.lock:
        expires = state.tokens.get(token)
    if expires is None or expires <= state.clock():
        state.counters["unauthorised"] += 1
        raise ApiFailure(
            401, "access_token_invalid", "The access token is invalid or not found in the request."
        )


def _count_request(state: SandboxState) -> None:
    """Spend one request of the day's quota, or answer the daily-quota 429."""
    cfg, day = state.config, state.today()
    with state.lock:
        if (
            state.requests_by_day[day] >= cfg.daily_quota
            or state.records_by_day[day] >= cfg.records_per_day
        ):
            state.counters["quota_exhausted"] += 1
            raise ApiFailure(
                429,
                "rate_limit_exceeded",
                f"The daily quota of {cfg.daily_quota} requests or "
                f"{cfg.records_per_day} records is reached; it resets at 00:00 UTC.",
            )
        if state.chance(cfg.api.rate_limit_429):
            state.counters["fault_429"] += 1
            raise ApiFailure(
                429,
                "rate_limit_exceeded",
                "Too many requests, slow down.",
                headers={"Retry-After": "1"},
            )
        state.requests_by_day[day] += 1
        state.counters["research_requests"] += 1
    if state.chance(cfg.api.error_500):
        state.counters["fault_500"] += 1
        raise ApiFailure(500, "internal_error", "Something went wrong. Please try again later.")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ApiFailure(400, "invalid_params", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiFailure(400, "invalid_params", "The request body must be a JSON object.")
    return body


def _fields(state: SandboxState, raw: str | None) -> list[str]:
    if not raw:
        raise ApiFailure(400, "invalid_params", "Invalid parameters: fields is required.")
    names = [f.strip() for f in raw.split(",") if f.strip()]
    bad = [f for f in names if f not in ALL_VIDEO_FIELDS or f in state.rejected_fields]
    if bad:
        raise ApiFailure(400, "invalid_params", f"Invalid fields: {','.join(bad)}")
    return names


def _day(value: Any, name: str) -> date:
    try:
        return datetime.strptime(str(value), "%Y%m%d").date()
    except ValueError:
        raise ApiFailure(
            400, "invalid_params", f"{name} must be a date as YYYYMMDD, got {value!r}"
        ) from None


def _query_page(state: SandboxState, body: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    cfg = state.config
    start, end = _day(body.get("start_date"), "start_date"), _day(body.get("end_date"), "end_date")
    if end < start:
        raise ApiFailure(400, "invalid_params", "end_date must not be before start_date.")
    if (end - start).days > MAX_WINDOW_DAYS:
        raise ApiFailure(
            400,
            "invalid_params",
            f"end_date must be no more than {MAX_WINDOW_DAYS} days after start_date.",
        )
    query = body.get("query")
    if not isinstance(query, dict):
        raise ApiFailure(400, "invalid_params", "query is required.")
    matcher = _compile(query)
    max_count, cursor = body.get("max_count", 20), body.get("cursor", 0)
    if not (isinstance(max_count, int) and 1 <= max_count <= 100) or not (
        isinstance(cursor, int) and cursor >= 0
    ):
        raise ApiFailure(400, "invalid_params", "Invalid count or cursor")
    fingerprint = _fingerprint(query, start, end, body.get("is_random", False))
    search = _search(state, body.get("search_id"), fingerprint, start, end, matcher)
    if body.get("search_id") and state.chance(cfg.api.expired_search_id):
        state.counters["fault_expired_search_id"] += 1
        raise ApiFailure(
            400, "invalid_params", f"Search Id {search.search_id} is invalid or expired"
        )
    if cursor > len(search.slots) or (cursor > 0 and state.chance(cfg.api.invalid_cursor)):
        state.counters["fault_invalid_cursor"] += 1
        raise ApiFailure(400, "invalid_params", "Invalid count or cursor")
    if state.chance(cfg.api.empty_page):
        state.counters["fault_empty_page"] += 1
        return {"videos": [], "cursor": cursor, "has_more": True, "search_id": search.search_id}
    slots = search.slots[cursor : cursor + max_count]
    videos = [v for v in slots if v.api_visible]
    if cursor > 0 and state.chance(cfg.api.duplicates):
        previous = [v for v in search.slots[max(0, cursor - max_count) : cursor] if v.api_visible]
        if previous:
            state.counters["fault_duplicates"] += 1
            repeat = previous[-state.randint(1, min(5, len(previous))) :]
            videos = repeat + videos
    next_cursor = cursor + len(slots)
    with state.lock:
        state.records_by_day[state.today()] += len(videos)
        state.counters["videos_served"] += len(videos)
    return {
        "videos": [_select(v, fields) for v in videos],
        "cursor": next_cursor,
        "has_more": next_cursor < len(search.slots),
        "search_id": search.search_id,
    }


def _fingerprint(query: dict[str, Any], start: date, end: date, is_random: Any) -> str:
    text = json.dumps([query, start.isoformat(), end.isoformat(), bool(is_random)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _search(
    state: SandboxState, search_id: Any, fingerprint: str, start: date, end: date, matcher
) -> Search:
    """The search a page belongs to: the one named (which must be this request's), or a new one."""
    with state.lock:
        if search_id:
            search = state.searches.get(str(search_id))
            if search is None or search.fingerprint != fingerprint:
                state.counters["bad_search_id"] += 1
                raise ApiFailure(
                    400, "invalid_params", f"Search Id {search_id} is invalid or expired"
                )
            state.searches.move_to_end(search.search_id)
            return search
    indexed_until = int(state.clock().timestamp()) - state.config.index_lag_hours * 3600
    slots = [
        v
        for v in state.corpus.videos_between(start, end)
        if v.create_time <= indexed_until and matcher(v)
    ]
    search = Search(str(7 * 10**18 + secrets.randbelow(10**17)), fingerprint, slots)
    with state.lock:
        state.searches[search.search_id] = search
        while len(state.searches) > MAX_SEARCHES:
            state.searches.popitem(last=False)
        state.counters["searches"] += 1
    return search


def _select(video: CorpusVideo, fields: list[str]) -> dict[str, Any]:
    record = video.api_record()
    return {f: record[f] for f in fields if f in record} | {SANDBOX_RECORD_MARK: True}


# ---- the query language -------------------------------------------------------------------


def _compile(query: dict[str, Any]):
    """A predicate over corpus videos for `{and, or, not}` (an empty `or` matches everything)."""
    groups = {}
    for key in ("and", "or", "not"):
        conditions = query.get(key) or []
        if not isinstance(conditions, list):
            raise ApiFailure(400, "invalid_params", f"query.{key} must be a list of conditions.")
        groups[key] = [_condition(c) for c in conditions]
    if not any(groups.values()):
        raise ApiFailure(400, "invalid_params", "query must have at least one condition.")

    def matches(video: CorpusVideo) -> bool:
        return (
            all(c(video) for c in groups["and"])
            and (not groups["or"] or any(c(video) for c in groups["or"]))
            and not any(c(video) for c in groups["not"])
        )

    return matches


def _condition(raw: Any):
    if not isinstance(raw, dict):
        raise ApiFailure(400, "invalid_params", "Each condition must be an object.")
    operation, name, values = raw.get("operation"), raw.get("field_name"), raw.get("field_values")
    if operation not in OPERATIONS:
        raise ApiFailure(400, "invalid_params", f"Invalid operation: {operation!r}")
    if name not in FIELD_NAMES:
        raise ApiFailure(400, "invalid_params", f"Invalid field_name: {name!r}")
    if not isinstance(values, list) or not values:
        raise ApiFailure(400, "invalid_params", f"field_values of {name} must be a non-empty list.")
    values = [str(v) for v in values]
    if operation == "EQ" and len(values) != 1:
        raise ApiFailure(400, "invalid_params", "EQ takes exactly one value.")
    if operation in {"GT", "GTE", "LT", "LTE"}:
        if name not in {"create_date", "video_id", "music_id"} or len(values) != 1:
            raise ApiFailure(400, "invalid_params", f"{operation} is not supported on {name}.")
        return _comparison(operation, name, values[0])
    if name == "keyword":
        words = [v.lower() for v in values]
        return lambda v: any(w in v.description.lower() for w in words)
    if name == "hashtag_name":
        tags = {v.lower() for v in values}
        return lambda v: any(h.lower() in tags for h in v.hashtags)
    if name == "video_length":
        unknown = [x for x in values if x.upper() not in VIDEO_LENGTHS]
        if unknown:
            raise ApiFailure(400, "invalid_params", f"Invalid video_length: {unknown}")
        ranges = [VIDEO_LENGTHS[x.upper()] for x in values]
        return lambda v: any(low <= v.duration_s < high for low, high in ranges)
    accepted = {x.upper() if name == "region_code" else x for x in values}
    if name == "effect_id":
        return lambda v: any(e in accepted for e in v.effect_ids)
    getter = {
        "create_date": lambda v: v.create_date,
        "username": lambda v: v.username,
        "region_code": lambda v: v.region_code,
        "video_id": lambda v: str(v.id),
        "music_id": lambda v: str(v.music_id),
    }[name]
    return lambda v: getter(v) in accepted


def _comparison(operation: str, name: str, value: str):
    try:
        target = int(value)
    except ValueError:
        raise ApiFailure(400, "invalid_params", f"{name} needs a number, got {value!r}") from None
    key = {
        "create_date": lambda v: int(v.create_date),
        "video_id": lambda v: v.id,
        "music_id": lambda v: v.music_id,
    }[name]
    compare = {
        "GT": lambda a: a > target,
        "GTE": lambda a: a >= target,
        "LT": lambda a: a < target,
        "LTE": lambda a: a <= target,
    }[operation]
    return lambda v: compare(key(v))
