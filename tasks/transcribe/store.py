"""Every query of the transcribe stage: what is pending, and one `transcripts` row per outcome.

A row is keyed by video, engine, model and settings hash: a rerun with the same settings finds
nothing pending; other settings make a new row, never overwrite one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from gettok import db, watermarks
from gettok.keyset import id_bounds, inner_bounds
from gettok.membership import campaign_videos
from gettok.models.schema import Download, DownloadStatus, MediaInfo, Transcript, Video, utcnow
from gettok.tasks.transcribe.audio import AudioError
from gettok.tasks.transcribe.whisper import ClipTranscript, WhisperOptions, is_near_empty
from gettok.tasks.transcribe.whisper_model import resolve_device

log = logging.getLogger(__name__)

WHISPER_ENGINE = "faster-whisper"
TIKTOK_ENGINE = "tiktok"
TIKTOK_MODEL = "research-api voice_to_text"


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]


def _has_audio_source():
    return or_(
        and_(Download.status == DownloadStatus.ok, Download.path.is_not(None)),
        and_(Download.status == DownloadStatus.slideshow, Download.audio_path.is_not(None)),
    )


def _transcribed(
    options: WhisperOptions, retry_failed: bool, after: int | None = None, until: int | None = None
):
    clauses = [
        Transcript.video_id == Download.video_id,
        *inner_bounds(after, until, Transcript.video_id),  # read only this page's range of them
        Transcript.engine == WHISPER_ENGINE,
        Transcript.model == options.model_name,
        Transcript.settings_hash == settings_hash(options.provenance()),
    ]
    if retry_failed:
        clauses.append(Transcript.status == "ok")
    return exists().where(*clauses)


def pending_videos(
    url: str,
    options: WhisperOptions,
    campaign_name: str | None = None,
    *,
    video_ids: list[int] | None = None,
    retry_failed: bool = False,
    limit: int | None = None,
    after: int | None = None,
    until: int | None = None,
) -> list[int]:
    """Downloaded videos (or slideshows with sound) without a transcript for these settings, in
    id order (ids in (after, until] only: keyset pages, see `pending_pages`)."""
    stmt = _pending(options, campaign_name, video_ids, retry_failed, after, until)
    with db.session_scope(url) as session:
        return list(session.scalars(stmt.order_by(Download.video_id).limit(limit)))


def still_pending(url: str, options: WhisperOptions, video_ids: list[int]) -> list[int]:
    """Which of `video_ids` (a campaign's members) a run still has to transcribe: what a pass
    left, which keeps the stage's watermark before it (a failed one is done unless retried)."""
    with db.session_scope(url) as session:
        return list(session.scalars(_pending(options, None, video_ids, False, None, None)))


def _pending(options, campaign_name, video_ids, retry_failed, after, until):
    stmt = (
        select(Download.video_id)
        .join(Video, Video.id == Download.video_id)
        .where(
            _has_audio_source(),
            Video.pruned_at.is_(None),
            ~_transcribed(options, retry_failed, after, until),
        )
    )
    if campaign_name is not None:
        members = campaign_videos(campaign_name, after=after, until=until)
        stmt = stmt.where(Download.video_id.in_(members))
    if video_ids is not None:
        stmt = stmt.where(Download.video_id.in_(video_ids))
    return stmt.where(*id_bounds(after, until, Download.video_id, Video.id))


def pending_pages(
    url: str,
    options: WhisperOptions,
    campaign_name: str | None,
    size: int,
    *,
    retry_failed: bool = False,
    limit: int | None = None,
    sweep: watermarks.Sweep | None = None,
) -> watermarks.SweepPages:
    """What `pending_videos` lists, `size` ids at a time, each page read when the previous one
    is done, the campaign's ids looked at a range at a time (`in_id_ranges`); past the
    stage's watermark, only among the members downloaded or collected since (`sweep`)."""

    def between(after: int | None, until: int, n: int) -> list[int]:
        return pending_videos(
            url,
            options,
            campaign_name,
            retry_failed=retry_failed,
            limit=n,
            after=after,
            until=until,
        )

    def among(ids: list[int], n: int) -> list[int]:  # members already: no campaign to join
        return pending_videos(url, options, video_ids=ids, retry_failed=retry_failed, limit=n)

    return watermarks.downstream_pages(url, sweep, campaign_name, between, among, size, limit)


def fingerprint(options: WhisperOptions) -> str:
    """What a transcript row is keyed by besides its video: the stage's watermark is per this."""
    return settings_hash({"model": options.model_name, "settings": options.provenance()})


# --- what a batch reads ----------------------------------------------------------------------


def media_file(media_dir: Path, download: Download) -> Path:
    """The file whose sound we transcribe: the mp4, or a slideshow's audio track."""
    relative = download.path if download.status == DownloadStatus.ok else download.audio_path
    path = (media_dir / str(relative)).resolve()
    if not path.is_relative_to(media_dir.resolve()):
        raise AudioError(f"media path {relative!r} is outside the media directory")
    return path


def downloads_of(url: str, ids: list[int]) -> dict[int, Download]:
    with db.session_scope(url) as session:
        return {
            d.video_id: d
            for d in session.scalars(select(Download).where(Download.video_id.in_(ids)))
        }


def probed_durations(url: str, ids: list[int]) -> dict[int, float]:
    with db.session_scope(url) as session:
        rows = session.execute(
            select(MediaInfo.video_id, MediaInfo.duration_s).where(
                MediaInfo.video_id.in_(ids), MediaInfo.duration_s.is_not(None)
            )
        )
        return {video_id: duration for video_id, duration in rows}


# --- the outcome -------------------------------------------------------------------------


def _row_values(options: WhisperOptions) -> dict:
    provenance = options.provenance()
    device, compute_type = resolve_device(options.device, options.compute_type)
    return {
        "engine": WHISPER_ENGINE,
        "model": options.model_name,
        "settings": provenance | {"device": device, "compute_type": compute_type},
        "settings_hash": settings_hash(provenance),
    }


def _upsert(url: str, video_id: int, values: dict, make_current: bool = False) -> None:
    """Insert the row, or update the (failed) one a `retry_failed` run is replacing; an ok one
    replaces the video's current transcript of its engine."""
    key = (
        Transcript.video_id == video_id,
        Transcript.engine == values["engine"],
        Transcript.model == values["model"],
        Transcript.settings_hash == values["settings_hash"],
    )
    try:
        with db.session_scope(url) as session:
            row = session.scalar(select(Transcript).where(*key))
            if row is None:
                session.add(Transcript(video_id=video_id, **values))
            else:
                for name, value in values.items():
                    setattr(row, name, value)
                row.created_at = utcnow()
            if make_current:
                session.flush()
                set_current(session, video_id, values["engine"], row_id_of(session, key))
    except IntegrityError:  # another worker wrote it first: theirs stands
        log.info("transcript of %s already recorded by another worker", video_id)


def text_sha256(text: str | None) -> str | None:
    """What annotations and comparisons name a transcript's text by."""
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_transcript(
    url: str, video_id: int, options: WhisperOptions, clip: ClipTranscript
) -> None:
    """The new transcript becomes the video's current Whisper one; older ones stay (history)."""
    _upsert(url, video_id, _row_values(options) | {
        "status": "ok",
        "error": None,
        "language": clip.language,
        "language_probability": clip.language_probability,
        "detected_language": clip.detected_language,
        "language_source": clip.language_source,
        "text": clip.text,
        "text_sha256": text_sha256(clip.text),
        "segments": [s.model_dump() for s in clip.segments],
        "duration_s": clip.duration_s,
        "is_empty": clip.is_empty,
    }, make_current=True)  # fmt: skip


def row_id_of(session: Session, key) -> int:
    return session.scalar(select(Transcript.id).where(*key))


def set_current(session: Session, video_id: int, engine: str, transcript_id: int) -> None:
    """Make this transcript the video's current one of its engine (annotations read it)."""
    same = (Transcript.video_id == video_id, Transcript.engine == engine)
    session.execute(
        update(Transcript).where(*same, Transcript.id != transcript_id).values(is_current=False)
    )
    session.execute(
        update(Transcript).where(Transcript.id == transcript_id).values(is_current=True)
    )


def make_current(url: str, options: WhisperOptions, campaign_name: str) -> int:
    """Make the campaign's existing ok transcripts of these settings current again (a return to
    an earlier model); returns how many changed."""
    rows = select(Transcript.id, Transcript.video_id).where(
        Transcript.engine == WHISPER_ENGINE,
        Transcript.model == options.model_name,
        Transcript.settings_hash == settings_hash(options.provenance()),
        Transcript.status == "ok",
        Transcript.is_current.is_(False),
        Transcript.video_id.in_(campaign_videos(campaign_name)),
    )
    with db.session_scope(url) as session:
        found = session.execute(rows).all()
        for transcript_id, video_id in found:
            set_current(session, video_id, WHISPER_ENGINE, transcript_id)
    return len(found)


def record_failure(url: str, video_id: int, options: WhisperOptions, error: str) -> str:
    error = error[:2000]
    _upsert(url, video_id, _row_values(options) | {
        "status": "failed", "error": error, "language": None, "language_probability": None,
        "text": None, "text_sha256": None, "segments": None, "duration_s": None,
        "is_empty": False, "detected_language": None, "language_source": None,
        "is_current": False,
    })  # fmt: skip
    log.warning("video %s not transcribed: %s", video_id, error)
    return error


# --- TikTok's own transcripts --------------------------------------------------------------


TIKTOK_STAGE = "tiktok-transcripts"


def record_tiktok_transcripts(url: str, campaign_name: str | None = None) -> int:
    """Copy `voice_to_text` into `transcripts` (engine "tiktok"); returns the rows changed.

    A campaign's copy past its watermark reads only the members collected or seen again since
    (the collector writes `voice_to_text` and `last_seen_at` together)."""
    sweep = watermarks.begin(url, campaign_name, TIKTOK_STAGE, "")
    if sweep is None or sweep.whole:
        changed = _copy_tiktok(url, campaign_name, None)
    else:
        seen = watermarks.ready_since(url, sweep.campaign_id, sweep.since, *SEEN)
        changed = sum(_copy_tiktok(url, None, chunk) for chunk in watermarks.chunks(seen))
    watermarks.finish(sweep, None)  # every text it read is copied: nothing is left
    return changed


SEEN = (Video.id, Video.last_seen_at)  # when the collector last wrote a video's fields


def _copy_tiktok(url: str, campaign_name: str | None, video_ids: list[int] | None) -> int:
    """The copy for a campaign's videos (all videos when None), or for `video_ids` only."""
    stmt = select(Video.id, Video.voice_to_text, Video.video_duration).where(
        Video.voice_to_text.is_not(None), Video.voice_to_text != ""
    )
    if campaign_name is not None:
        stmt = stmt.where(Video.id.in_(campaign_videos(campaign_name)))
    if video_ids is not None:
        stmt = stmt.where(Video.id.in_(video_ids))
    provenance = {"engine": TIKTOK_ENGINE, "source": "research-api", "field": "voice_to_text"}
    digest = settings_hash(provenance)
    changed = 0
    stored = aliased(Transcript)
    # Only videos whose stored copy may differ: a run with nothing new reads nothing, not every
    # transcript of the campaign (a text with NULs or edge spaces is compared again in Python).
    stmt = stmt.outerjoin(
        stored, (stored.video_id == Video.id) & (stored.engine == TIKTOK_ENGINE)
    ).where(stored.id.is_(None) | (stored.text != Video.voice_to_text))
    with db.session_scope(url) as session:
        for video_id, raw, duration, row_id in session.execute(
            stmt.add_columns(stored.id).order_by(Video.id)
        ).all():
            text = raw.replace("\x00", "").strip()
            row = session.get(Transcript, row_id) if row_id is not None else None
            if row is not None and row.text == text:
                continue
            if row is None:
                row = Transcript(video_id=video_id, engine=TIKTOK_ENGINE, model=TIKTOK_MODEL,
                                 settings=provenance, settings_hash=digest,
                                 is_current=True)  # fmt: skip
                session.add(row)
            row.status, row.text, row.duration_s = "ok", text, duration
            row.text_sha256 = text_sha256(text)
            row.is_empty, row.segments = is_near_empty(text), None
            changed += 1
    return changed
