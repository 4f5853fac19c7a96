"""Transcribe downloaded videos with faster-whisper, and keep TikTok's own transcript beside it.

One row per video, engine, model and settings hash in `transcripts`: a rerun with the same settings
finds nothing pending; other settings make a new row, never overwrite. Undecodable audio becomes a
`failed` row (asked again only with `retry_failed`); silence, music and clips without an audio
stream become `is_empty` rows. The model work runs inside a Prefect global concurrency limit
(`gpu` by default), so across all flow runs and workers at most N batches hold the device.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path

import numpy as np
from gettok.models.schema import (
    Download,
    DownloadStatus,
    MediaInfo,
    Transcript,
    Video,
    utcnow,
)
from gettok.tasks.transcribe.whisper import (
    AudioError,
    ClipTranscript,
    WhisperOptions,
    decode_clips,
    is_near_empty,
    load_model,
    resolve_device,
    transcribe_clips,
)
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError

from gettok import claims, db
from gettok.membership import campaign_videos
from gettok.settings import Settings

log = logging.getLogger(__name__)

STAGE = "transcribe"
WHISPER_ENGINE = "faster-whisper"
TIKTOK_ENGINE = "tiktok"
TIKTOK_MODEL = "research-api voice_to_text"
# Files never fail the task (they get a row); the database or a model that cannot load can.
TRANSCRIBE_RETRIES = {"retries": 2, "retry_delay_seconds": [30, 120]}
# A batch of 16 clips of 90 s with large-v3 on CPU fits; claims are taken once the slot is held.
CLAIM_LEASE_S = 3600
# Renewed every 90 s while held (Prefect renews at 3/4); a killed run frees its slot within ~2 min,
# not Prefect's default 5, so a rerun is not kept waiting for the GPU by its own dead predecessor.
SLOT_LEASE_S = 120


class TranscribeResult(BaseModel):
    """What a run did, by outcome; `model_sections` are the wall-clock spans it held the limit."""

    done: list[int] = []  # transcribed, with words
    empty: list[int] = []  # transcribed, flagged empty (silence, music, no audio stream)
    failed: dict[int, str] = {}  # a `failed` row was recorded
    skipped: list[int] = []  # done meanwhile or held by another worker
    tiktok: int = 0  # TikTok transcripts recorded or updated
    audio_s: float = 0.0
    model_s: float = 0.0
    device: str | None = None
    model_sections: list[tuple[datetime, datetime]] = []

    def merge(self, other: TranscribeResult) -> TranscribeResult:
        return TranscribeResult(
            done=self.done + other.done,
            empty=self.empty + other.empty,
            failed=self.failed | other.failed,
            skipped=self.skipped + other.skipped,
            tiktok=self.tiktok + other.tiktok,
            audio_s=round(self.audio_s + other.audio_s, 3),
            model_s=round(self.model_s + other.model_s, 3),
            device=other.device or self.device,
            model_sections=self.model_sections + other.model_sections,
        )

    def summary(self) -> str:
        speed = f", {self.audio_s / self.model_s:.1f} s audio/s" if self.model_s else ""
        return (
            f"{len(self.done)} transcribed, {len(self.empty)} empty, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped, {self.tiktok} TikTok transcripts{speed}"
        )


def whisper_options(settings: Settings, language: str | None = None) -> WhisperOptions:
    """The transcription settings of a run; `language` is the campaign's (None: detect)."""
    return WhisperOptions(
        model=settings.whisper_model,
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        beam_size=settings.whisper_beam_size,
        vad=settings.whisper_vad,
        language=language,
        timestamps=settings.whisper_timestamps,
        batch_size=settings.whisper_batch_size,
        cpu_threads=settings.whisper_cpu_threads,
    )


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]


# --- the concurrency limit -----------------------------------------------------------------


