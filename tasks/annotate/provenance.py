"""The provenance chain: which transcript and frames an annotation was made from, and whether
they are still the video's current ones.

An annotation records the transcript it read (id and text SHA-256) and the lowest id of the
frames it read. It is stale once the video's current input differs: a newer Whisper transcript
(re-transcribed with another model), TikTok's transcript edited, a Whisper transcript arriving
where TikTok's was read, or frames extracted anew (new rows, new ids). Stale rows are kept (their
human codes stay valid for what they labelled) but are not exported, and the next enrich makes
a fresh row beside them (`inputs_key` keeps the two apart in the unique key).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import and_, exists, not_, or_
from sqlalchemy.orm import aliased

from gettok.models.schema import Annotation, Frame, Transcript

WHISPER_ENGINE = "faster-whisper"


def usable_current(transcript) -> list:
    """A transcript annotations may read: its engine's current one, ok, with words."""
    return [
        transcript.is_current.is_(True),
        transcript.status == "ok",
        transcript.is_empty.is_(False),
        transcript.text.is_not(None),
        transcript.text != "",
    ]


def current_transcript_exists(video_id_column):
    """The video has a transcript annotations can read (Whisper's, else TikTok's)."""
    t = aliased(Transcript)
    return exists().where(t.video_id == video_id_column, *usable_current(t))


def _transcript_is_current(annotation):
    """The transcript the annotation read is the one annotations read now, text unchanged:
    the current Whisper transcript, or TikTok's when there is no usable Whisper one. Each EXISTS
    sits directly under the annotation's query (one level of correlation, never nested)."""

    def read(whisper: bool):
        t = aliased(Transcript)
        engine = t.engine == WHISPER_ENGINE if whisper else t.engine != WHISPER_ENGINE
        return exists().where(
            t.id == annotation.transcript_id,
            t.text_sha256 == annotation.transcript_sha256,
            engine,
            *usable_current(t),
        )

    other = aliased(Transcript)
    whisper_usable = exists().where(
        other.video_id == annotation.video_id,
        other.engine == WHISPER_ENGINE,
        *usable_current(other),
    )
    return or_(read(True), and_(read(False), not_(whisper_usable)))


def _frames_are_current(annotation):
    """The frames it read are still there, or the video has no frames at all now (pruned)."""
    read, any_frame = aliased(Frame), aliased(Frame)
    return or_(
        annotation.first_frame_id.is_(None),
        exists().where(read.id == annotation.first_frame_id),
        not_(exists().where(any_frame.video_id == annotation.video_id)),
    )


def is_stale(annotation=Annotation):
    """SQL: the annotation was made from a transcript or frames that are no longer current."""
    return or_(
        and_(annotation.transcript_id.is_not(None), not_(_transcript_is_current(annotation))),
        not_(_frames_are_current(annotation)),
    )


def inputs_key(
    transcript_id: int | None, transcript_sha256: str | None, first_frame_id: int | None
) -> str:
    """A short key of the inputs, part of the annotation's unique key ('' when it read none)."""
    if transcript_id is None and first_frame_id is None:
        return ""
    text = f"transcript={transcript_id}:{transcript_sha256}|first_frame={first_frame_id}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]
