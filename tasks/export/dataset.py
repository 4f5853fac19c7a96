"""The campaign's dataset as one table: one row per video, every derived value with its model.

`--public` follows what the studies could publish under the platform's terms: no usernames (a
salted hash at most), no raw payloads, no media paths or errors that quote URLs, @mentions masked
in free text, and no video whose media a compliance run pruned. Every export gets a data dictionary
beside it (column, type, description).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import polars as pl
from gettok.models.api import LONE_SURROGATE, SANDBOX_RECORD_MARK
from gettok.models.schema import (
    Annotation,
    AnnotationKind,
    CampaignVideo,
    Download,
    Frame,
    MediaInfo,
    Transcript,
    Video,
)
from gettok.models.schema import Campaign as CampaignRow
from gettok.tasks.export.columns import (
    ANNOTATION_KINDS,
    COLUMNS,
    ID_POLICIES,
    TEXT_COLUMNS,
    Column,
)
from gettok.tasks.export.writer import write_batches
from gettok.tasks.validate.exported import add_human_codes
from pydantic import BaseModel, SecretStr
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, defer

from gettok.db import session_scope
from gettok.stage import StageResult, file_digests

ExportFormat = Literal["parquet", "csv", "jsonl"]
BATCH = 5000  # videos per batch: memory holds one batch, IN lists stay far below 65,535
IdPolicy = Literal["keep", "hash", "drop"]
WHISPER_ENGINE = "faster-whisper"
TIKTOK_ENGINE = "tiktok"
# A handle after `@`, its fullwidth `＠` or small `﹫` forms, spaces allowed in between ("@ name").
MENTION = re.compile(r"[@\uff20\ufe6b][^\S\n]*[\w.]+")


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


class CampaignNotFound(LookupError):
    """The campaign has no rows in this database yet (nothing collected)."""


def campaign_id(session: Session, name: str) -> int:
    found = session.scalar(select(CampaignRow.id).where(CampaignRow.name == name))
    if found is None:
        raise CampaignNotFound(f"campaign {name!r} is not in the database: collect it first")
    return found


def user_hash(username: str | None, salt: SecretStr) -> str | None:
    if not username:
        return None
    key = salt.get_secret_value().encode()
    return hmac.new(key, username.casefold().encode(), hashlib.sha256).hexdigest()[:16]


def video_hash(video_id: int, salt: SecretStr) -> str:
    key = salt.get_secret_value().encode()
    return hmac.new(key, str(video_id).encode(), hashlib.sha256).hexdigest()[:16]


def mask_mentions(text: str) -> str:
    return MENTION.sub("@user", text)


def _latest(rows, key: Callable[[Any], Any]) -> dict:
    """The newest row per key, preferring ok rows over failed ones."""
    best: dict = {}
    for row in rows:
        k = key(row)
        rank = (row.status == "ok", row.created_at, row.id)
        if k not in best or rank > best[k][0]:
            best[k] = (rank, row)
    return {k: row for k, (_, row) in best.items()}


def _value(value: dict | None, *keys: str) -> Any:
    for key in keys:
        if value and value.get(key) is not None:
            return value[key]
    return None


def campaign_records(url: str, campaign: str, *, with_raw: bool = True) -> list[dict[str, Any]]:
    """Every video of the campaign with what the stages derived, as plain dicts (all columns).

    `with_raw=False` leaves the raw API payloads in the database (the largest column).
    """
    return [r for batch in record_batches(url, campaign, with_raw=with_raw) for r in batch]


def record_batches(
    url: str, campaign: str, *, with_raw: bool = True, size: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The campaign's records `size` videos at a time, in video id order (keyset pages), so that
    memory holds one batch whatever the campaign's size."""
    with session_scope(url) as session:
        cid = campaign_id(session, campaign)
        after = -(2**63)
        while True:
            ids = session.scalars(
                select(CampaignVideo.video_id)
                .where(CampaignVideo.campaign_id == cid, CampaignVideo.video_id > after)
                .order_by(CampaignVideo.video_id)
                .limit(size or BATCH)
            ).all()
            if not ids:
                return
            yield _batch_records(session, cid, list(ids), with_raw)
            session.expunge_all()
            after = ids[-1]


