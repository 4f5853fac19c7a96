"""A page stored on Postgres in ONE statement: videos, engagement snapshots, membership and the
window's checkpoint, in the caller's transaction (`store.store_page` chooses this on Postgres)."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from gettok.models.api import ResearchVideo
from gettok.models.schema import CollectionWindow, Video
from gettok.tasks.collect.video_rows import (
    API_COLUMNS,
    COUNT_COLUMNS,
    VIDEO_UPDATE_COLUMNS,
    video_row,
)


def store_page_postgres(
    session: Session,
    campaign_id: int,
    window_id: int,
    videos: Sequence[ResearchVideo],
    raws: Sequence[dict[str, Any]],
    seen_at: datetime,
    sighting_at: datetime,
    checkpoint: dict[str, Any] | None,
) -> tuple[int, int]:
    """Videos, snapshots, membership and the window's checkpoint in ONE statement.

    The page travels as one JSON document read by `json_to_recordset`: a short statement with
    a few parameters, where 100-row VALUES lists (2,500 placeholders) are re-parsed and adapted
    value by value by the driver on every page, which costs more than the database's own work.
    Returns (videos new to the database, new sightings).
    """
    rows = [video_row(v, r, seen_at) for v, r in zip(videos, raws, strict=True)]
    document = json.dumps([_as_document_row(row) for row in rows], ensure_ascii=False)
    params = {
        "page": document,
        "sighting_at": sighting_at,
        "campaign_id": campaign_id,
        "window_id": window_id,
        "seen_at": seen_at,
    }
    for name, value in (checkpoint or {}).items():
        params[f"checkpoint_{name}"] = value.value if isinstance(value, enum.Enum) else value
    moved = tuple(sorted(checkpoint)) if checkpoint is not None else None
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(_postgres_page_sql(moved), params)
        new_videos, new_sightings, _members, _ = cursor.fetchone()
    finally:
        cursor.close()
    return new_videos, new_sightings


def _as_document_row(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    # json_to_recordset unescapes what it reads, and no Postgres text may hold \u0000: the raw
    # payload travels as JSON text and becomes `json` again (escapes intact) in the statement.
    row["raw"] = json.dumps(row["raw"])
    for name in ("created_at", "first_seen_at", "last_seen_at"):
        row[name] = row[name] and row[name].isoformat()
    return row


@lru_cache(maxsize=16)
def _postgres_page_sql(checkpoint: tuple[str, ...] | None) -> str:
    """The page statement; `checkpoint` names the window columns it also sets (None: none)."""
    dialect = postgresql.dialect()
    table = Video.__table__
    names = [
        "id",
        *API_COLUMNS,
        "created_at",
        "extra_fields",
        "raw",
        "first_seen_at",
        "last_seen_at",
    ]
    record = ", ".join(
        f"{n} {'TEXT' if n == 'raw' else table.c[n].type.compile(dialect=dialect)}" for n in names
    )
    selected = ", ".join("raw::json" if n == "raw" else n for n in names)
    refreshed = ", ".join(f"{c} = EXCLUDED.{c}" for c in VIDEO_UPDATE_COLUMNS)
    counts = ", ".join(COUNT_COLUMNS)
    moved = ""
    if checkpoint is not None:
        columns = CollectionWindow.__table__.c
        unknown = [c for c in checkpoint if c not in columns or c in ("pages", "videos", "id")]
        if unknown:
            raise ValueError(f"not a checkpoint column of collection_windows: {unknown}")
        assigned = "".join(f", {c} = %(checkpoint_{c})s" for c in checkpoint if c != "updated_at")
        moved = f""",
        checkpoint AS (
            UPDATE collection_windows
            SET pages = pages + 1, videos = videos + (SELECT count(*) FROM sighted),
                updated_at = %(seen_at)s{assigned}
            WHERE id = %(window_id)s
        )"""
    # synchronous_commit off for this transaction only: a *database* crash may lose the last
    # pages, but always with their checkpoint (same transaction), so they are fetched again.
    return f"""
        WITH page AS (SELECT * FROM json_to_recordset(%(page)s::json) AS page({record})),
        stored AS (
            INSERT INTO videos ({", ".join(names)}) SELECT {selected} FROM page
            ON CONFLICT (id) DO UPDATE SET {refreshed}
            RETURNING (xmax = 0) AS is_new
        ),
        sighted AS (
            INSERT INTO engagement_snapshots (video_id, collected_at, {counts})
            SELECT id, %(sighting_at)s, {counts} FROM page
            ON CONFLICT (video_id, collected_at) DO NOTHING
            RETURNING 1
        ),
        members AS (
            INSERT INTO campaign_videos (campaign_id, video_id, window_id, first_seen_at)
            SELECT %(campaign_id)s, id, %(window_id)s, %(seen_at)s FROM page
            ON CONFLICT (campaign_id, video_id) DO NOTHING
            RETURNING 1
        ){moved}
        SELECT
            (SELECT count(*) FROM stored WHERE is_new)::int,
            (SELECT count(*) FROM sighted)::int,
            (SELECT count(*) FROM members)::int,
            set_config('synchronous_commit', 'off', true)
    """
