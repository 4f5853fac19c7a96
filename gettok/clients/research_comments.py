"""The Research API's comment list and user info endpoints: one request per call, parsed.

Both go through the video query client's one request path (`ResearchApiClient.post`: the
same token, request ledger, daily budget and fault names); what to do about a fault is the
comments stage's policy. The comment list pages by `cursor` (an index, like the video
query's) and stops at the API's top 1,000 comments. User info answers 400 invalid_params for
users it will not describe; those are a status of the user (`not_found`, `refused`,
`private`), not a failure of the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gettok.clients.research_api import (
    ApiFault,
    ResearchApiClient,
)
from gettok.models.api import (  # noqa: F401 (ResearchUser, UserInfo: re-exported)
    ApiError,
    ApiRecord,
    ResearchComment,
    ResearchUser,
    UserInfo,
    UserStatus,
    _as_bigint,
)

COMMENT_LIST_PATH = "/v2/research/video/comment/list/"
COMMENT_LIST_ENDPOINT = "research/video/comment/list"
USER_INFO_PATH = "/v2/research/user/info/"
USER_INFO_ENDPOINT = "research/user/info"
COMMENT_FIELDS = [
    "id",
    "video_id",
    "text",
    "like_count",
    "reply_count",
    "parent_comment_id",
    "create_time",
]
USER_FIELDS = [
    "display_name",
    "bio_description",
    "avatar_url",
    "is_verified",
    "follower_count",
    "following_count",
    "likes_count",
    "video_count",
    "bio_url",
]
MAX_COMMENTS_PER_VIDEO = 1000  # the API serves only a video's top 1,000 comments
MAX_COUNT = 100


@dataclass
class CommentPage:
    """One page of a video's comments; a record that fails validation is reported, not raised."""

    comments: list[ResearchComment]
    raw: list[dict[str, Any]]
    cursor: int
    has_more: bool
    invalid: list[str] = field(default_factory=list)
    log_id: str | None = None


def parse_comment_page(payload: dict[str, Any]) -> CommentPage:
    data = payload.get("data") or {}
    comments, raws, invalid = [], [], []
    for raw in data.get("comments") or []:
        try:
            comments.append(ResearchComment.model_validate(raw))
            raws.append(raw)
        except ValidationError as exc:
            ident = raw.get("id") if isinstance(raw, dict) else None
            invalid.append(f"comment {ident!r}: {exc.errors()[0]['msg']}")
    error = ApiError.model_validate(payload.get("error") or {})
    cursor = int(data.get("cursor") or 0)
    return CommentPage(comments, raws, cursor, bool(data.get("has_more")), invalid, error.log_id)


def list_comments(
    client: ResearchApiClient, video_id: int, cursor: int = 0, max_count: int = MAX_COUNT
) -> CommentPage:
    """One page of `POST /v2/research/video/comment/list/` for `video_id` from `cursor`."""
    body = {"video_id": video_id, "max_count": max_count, "cursor": cursor}
    payload = research_call(
        client,
        COMMENT_LIST_PATH,
        COMMENT_LIST_ENDPOINT,
        COMMENT_FIELDS,
        body,
        lambda answer: len((answer.get("data") or {}).get("comments") or []),
    )
    return parse_comment_page(payload)


def user_status(message: str) -> UserStatus | None:
    """The user's status named by a 400's message (as the live API words it), else None."""
    lowered = message.lower()
    if "cannot find the user" in lowered:
        return "not_found"
    if "is private" in lowered:
        return "private"
    if "cannot return this user" in lowered or "information cannot be returned" in lowered:
        return "refused"
    return None


def user_info(client: ResearchApiClient, username: str) -> UserInfo:
    """`POST /v2/research/user/info/` for one username; users it will not describe get a status."""
    try:
        payload = research_call(
            client, USER_INFO_PATH, USER_INFO_ENDPOINT, USER_FIELDS, {"username": username}, _one
        )
    except ApiFault as fault:  # any 400 (a username with "cursor" in it reads as a cursor fault)
        status = user_status(str(fault)) if fault.status_code == 400 else None
        if status is None:
            raise
        return UserInfo(username, status, reason=str(fault))
    raw = dict(payload.get("data") or {})
    return UserInfo(username, "ok", ResearchUser.model_validate(raw), raw)


def _one(_answer: dict[str, Any]) -> int:
    return 1


def research_call(
    client: ResearchApiClient,
    path: str,
    endpoint: str,
    fields: list[str],
    body: dict[str, Any],
    count_records: Callable[[dict[str, Any]], int],
) -> dict[str, Any]:
    """One request to another research endpoint (comments, user info) through the client's one
    request path (`ResearchApiClient.post`: token, ledger, fault names); the whole answer."""
    return client.post(
        path,
        endpoint,
        json_body=body,
        fields=fields,
        parse=lambda answer: (answer, count_records(answer)),
    )