def _batch_records(
    session: Session, cid: int, in_campaign: list[int], with_raw: bool
) -> list[dict[str, Any]]:
    """The records of these videos (at most a batch: one bounded IN list per query)."""
    query = select(Video).where(Video.id.in_(in_campaign)).order_by(Video.id)
    if not with_raw:
        query = query.options(defer(Video.raw, raiseload=True))
    videos = session.scalars(query).all()
    downloads = {
        d.video_id: d
        for d in session.scalars(select(Download).where(Download.video_id.in_(in_campaign)))
    }
    media = {
        m.video_id: m
        for m in session.scalars(select(MediaInfo).where(MediaInfo.video_id.in_(in_campaign)))
    }
    frames = dict(
        session.execute(
            select(Frame.video_id, func.count())
            .where(Frame.video_id.in_(in_campaign))
            .group_by(Frame.video_id)
        ).all()
    )
    transcripts = _latest(
        session.execute(
            select(
                Transcript.id,
                Transcript.video_id,
                Transcript.engine,
                Transcript.model,
                Transcript.settings_hash,
                Transcript.status,
                Transcript.language,
                Transcript.language_probability,
                Transcript.text,
                Transcript.is_empty,
                Transcript.created_at,
            ).where(Transcript.video_id.in_(in_campaign))
        ).all(),
        key=lambda t: (
            t.video_id,
            TIKTOK_ENGINE if t.engine == TIKTOK_ENGINE else WHISPER_ENGINE,
        ),
    )
    annotations = _latest(
        session.execute(
            select(
                Annotation.id,
                Annotation.video_id,
                Annotation.kind,
                Annotation.status,
                Annotation.value,
                Annotation.model,
                Annotation.prompt_id,
                Annotation.prompt_hash,
                Annotation.is_sandbox,
                Annotation.created_at,
            ).where(
                Annotation.video_id.in_(in_campaign),
                Annotation.kind != AnnotationKind.watch_match,
            )
        ).all(),
        key=lambda a: (a.video_id, str(a.kind)),
    )
    records = [
        _record(
            v,
            downloads.get(v.id),
            media.get(v.id),
            frames.get(v.id, 0),
            transcripts,
            annotations,
        )
        for v in videos
    ]
    add_human_codes(session, cid, records)
    return records


