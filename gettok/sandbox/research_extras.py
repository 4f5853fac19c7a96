"""The Research API's comment list and user info endpoints, with the live service's shapes.

Comment list (`POST /v2/research/video/comment/list/?fields=...`, body `video_id`, `max_count`
1-100 (default 10), `cursor`): `{"data": {"comments": [...], "cursor": N, "has_more": bool}}`;
the cursor indexes comment slots (deleted comments use slots, so pages run short), and only the
first 1,000 slots are served. A video the index does not hold answers an empty, final page.
Faults, from the same `config.api` rates as the video query: 500s, short-term 429s, the daily
quota (both endpoints spend it), "Invalid count or cursor" past the first page, and duplicates
(a page repeating comments of the previous one).

User info (`POST /v2/research/user/info/?fields=...`, body `username`): `{"data": {profile}}`
without the username; for users it will not describe, 400 invalid_params with the live API's
words ("`username: X` is invalid: cannot find the user", "API cannot return this user's
information"). Those requests count against the quota too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gettok.sandbox.comments import account, comment_slots
from gettok.sandbox.research_api import (
    ApiFailure,
    _authorise,
    _count_request,
    _json_body,
    _log_id,
)
from gettok.sandbox.state import SandboxState

COMMENT_FIELDS = {
    "id",
    "video_id",
    "text",
    "like_count",
    "reply_count",
    "parent_comment_id",
    "create_time",
}
USER_FIELDS = {
    "display_name",
    "bio_description",
    "avatar_url",
    "is_verified",
    "follower_count",
    "following_count",
    "likes_count",
    "video_count",
    "bio_url",
}


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()

    @router.post("/v2/research/video/comment/list/")
    async def comment_list(request: Request) -> JSONResponse:
        try:
            _authorise(state, request)
            _count_request(state)
            body = await _json_body(request)
            fields = _fields(request.query_params.get("fields"), COMMENT_FIELDS)
            page = _comment_page(state, body, fields)
        except ApiFailure as failure:
            return failure.response()
        return _ok(page)

    @router.post("/v2/research/user/info/")
    async def user_info(request: Request) -> JSONResponse:
        try:
            _authorise(state, request)
            _count_request(state)
            body = await _json_body(request)
            fields = _fields(request.query_params.get("fields"), USER_FIELDS)
            profile = _profile(state, body, fields)
        except ApiFailure as failure:
            return failure.response()
        return _ok(profile)

    return router


def _ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"data": data, "error": {"code": "ok", "message": "", "log_id": _log_id()}})


def _fields(raw: str | None, allowed: set[str]) -> list[str]:
    if not raw:
        raise ApiFailure(400, "invalid_params", "Invalid parameters: fields is required.")
    names = [f.strip() for f in raw.split(",") if f.strip()]
    bad = [f for f in names if f not in allowed]
    if bad:
        raise ApiFailure(400, "invalid_params", f"Invalid fields: {','.join(bad)}")
    return names


def _comment_page(state: SandboxState, body: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    video_id, max_count, cursor = (
        body.get("video_id"),
        body.get("max_count", 10),
        body.get("cursor", 0),
    )
    if not isinstance(video_id, int) or isinstance(video_id, bool):
        raise ApiFailure(400, "invalid_params", "video_id is required and must be an integer.")
    if not (isinstance(max_count, int) and 1 <= max_count <= 100) or not (
        isinstance(cursor, int) and cursor >= 0
    ):
        raise ApiFailure(400, "invalid_params", "Invalid count or cursor")
    video = state.corpus.get(video_id)
    slots = comment_slots(video, state.config.seed) if video and video.api_visible else []
    if cursor > len(slots) or (cursor > 0 and state.chance(state.config.api.invalid_cursor)):
        state.counters["fault_invalid_cursor"] += 1
        raise ApiFailure(400, "invalid_params", "Invalid count or cursor")
    shown = [c for c in slots[cursor : cursor + max_count] if c.visible]
    if cursor > 0 and state.chance(state.config.api.duplicates):
        previous = [c for c in slots[max(0, cursor - max_count) : cursor] if c.visible]
        if previous:
            state.counters["fault_duplicates"] += 1
            shown = previous[-state.randint(1, min(5, len(previous))) :] + shown
    next_cursor = min(cursor + max_count, len(slots))
    with state.lock:
        state.records_by_day[state.today()] += len(shown)
        state.counters["comments_served"] += len(shown)
    return {
        "comments": [{f: c.api_record()[f] for f in fields} for c in shown],
        "cursor": next_cursor,
        "has_more": next_cursor < len(slots),
    }


def _profile(state: SandboxState, body: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    username = body.get("username")
    if not isinstance(username, str) or not username:
        raise ApiFailure(400, "invalid_params", "username is required.")
    status, profile = account(username, state.config.seed, state.corpus.knows_user(username))
    if status == "not_found":
        state.counters["user_not_found"] += 1
        raise ApiFailure(
            400, "invalid_params", f"`username: {username}` is invalid: cannot find the user"
        )
    if status == "refused":
        state.counters["user_refused"] += 1
        raise ApiFailure(400, "invalid_params", "API cannot return this user's information")
    with state.lock:
        state.records_by_day[state.today()] += 1
        state.counters["users_served"] += 1
    return {f: profile[f] for f in fields if f in profile}