def ensure_transcription_limit(settings: Settings) -> str:
    """Create or resize the global limit the model work runs under (called by `gettok setup`)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            settings.transcription_limit, settings.transcription_concurrency
        )
    return f"concurrency limit {settings.transcription_limit}: {settings.transcription_concurrency}"


@contextmanager
def model_slot(limit_name: str | None) -> Iterator[None]:
    """Hold one slot of the limit; strict, so a missing limit is an error, not an unbounded run."""
    if limit_name is None:
        with nullcontext():
            yield
        return
    from prefect.concurrency.sync import concurrency

    # Strict: a missing limit fails the run. A renewal hiccup mid-batch does not (the slot's
    # lease is renewed in the background; losing one renewal must not discard an hour of GPU work).
    with concurrency(
        limit_name,
        occupy=1,
        strict=True,
        lease_duration=SLOT_LEASE_S,
        raise_on_lease_renewal_failure=False,
    ):
        yield


# --- what is pending -----------------------------------------------------------------------


def _has_audio_source():
    return or_(
        and_(Download.status == DownloadStatus.ok, Download.path.is_not(None)),
        and_(Download.status == DownloadStatus.slideshow, Download.audio_path.is_not(None)),
    )


def _transcribed(options: WhisperOptions, retry_failed: bool):
    clauses = [
        Transcript.video_id == Download.video_id,
        Transcript.engine == WHISPER_ENGINE,
        Transcript.model == options.model,
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
) -> list[int]:
    """Downloaded videos (or slideshows with sound) without a transcript for these settings."""
    stmt = (
        select(Download.video_id)
        .join(Video, Video.id == Download.video_id)
        .where(_has_audio_source(), Video.pruned_at.is_(None), ~_transcribed(options, retry_failed))
    )
    if campaign_name is not None:
        stmt = stmt.where(Download.video_id.in_(campaign_videos(campaign_name)))
    if video_ids is not None:
        stmt = stmt.where(Download.video_id.in_(video_ids))
    with db.session_scope(url) as session:
        return list(session.scalars(stmt.order_by(Download.video_id).limit(limit)))


# --- one batch -----------------------------------------------------------------------------


def media_file(media_dir: Path, download: Download) -> Path:
    """The file whose sound we transcribe: the mp4, or a slideshow's audio track."""
    relative = download.path if download.status == DownloadStatus.ok else download.audio_path
    path = (media_dir / str(relative)).resolve()
    if not path.is_relative_to(media_dir.resolve()):
        raise AudioError(f"media path {relative!r} is outside the media directory")
    return path


def transcribe_videos(
    video_ids: list[int],
    settings: Settings,
    options: WhisperOptions,
    *,
    limit_name: str | None = None,
    retry_failed: bool = False,
) -> TranscribeResult:
    """Transcribe these videos in one shared batch and record a row for each (ok or failed).

    The videos are claimed only once the limit's slot is held, so a batch that waits its turn
    for the GPU holds no claims, and a worker killed mid-batch blocks its videos for one lease.
    """
    url = settings.resolved_database_url
    result = TranscribeResult()
    held: list[int] = []
    try:
        with model_slot(limit_name):
            held = claims.claim(url, STAGE, video_ids, lease_s=CLAIM_LEASE_S)
            todo = set(pending_videos(url, options, video_ids=held, retry_failed=retry_failed))
            result.skipped = [i for i in video_ids if i not in todo]
            clips = _decode(url, settings.resolved_media_dir, [i for i in held if i in todo])
            for video_id, error in list(clips.items()):
                if isinstance(error, AudioError):
                    result.failed[video_id] = _failure(url, video_id, options, f"audio: {error}")
                    del clips[video_id]
            outcomes = _run_model(list(clips.values()), options, result) if clips else []
        mute = [i for i, o in zip(clips, outcomes, strict=True) if _has_no_audio(o)]
        probed_s = _probed_durations(url, mute) if mute else {}
        for video_id, outcome in zip(clips, outcomes, strict=True):
            if isinstance(outcome, str):
                result.failed[video_id] = _failure(url, video_id, options, outcome)
                continue
            if not outcome.has_audio:  # no audio stream: the video's probed length
                outcome.duration_s = probed_s.get(video_id, 0.0)
            else:
                result.audio_s = round(result.audio_s + outcome.duration_s, 3)
            _store(url, video_id, options, outcome)
            (result.empty if outcome.is_empty else result.done).append(video_id)
    finally:
        claims.release(url, STAGE, held)
    return result


def _has_no_audio(outcome: ClipTranscript | str) -> bool:
    return isinstance(outcome, ClipTranscript) and not outcome.has_audio


def _probed_durations(url: str, ids: list[int]) -> dict[int, float]:
    with db.session_scope(url) as session:
        rows = session.execute(
            select(MediaInfo.video_id, MediaInfo.duration_s).where(
                MediaInfo.video_id.in_(ids), MediaInfo.duration_s.is_not(None)
            )
        )
        return {video_id: duration for video_id, duration in rows}


def _decode(url: str, media_dir: Path, ids: list[int]) -> dict[int, np.ndarray | AudioError]:
    """Each video's audio, or the reason it has none we can use."""
    with db.session_scope(url) as session:
        downloads = {
            d.video_id: d
            for d in session.scalars(select(Download).where(Download.video_id.in_(ids)))
        }
    found: dict[int, np.ndarray | AudioError] = {}
    paths: dict[int, Path] = {}
    for video_id in ids:
        try:
            paths[video_id] = media_file(media_dir, downloads[video_id])
        except AudioError as exc:
            found[video_id] = exc
    found.update(zip(paths, decode_clips(list(paths.values())), strict=True))
    return found


