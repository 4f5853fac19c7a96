"""The export as it was built before streaming (one Python record per video), kept as the oracle
the streamed, column-wise table must equal on the test datasets. Not used by gettok itself."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl
from pydantic import SecretStr
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, defer

from gettok.db import session_scope
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
from gettok.tasks.annotate.provenance import is_stale
from gettok.tasks.export.columns import ANNOTATION_KINDS, TEXT_COLUMNS, Column
from gettok.tasks.export.dataset import (
    IdPolicy,
    campaign_id,
    export_columns,
    mask_mentions,
    user_hash,
    video_hash,
)
from gettok.tasks.validate.store import human_codes
from tests import export_chain_reference as chain

BATCH = 5000
WHISPER_ENGINE = "faster-whisper"
TIKTOK_ENGINE = "tiktok"


def add_human_codes(session: Session, campaign_id: int, records: list[dict[str, Any]]) -> None:
    """Set `validated` and `human_<kind>` on each exported record, in place."""
    from gettok.tasks.validate.score import majority_code

    latest: dict[int, dict[str, dict[str, str | None]]] = defaultdict(lambda: defaultdict(dict))
    for video_id, kind, coder, label in human_codes(session, campaign_id):  # oldest first
        latest[video_id][kind][coder] = label
    for record in records:
        kinds = latest.get(record["video_id"], {})
        codes = {kind: majority_code(by_coder) for kind, by_coder in kinds.items()}
        record["validated"] = any(code is not None for code in codes.values())
        record.update({f"human_{kind}": code for kind, code in codes.items()})


def _latest(rows, key: Callable[[Any], Any], rank: Callable[[Any], tuple] | None = None) -> dict:
    """The newest row per key, preferring ok rows over failed ones (or by `rank`)."""
    best: dict = {}
    for row in rows:
        k = key(row)
        rank_of = rank(row) if rank else (row.status == "ok", row.created_at, row.id)
        if k not in best or rank_of > best[k][0]:
            best[k] = (rank_of, row)
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
                Transcript.detected_language,
                Transcript.language_source,
                Transcript.text_sha256,
                Transcript.is_current,
            ).where(Transcript.video_id.in_(in_campaign))
        ).all(),
        key=lambda t: (
            t.video_id,
            TIKTOK_ENGINE if t.engine == TIKTOK_ENGINE else WHISPER_ENGINE,
        ),
        rank=chain.transcript_rank,
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
                Annotation.transcript_id,
            ).where(
                Annotation.video_id.in_(in_campaign),
                Annotation.kind != AnnotationKind.watch_match,
                ~is_stale(Annotation),  # made from an old transcript or frames: not exported
            )
        ).all(),
        key=lambda a: (a.video_id, str(a.kind)),
    )
    names = chain.transcript_names(session, {a.transcript_id for a in annotations.values()})
    languages = chain.text_languages(session, in_campaign)
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
    for record, v in zip(records, videos, strict=True):
        chain.add_chain(record, v, transcripts, annotations, names, languages)
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
