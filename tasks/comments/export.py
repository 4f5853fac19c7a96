"""The comments beside the videos' export: `<stem>.comments.<fmt>` and its data dictionary.

The API names no commenter, but a comment's id leads back to its author on TikTok, so a public
export replaces comment ids with salted hashes (HMAC with GETTOK_EXPORT_SALT, as `user_hash`
does for authors; without a salt they are left out), masks @mentions in the text and carries
no raw payloads. Replies keep pointing at their comment's hash, so threads stay whole.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import SecretStr

from gettok.db import session_scope
from gettok.tasks.comments.store import campaign_comments
from gettok.tasks.export.columns import Column

log = logging.getLogger(__name__)
WHEN = pl.Datetime("us", "UTC")
COLUMNS = [
    Column("comment_id", pl.Int64, "TikTok comment id (64-bit)", public=False),
    Column(
        "comment_hash",
        pl.Utf8,
        "HMAC-SHA256 of the comment id with the project's secret salt (16 hex digits)",
    ),
    Column("video_id", pl.Int64, "the video commented on (a row of the videos' export)"),
    Column(
        "parent_comment_id",
        pl.Int64,
        "the comment a reply answers; the video id for top-level comments, as the API sends it",
        public=False,
    ),
    Column("reply_to_hash", pl.Utf8, "comment_hash of the comment a reply answers; empty if none"),
    Column("is_reply", pl.Boolean, "a reply to another comment rather than to the video"),
    Column("text", pl.Utf8, "the comment's text, often empty (public: @mentions masked)"),
    Column("like_count", pl.Int64, "likes when collected"),
    Column("reply_count", pl.Int64, "replies when collected"),
    Column("created_at", WHEN, "when the comment was posted (UTC)"),
    Column("first_seen_at", WHEN, "first collected (UTC)", public=False),
    Column("last_seen_at", WHEN, "last collected (UTC)", public=False),
    Column("raw", pl.Utf8, "the Research API record as received (JSON)", public=False),
]


def comment_frame(
    records: list[dict[str, Any]], *, public: bool, salt: SecretStr | None
) -> tuple[pl.DataFrame, list[Column]]:
    """The comments table; public mode keeps only what may be published."""
    from gettok.tasks.export.dataset import MENTION, _raw_json, user_hash

    columns = [c for c in COLUMNS if c.public or not public]
    if not (public and salt):
        columns = [c for c in columns if not c.name.endswith("_hash")]
    rows = []
    for record in records:
        row = {c.name: record.get(c.name) for c in columns}
        if public and salt:
            row["comment_hash"] = user_hash(str(record["comment_id"]), salt)
            if record["is_reply"]:
                row["reply_to_hash"] = user_hash(str(record["parent_comment_id"]), salt)
        if public and row.get("text"):
            row["text"] = MENTION.sub("@user", row["text"])
        if row.get("raw") is not None:
            row["raw"] = _raw_json(row["raw"])
        rows.append(row)
    frame = pl.DataFrame(rows, schema={c.name: c.dtype for c in columns}, orient="row")
    return frame, columns


def export_comments(
    url: str,
    campaign: str,
    out_dir: Path,
    fmt: str,
    stem: str,
    *,
    public: bool = False,
    salt: SecretStr | None = None,
) -> Path | None:
    """Write `<stem>.comments.<fmt>` and its dictionary; None (no file) when no comments are
    stored for the campaign, so a campaign that never asked for comments gets no empty file."""
    from gettok.tasks.export.dataset import write_export

    with session_scope(url) as session:
        records = campaign_comments(session, campaign, public=public)
    if not records:
        return None
    frame, columns = comment_frame(records, public=public, salt=salt)
    path, _ = write_export([frame], columns, out_dir, f"{stem}.comments", fmt)
    log.info("exported %d comments to %s", frame.height, path)
    return path