def _run_model(
    clips: list[np.ndarray], options: WhisperOptions, result: TranscribeResult
) -> list[ClipTranscript | str]:
    """The whole batch through the model; if the batch fails, clip by clip to keep the rest."""
    started, clock = utcnow(), time.perf_counter()
    try:
        model = load_model(options)
        result.device = resolve_device(options.device, options.compute_type)[0]
        try:
            return list(transcribe_clips(model, clips, options))
        except Exception as exc:  # one clip can break a shared batch: find which one
            log.warning("batch of %d failed (%s); retrying clip by clip", len(clips), exc)
        outcomes: list[ClipTranscript | str] = []
        for clip in clips:
            try:
                outcomes.append(transcribe_clips(model, [clip], options)[0])
            except Exception as exc:
                outcomes.append(f"model: {type(exc).__name__}: {exc}")
        return outcomes
    finally:
        result.model_s = round(result.model_s + time.perf_counter() - clock, 3)
        result.model_sections.append((started, utcnow()))


def _row_values(options: WhisperOptions) -> dict:
    provenance = options.provenance()
    device, compute_type = resolve_device(options.device, options.compute_type)
    return {
        "engine": WHISPER_ENGINE,
        "model": options.model,
        "settings": provenance | {"device": device, "compute_type": compute_type},
        "settings_hash": settings_hash(provenance),
    }


def _upsert(url: str, video_id: int, values: dict) -> None:
    """Insert the row, or update the (failed) one a `retry_failed` run is replacing."""
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
    except IntegrityError:  # another worker wrote it first: theirs stands
        log.info("transcript of %s already recorded by another worker", video_id)


def _store(url: str, video_id: int, options: WhisperOptions, clip: ClipTranscript) -> None:
    _upsert(url, video_id, _row_values(options) | {
        "status": "ok",
        "error": None,
        "language": clip.language,
        "language_probability": clip.language_probability,
        "text": clip.text,
        "segments": [s.model_dump() for s in clip.segments],
        "duration_s": clip.duration_s,
        "is_empty": clip.is_empty,
    })  # fmt: skip


def _failure(url: str, video_id: int, options: WhisperOptions, error: str) -> str:
    error = error[:2000]
    _upsert(url, video_id, _row_values(options) | {
        "status": "failed", "error": error, "language": None, "language_probability": None,
        "text": None, "segments": None, "duration_s": None, "is_empty": False,
    })  # fmt: skip
    log.warning("video %s not transcribed: %s", video_id, error)
    return error


# --- TikTok's own transcripts --------------------------------------------------------------


def record_tiktok_transcripts(url: str, campaign_name: str | None = None) -> int:
    """Copy `voice_to_text` into `transcripts` (engine "tiktok"); returns the rows changed."""
    stmt = select(Video.id, Video.voice_to_text, Video.video_duration).where(
        Video.voice_to_text.is_not(None), Video.voice_to_text != ""
    )
    if campaign_name is not None:
        stmt = stmt.where(Video.id.in_(campaign_videos(campaign_name)))
    provenance = {"engine": TIKTOK_ENGINE, "source": "research-api", "field": "voice_to_text"}
    digest = settings_hash(provenance)
    changed = 0
    with db.session_scope(url) as session:
        existing = {
            t.video_id: t
            for t in session.scalars(
                select(Transcript).where(
                    Transcript.engine == TIKTOK_ENGINE,
                    Transcript.video_id.in_(stmt.with_only_columns(Video.id).scalar_subquery()),
                )
            )
        }
        for video_id, raw, duration in session.execute(stmt):
            text = raw.replace("\x00", "").strip()
            row = existing.get(video_id)
            if row is not None and row.text == text:
                continue
            if row is None:
                row = Transcript(video_id=video_id, engine=TIKTOK_ENGINE, model=TIKTOK_MODEL,
                                 settings=provenance, settings_hash=digest)  # fmt: skip
                session.add(row)
            row.status, row.text, row.duration_s = "ok", text, duration
            row.is_empty, row.segments = is_near_empty(text), None
            changed += 1
    return changed


# --- Prefect tasks -------------------------------------------------------------------------


@task(name="transcribe-videos", cache_policy=NO_CACHE, **TRANSCRIBE_RETRIES)
def transcribe_batch(
    video_ids: list[int], settings: Settings, options: WhisperOptions, retry_failed: bool = False
) -> TranscribeResult:
    """Up to `transcription_task_videos` videos as one Prefect task run (few task runs for a big
    backfill); the model takes `transcription_batch_files` clips at a time, each batch holding the
    gpu slot on its own so other runs can interleave. The database says what is done."""
    result = TranscribeResult()
    size = settings.transcription_batch_files
    for start in range(0, len(video_ids), size):
        result = result.merge(
            transcribe_videos(
                video_ids[start : start + size],
                settings,
                options,
                limit_name=settings.transcription_limit,
                retry_failed=retry_failed,
            )
        )
    return result


@task(
    name="record-tiktok-transcripts", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[10, 60]
)
def record_tiktok_task(settings: Settings, campaign_name: str | None) -> int:
    return record_tiktok_transcripts(settings.resolved_database_url, campaign_name)
