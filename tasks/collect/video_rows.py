"""The `videos` row of one Research API record: the columns filled straight from it, and those a
new sighting refreshes (first_seen_at and the pruning record are kept)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gettok.models.api import ResearchVideo

# Columns filled straight from the API record (same names).
API_COLUMNS = (
    "username",
    "video_description",
    "create_time",
    "region_code",
    "view_count",
    "like_count",
    "comment_count",
    "share_count",
    "favorites_count",
    "music_id",
    "hashtag_names",
    "effect_ids",
    "playlist_id",
    "voice_to_text",
    "is_stem_verified",
    "video_duration",
    "hashtag_info_list",
    "sticker_info_list",
    "effect_info_list",
    "video_mention_list",
    "video_label",
    "video_tag",
)
COUNT_COLUMNS = ("view_count", "like_count", "comment_count", "share_count", "favorites_count")
# A new sighting refreshes what the API says; first_seen_at and the pruning record are kept.
VIDEO_UPDATE_COLUMNS = (*API_COLUMNS, "created_at", "extra_fields", "raw", "last_seen_at")


def video_row(video: ResearchVideo, raw: dict[str, Any], seen_at: datetime) -> dict[str, Any]:
    """The `videos` row of one API record; `raw` is stored as sent (NULs and all)."""
    row = {name: getattr(video, name) for name in API_COLUMNS}
    row["id"] = video.id
    row["created_at"] = video.created_at
    row["extra_fields"] = video.extra_fields or None
    row["raw"] = raw
    row["first_seen_at"] = seen_at
    row["last_seen_at"] = seen_at
    return row


def unique_by_id(
    videos: Sequence[ResearchVideo], raws: Sequence[dict[str, Any]]
) -> tuple[list[ResearchVideo], list[dict[str, Any]]]:
    """Drop repeats of an id within a page (ON CONFLICT may not touch one row twice)."""
    seen: set[int] = set()
    kept_videos, kept_raws = [], []
    for video, raw in zip(videos, raws, strict=True):
        if video.id not in seen:
            seen.add(video.id)
            kept_videos.append(video)
            kept_raws.append(raw)
    return kept_videos, kept_raws
