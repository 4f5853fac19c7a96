"""The per-record reference of what the export adds from the provenance chain and the text
identifier: which transcript each annotation was made from, and the language of each transcript
and caption from its text (the streamed export must agree with it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gettok.models.schema import TextLanguage, Transcript
from gettok.tasks.transcribe.text_language import CAPTION, MODEL, sha256

TRANSCRIPT_KINDS = ("stance", "sentiment", "summary")  # the kinds that read a transcript
WHISPER_ENGINE = "faster-whisper"
TIKTOK_ENGINE = "tiktok"


def transcript_rank(row) -> tuple:
    """Which transcript of an engine the export shows: the current one, else the newest ok."""
    return (bool(row.is_current), row.status == "ok", row.created_at, row.id)


def transcript_names(session: Session, ids: set[int]) -> dict[int, str]:
    """'engine model' of each transcript id (annotations name the transcript they read)."""
    if not ids:
        return {}
    rows = session.execute(
        select(Transcript.id, Transcript.engine, Transcript.model).where(Transcript.id.in_(ids))
    )
    return {row_id: f"{engine} {model}" for row_id, engine, model in rows}


def text_languages(session: Session, video_ids: list[int]) -> dict[tuple[int, str, str], Any]:
    """(video, source, text hash) -> language, from the text identifier's rows."""
    rows = session.execute(
        select(
            TextLanguage.video_id,
            TextLanguage.source,
            TextLanguage.text_sha256,
            TextLanguage.language,
        ).where(TextLanguage.video_id.in_(video_ids), TextLanguage.model == MODEL)
    )
    return {(v, source, digest): language for v, source, digest, language in rows}


def caption_language(languages: dict, video_id: int, caption: str | None) -> str | None:
    return languages.get((video_id, CAPTION, sha256(caption or "")))


def annotation_transcript(row: dict[str, Any], kind: str, annotation, names: dict) -> None:
    """The transcript an annotation read, as two columns beside its label."""
    if kind in TRANSCRIPT_KINDS:
        row[f"{kind}_transcript_id"] = annotation.transcript_id
        row[f"{kind}_transcript"] = names.get(annotation.transcript_id)


def add_chain(row: dict[str, Any], v, transcripts, annotations, names, languages) -> None:
    """Languages (Whisper's detection, the text identifier's) and each annotation's transcript."""
    w = transcripts.get((v.id, WHISPER_ENGINE))
    if w is not None and w.status == "ok":
        row["whisper_detected_language"] = w.detected_language
        row["whisper_language_source"] = w.language_source
        row["whisper_text_language"] = languages.get((v.id, w.engine, w.text_sha256))
    t = transcripts.get((v.id, TIKTOK_ENGINE))
    if t is not None and t.status == "ok":
        row["tiktok_text_language"] = languages.get((v.id, t.engine, t.text_sha256))
    row["caption_language"] = caption_language(languages, v.id, v.video_description)
    for kind in TRANSCRIPT_KINDS:
        a = annotations.get((v.id, kind))
        if a is not None:
            annotation_transcript(row, kind, a, names)