def _record(
    v: Video,
    d: Download | None,
    m: MediaInfo | None,
    frames: int,
    transcripts: dict,
    annotations: dict,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "video_id": v.id,
        "is_sandbox": bool((v.extra_fields or {}).get(SANDBOX_RECORD_MARK)),
        "created_at": v.created_at,
        "create_date": v.created_at.date() if v.created_at else None,
        "username": v.username,
        "region_code": v.region_code,
        "video_description": v.video_description,
        "hashtags": [str(h) for h in (v.hashtag_names or [])],
        "mentions": [str(u) for u in (v.video_mention_list or [])],
        "view_count": v.view_count,
        "like_count": v.like_count,
        "comment_count": v.comment_count,
        "share_count": v.share_count,
        "favorites_count": v.favorites_count,
        "music_id": v.music_id,
        "video_duration": v.video_duration,
        "is_stem_verified": v.is_stem_verified,
        "first_seen_at": v.first_seen_at,
        "last_seen_at": v.last_seen_at,
        "pruned_at": v.pruned_at,
        "pruned_reason": v.pruned_reason,
        "frames_extracted": frames,
        "raw": _raw_json(v.raw) if "raw" not in inspect(v).unloaded else None,
    }
    if d is not None:
        row.update(
            download_status=str(d.status),
            download_attempts=d.attempts,
            download_error=d.last_error,
            media_path=d.path,
            media_bytes=d.bytes,
            media_sha256=d.sha256,
            is_slideshow=d.is_slideshow,
        )
    if m is not None:
        row.update(
            duration_s=m.duration_s,
            fps=m.fps,
            frame_count=m.frame_count,
            width=m.width,
            height=m.height,
            has_audio=m.has_audio,
            video_codec=m.video_codec,
            audio_codec=m.audio_codec,
        )
    w = transcripts.get((v.id, WHISPER_ENGINE))
    if w is not None:
        row.update(
            whisper_transcript=w.text if w.status == "ok" else None,
            whisper_status=w.status,
            whisper_model=w.model,
            whisper_settings_hash=w.settings_hash,
            whisper_language=w.language,
            whisper_language_probability=w.language_probability,
            whisper_is_empty=w.is_empty,
        )
    t = transcripts.get((v.id, TIKTOK_ENGINE))
    if t is not None and t.status == "ok" and t.text:
        row.update(tiktok_transcript=t.text, tiktok_transcript_model=t.model)
    elif v.voice_to_text:
        row.update(
            tiktok_transcript=v.voice_to_text, tiktok_transcript_model="research-api voice_to_text"
        )
    for kind in ANNOTATION_KINDS:
        a = annotations.get((v.id, kind))
        if a is None:
            continue
        row["is_sandbox"] = row["is_sandbox"] or bool(a.is_sandbox)
        row.update(
            {
                f"{kind}_status": str(a.status),
                f"{kind}_model": a.model,
                f"{kind}_prompt": f"{a.prompt_id}@{a.prompt_hash[:12]}",
            }
        )
        value = a.value if str(a.status) == "ok" else None
        if kind == "description":
            row["description"] = _value(value, "description", "text")
            # The description prompt answers the on-screen text too (GET-Tok asked for both).
            if (v.id, "onscreen_text") not in annotations:
                row["onscreen_text"] = _value(value, "onscreen_text")
        elif kind == "onscreen_text":
            row["onscreen_text"] = _value(value, "onscreen_text", "text")
        elif kind == "stance":
            row.update(
                stance=_value(value, "label", "stance"),
                stance_confidence=_value(value, "confidence"),
            )
        elif kind == "sentiment":
            row.update(
                sentiment=_value(value, "label", "sentiment"),
                sentiment_confidence=_value(value, "confidence"),
                sentiment_low_confidence=_value(value, "low_confidence"),
            )
        elif kind == "summary":
            row["summary"] = _value(value, "summary", "text")
        elif kind == "summary_check":
            row.update(
                summary_check=_value(value, "label"),
                summary_check_confidence=_value(value, "confidence"),
            )
    return row


def _raw_json(raw: Any) -> str:
    """The payload as JSON text; half of a UTF-16 pair (a text cut mid-emoji) stays the escape
    the API sent, since no file encoding can hold it as a character."""
    text = json.dumps(raw, ensure_ascii=False)
    return LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


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
    records: list[dict[str, Any]],
    *,
    public: bool = False,
    salt: SecretStr | None = None,
    ids: IdPolicy = "keep",
) -> tuple[pl.DataFrame, list[Column], int]:
    """The export table and its columns; public mode drops what may not be published."""
    columns = export_columns(public, salt, ids)
    excluded = 0
    if public:
        # Known gone at any stage (pruned, or found private/removed at download) never goes out.
        kept = [
            r
            for r in records
            if r.get("pruned_at") is None and r.get("download_status") not in ("private", "removed")
        ]
        excluded = len(records) - len(kept)
        records = kept
    rows = []
    for record in records:
        row = {c.name: record.get(c.name) for c in columns}
        if public:
            _make_public(row, record, salt)
        rows.append(row)
    frame = pl.DataFrame(rows, schema={c.name: c.dtype for c in columns}, orient="row")
    return frame, columns, excluded


def _make_public(row: dict[str, Any], record: dict[str, Any], salt: SecretStr | None) -> None:
    """Hash what identifies a person and mask @handles in free text and hashtags."""
    if salt:
        row["user_hash"] = user_hash(record.get("username"), salt)
    if "video_hash" in row:
        row["video_hash"] = video_hash(record["video_id"], salt)
    for name in TEXT_COLUMNS:
        if row.get(name):
            row[name] = mask_mentions(row[name])
    if row.get("hashtags"):
        row["hashtags"] = [mask_mentions(tag) for tag in row["hashtags"]]


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
        for records in record_batches(url, campaign, with_raw=not public):
            frame, _, excluded = export_frame(records, public=public, salt=salt, ids=ids)
            totals["rows"] += frame.height
            totals["excluded"] += excluded
            empty = False
            yield frame
        if empty:  # still a file with the columns
            yield export_frame([], public=public, salt=salt, ids=ids)[0]

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
