"""The campaign's dataset as one table: one row per video, every derived value with its model.

`--public` follows what the studies could publish under the platform's terms: no usernames (a
salted hash at most), no raw payloads, no media paths or errors that quote URLs, @mentions masked
in free text, and no video whose media a compliance run pruned. Every export gets a data dictionary
beside it (column, type, description).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, SecretStr

from gettok.db import session_scope
from gettok.stage import StageResult, file_digests
from gettok.tasks.export.columns import COLUMNS, ID_POLICIES, Column
from gettok.tasks.export.public import (
    MENTION,
    make_public,
    mask_mentions,
    published,
    user_hash,
    video_hash,
)
from gettok.tasks.export.table import (
    CampaignNotFound,
    campaign_id,
    campaign_table,
    raw_json,
    table_batches,
)
from gettok.tasks.export.writer import write_batches

ExportFormat = Literal["parquet", "csv", "jsonl"]
IdPolicy = Literal["keep", "hash", "drop"]
_raw_json = raw_json  # the comments' export writes its payloads the same way
__all__ = [
    "MENTION",
    "CampaignNotFound",
    "campaign_id",
    "campaign_table",
    "mask_mentions",
    "user_hash",
    "video_hash",
]


class ExportResult(BaseModel):
    path: Path
    dictionary_path: Path
    format: ExportFormat
    public: bool
    rows: int
    columns: int
    excluded_pruned: int  # public exports leave out videos that are no longer public
    changed: bool = True  # False: the files already held exactly this export

    def stage_result(self) -> StageResult:
        return StageResult(
            stage="export",
            done=int(self.changed),
            skipped=int(not self.changed),
            counts={"rows": self.rows, "excluded pruned": self.excluded_pruned},
        )


def export_columns(public: bool, salt: SecretStr | None, ids: IdPolicy = "keep") -> list[Column]:
    """The columns of this export; a public one carries the id policy's column and reasoning."""
    if ids != "keep" and not public:
        raise ValueError(f"--ids {ids} applies to public exports only (add --public)")
    if ids == "hash" and salt is None:
        raise ValueError("--ids hash needs GETTOK_EXPORT_SALT (the ids' hash is salted)")
    columns = [c for c in COLUMNS if c.public or not public]
    if not (public and salt):
        columns = [c for c in columns if c.name != "user_hash"]
    if public:
        chosen = ID_POLICIES[ids]
        columns = [chosen] + columns[1:] if chosen else columns[1:]
    return columns


def export_frame(
    table: pl.DataFrame,
    *,
    public: bool = False,
    salt: SecretStr | None = None,
    ids: IdPolicy = "keep",
) -> tuple[pl.DataFrame, list[Column], int]:
    """The export of a (page of the) full table, its columns, and how many videos a public
    export left out; public mode drops what may not be published."""
    columns = export_columns(public, salt, ids)
    if not public:
        return table.select(c.name for c in columns), columns, 0
    kept = published(table)
    return make_public(kept, columns, salt), columns, table.height - kept.height


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write beside `path` under a name no other export uses, then rename over it: two exports
    at once each replace the file whole (a shared temp name mixed them, or one crashed)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # created as usual (umask)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_export(
    frames: Iterable[pl.DataFrame],
    columns: list[Column],
    out_dir: Path,
    stem: str,
    fmt: ExportFormat,
) -> tuple[Path, Path]:
    """Write the table a batch at a time, and its data dictionary; both replace earlier files
    atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}.{fmt}"
    _atomic_write(path, lambda tmp: write_batches(frames, tmp, fmt))
    dictionary = pl.DataFrame(
        {
            "column": [c.name for c in columns],
            "type": [
                str(c.dtype) if fmt != "csv" or not isinstance(c.dtype, pl.List) else "String"
                for c in columns
            ],
            "description": [c.description for c in columns],
        }
    )
    dictionary_path = out_dir / f"{stem}.dictionary.csv"
    _atomic_write(dictionary_path, dictionary.write_csv)
    return path, dictionary_path


def export_dataset(
    url: str,
    campaign: str,
    out_dir: Path,
    fmt: ExportFormat = "parquet",
    *,
    public: bool = False,
    salt: SecretStr | None = None,
    ids: IdPolicy = "keep",
) -> ExportResult:
    """Write `<campaign>[.public].<fmt>` and its data dictionary into `out_dir`."""
    columns = export_columns(public, salt, ids)  # a bad choice fails before any work
    with session_scope(url) as session:
        campaign_id(session, campaign)  # an unknown campaign fails before any file is opened
    totals = {"rows": 0, "excluded": 0}

    def frames() -> Iterator[pl.DataFrame]:
        empty = True
        for table in table_batches(url, campaign, with_raw=not public):
            frame, _, excluded = export_frame(table, public=public, salt=salt, ids=ids)
            totals["rows"] += frame.height
            totals["excluded"] += excluded
            empty = False
            yield frame
        if empty:  # still a file with the columns
            yield pl.DataFrame(schema={c.name: c.dtype for c in columns})

    stem = f"{campaign}.public" if public else campaign
    before = file_digests(out_dir.glob(f"{stem}.*"))
    path, dictionary_path = write_export(frames(), columns, out_dir, stem, fmt)
    from gettok.tasks.comments.export import export_comments  # comments' module reads ours

    export_comments(url, campaign, out_dir, fmt, stem, public=public, salt=salt)
    after = file_digests([path, dictionary_path])
    return ExportResult(
        path=path,
        dictionary_path=dictionary_path,
        format=fmt,
        public=public,
        rows=totals["rows"],
        columns=len(columns),
        excluded_pruned=totals["excluded"],
        changed=any(before.get(p) != digest for p, digest in after.items()),
    )
