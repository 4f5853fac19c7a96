"""What the TikTok Research API sends, as pydantic models.

Ids are Python ints (they exceed 2^53, so never floats), NUL bytes are stripped from every
string (Postgres TEXT rejects them; a username with one was recorded live), and unknown fields
are kept so that a new API field is stored, not dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_BIGINT = 2**63 - 1
# The most records one video query page may hold (`max_count` is at most 100).
MAX_PAGE_RECORDS = 100


# Half of a UTF-16 pair (a text cut mid-emoji): no database encodes one.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Every record the local sandbox serves carries this field (True): stored in the raw payload and
# extra_fields, it marks the video as synthetic for good (exports, reports, copies of the data).
SANDBOX_RECORD_MARK = "gettok_sandbox"


def strip_nul(value: Any) -> Any:
    """Remove NUL characters from strings anywhere inside a JSON-like value, and replace lone
    surrogates with U+FFFD (either would make the whole page fail to store)."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value.replace("\x00", ""))
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    return value


class ApiRecord(BaseModel):
    """Base for API records: keeps unknown fields, strips NULs before validation."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _strip_nul(cls, data: Any) -> Any:
        return strip_nul(data)


def _as_bigint(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{field} must be an integer id, got {value!r} (a float loses digits)")
    number = int(value)
    if number < 0:
        raise ValueError(f"{field} {number} is negative (TikTok ids and counts never are)")
    if number > MAX_BIGINT:
        raise ValueError(f"{field} {number} does not fit a signed 64-bit integer")
    return number


class ResearchVideo(ApiRecord):
    """One video as the video query endpoint returns it; any field but `id` may be absent."""

    id: int
    video_description: str | None = None
    create_time: int | None = None
    region_code: str | None = None
    share_count: int | None = None
    view_count: int | None = None
    like_count: int | None = None
    comment_count: int | None = None
    # The API's spelling; a record in the old documented spelling fills the same field.
    favorites_count: int | None = Field(
        None, validation_alias=AliasChoices("favorites_count", "favourites_count")
    )
    music_id: int | None = None
    hashtag_names: list[str] = Field(default_factory=list)
    username: str | None = None
    effect_ids: list[str] = Field(default_factory=list)
    playlist_id: int | None = None
    voice_to_text: str | None = None
    is_stem_verified: bool | None = None
    video_duration: int | None = None
    hashtag_info_list: list[dict[str, Any]] | None = None
    sticker_info_list: list[Any] | None = None
    effect_info_list: list[Any] | None = None
    video_mention_list: list[str] | None = None
    video_label: dict[str, Any] | None = None
    video_tag: Any = None  # documented as numeric codes whose shape may change: kept as sent

    @field_validator("id", "music_id", "playlist_id", mode="before")
    @classmethod
    def _ids_are_ints(cls, value: Any, info) -> int | None:
        return _as_bigint(value, info.field_name)

    @field_validator("hashtag_names", "effect_ids", mode="before")
    @classmethod
    def _list_or_empty(cls, value: Any) -> list:
        if value is None:
            return []
        return [str(v) for v in value]

    @field_validator(
        "share_count",
        "view_count",
        "like_count",
        "comment_count",
        "favorites_count",
        mode="before",
    )
    @classmethod
    def _counts(cls, value: Any, info) -> int | None:
        number = _as_bigint(value, info.field_name)
        return number

    @property
    def created_at(self) -> datetime | None:
        if self.create_time is None:
            return None
        return datetime.fromtimestamp(self.create_time, tz=UTC)

    @property
    def extra_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def columns(self) -> dict[str, Any]:
        """The `videos` table columns this record fills (not the raw payload or sighting times)."""
        values = self.model_dump(exclude=set(self.model_extra or {}))
        values["created_at"] = self.created_at
        values["extra_fields"] = self.extra_fields or None
        return values


class ResearchComment(ApiRecord):
    """One record of `research/video/comment/list/` (the comments stage)."""

    id: int
    video_id: int
    text: str = ""
    like_count: int | None = None
    reply_count: int | None = None
    parent_comment_id: int | None = None
    create_time: int | None = None

    @field_validator("id", "video_id", "parent_comment_id", mode="before")
    @classmethod
    def _ids_are_ints(cls, value: Any, info) -> int | None:
        return _as_bigint(value, info.field_name)


class ApiError(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = "ok"
    message: str = ""
    log_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == "ok"


class VideoPageData(BaseModel):
    model_config = ConfigDict(extra="allow")

    videos: list[ResearchVideo] = Field(default_factory=list)
    cursor: int = 0
    has_more: bool = False
    search_id: str | None = None

    @field_validator("search_id", mode="before")
    @classmethod
    def _search_id_text(cls, value: Any) -> str | None:
        return None if value in (None, "") else str(value)


UserStatus = Literal["ok", "not_found", "refused", "private"]


class ResearchUser(ApiRecord):
    """What user info says about one account (the answer does not repeat the username)."""

    display_name: str | None = None
    bio_description: str | None = None
    avatar_url: str | None = None
    bio_url: str | None = None
    is_verified: bool | None = None
    follower_count: int | None = None
    following_count: int | None = None
    likes_count: int | None = None
    video_count: int | None = None

    @field_validator(
        "follower_count", "following_count", "likes_count", "video_count", mode="before"
    )
    @classmethod
    def _counts(cls, value: Any, info) -> int | None:
        return _as_bigint(value, info.field_name)


@dataclass
class UserInfo:
    username: str
    status: UserStatus
    user: ResearchUser | None = None
    raw: dict[str, Any] | None = None
    reason: str | None = None  # the API's words when it would not describe the user
