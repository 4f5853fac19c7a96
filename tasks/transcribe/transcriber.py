"""Transcribe downloaded videos with faster-whisper, and keep TikTok's own transcript beside it.

One row per video, engine, model and settings hash in `transcripts`: a rerun with the same settings
finds nothing pending; other settings make a new row, never overwrite. Undecodable audio becomes a
`failed` row (asked again only with `retry_failed`); silence, music and clips without an audio
stream become `is_empty` rows. The model work runs inside a Prefect global concurrency limit
(`gpu` by default), so across all flow runs and workers at most N batches hold the device.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from gettok import claims
from gettok.models.schema import (
    utcnow,
)
from gettok.retry import HOUR, task_retries
from gettok.settings import Settings
from gettok.stage import StageResult
from gettok.tasks.transcribe import store
from gettok.tasks.transcribe.audio import AudioError, decode_clips
from gettok.tasks.transcribe.slot import available as local_slot_available
from gettok.tasks.transcribe.slot import local_slot
from gettok.tasks.transcribe.whisper import ClipTranscript, WhisperOptions, transcribe_clips
from gettok.tasks.transcribe.whisper_model import load_model, resolve_device

log = logging.getLogger(__name__)

STAGE = "transcribe"
WHISPER_ENGINE = "faster-whisper"
TIKTOK_ENGINE = "tiktok"
TIKTOK_MODEL = "research-api voice_to_text"
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
    text_languages: int = 0  # transcripts and captions whose language the text identifier gave
    compared: int = 0  # Whisper/TikTok transcript pairs compared (transcript_comparisons)
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
            text_languages=self.text_languages + other.text_languages,
            compared=self.compared + other.compared,
            audio_s=round(self.audio_s + other.audio_s, 3),
            model_s=round(self.model_s + other.model_s, 3),
            device=other.device or self.device,
            model_sections=self.model_sections + other.model_sections,
        )

    def stage_result(self) -> StageResult:
        """Failed by what broke (audio, model); empty transcripts are done, and counted."""
        failed: dict[str, int] = {}
        for error in self.failed.values():
            kind = error.split(":", 1)[0] if ":" in error else "failed"
            failed[kind] = failed.get(kind, 0) + 1
        return StageResult(
            stage="transcribe",
            done=len(self.done) + len(self.empty),
            skipped=len(self.skipped),
            failed=failed,
            counts={
                "empty": len(self.empty),
                "tiktok transcripts": self.tiktok,
                "text languages": self.text_languages,
                "pairs compared": self.compared,
            },
        )

    def summary(self) -> str:
        speed = f", {self.audio_s / self.model_s:.1f} s audio/s" if self.model_s else ""
        return (
            f"{len(self.done)} transcribed, {len(self.empty)} empty, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped, {self.tiktok} TikTok transcripts{speed}"
        )


def whisper_options(
    settings: Settings,
    language: str | None = None,
    force_language: bool = False,
    model: str | None = None,
) -> WhisperOptions:
    """The transcription settings of a run; `language` is the campaign's hint (None: detect),
    forced with `force_language`; `model` overrides GETTOK_WHISPER_MODEL (a re-transcription)."""
    return WhisperOptions(
        model=model or settings.whisper_model,
        force_language=force_language,
        hint_below=settings.whisper_language_hint_below,
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        beam_size=settings.whisper_beam_size,
        vad=settings.whisper_vad,
        language=language,
        timestamps=settings.whisper_timestamps,
        batch_size=settings.whisper_batch_size,
        cpu_threads=settings.whisper_cpu_threads,
    )


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
def model_slot(limit_name: str | None, slots: int = 1) -> Iterator[None]:
    """Hold one slot of the limit; strict, so a missing limit is an error, not an unbounded run.

    With no Prefect server configured (`gettok run` on one machine) the slot is a lock file of
    `slots` (see slot.py): a temporary server's leases cannot tell a dead holder from a live one.
    """
    if limit_name is None:
        with nullcontext():
            yield
        return
    from prefect.concurrency.sync import concurrency
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url and local_slot_available():
        log.info("waiting for a slot of the %r limit (another run may hold it)", limit_name)
        asked = time.perf_counter()
        with local_slot(limit_name, slots):
            log.info("got the %r slot after %.0f s", limit_name, time.perf_counter() - asked)
            yield
        return

    # Strict: a missing limit fails the run. A renewal hiccup mid-batch does not (the slot's
    # lease is renewed in the background; losing one renewal must not discard an hour of GPU work).
    log.info("waiting for a slot of the %r limit (another transcription may hold it)", limit_name)
    asked = time.perf_counter()
    with concurrency(
        limit_name,
        occupy=1,
        strict=True,
        lease_duration=SLOT_LEASE_S,
        raise_on_lease_renewal_failure=False,
    ):
        log.info("got the %r slot after %.0f s", limit_name, time.perf_counter() - asked)
        yield


# --- one batch -----------------------------------------------------------------------------


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
        with model_slot(limit_name, settings.transcription_concurrency):
            held = claims.claim(url, STAGE, video_ids, lease_s=CLAIM_LEASE_S)
            todo = set(
                store.pending_videos(url, options, video_ids=held, retry_failed=retry_failed)
            )
            result.skipped = [i for i in video_ids if i not in todo]
            clips = _decode(url, settings.resolved_media_dir, [i for i in held if i in todo])
            for video_id, error in list(clips.items()):
                if isinstance(error, AudioError):
                    result.failed[video_id] = store.record_failure(
                        url, video_id, options, f"audio: {error}"
                    )
                    del clips[video_id]
            outcomes = _run_model(list(clips.values()), options, result) if clips else []
        mute = [i for i, o in zip(clips, outcomes, strict=True) if _has_no_audio(o)]
        probed_s = store.probed_durations(url, mute) if mute else {}
        for video_id, outcome in zip(clips, outcomes, strict=True):
            if isinstance(outcome, str):
                result.failed[video_id] = store.record_failure(url, video_id, options, outcome)
                continue
            if not outcome.has_audio:  # no audio stream: the video's probed length
                outcome.duration_s = probed_s.get(video_id, 0.0)
            else:
                result.audio_s = round(result.audio_s + outcome.duration_s, 3)
            store.record_transcript(url, video_id, options, outcome)
            (result.empty if outcome.is_empty else result.done).append(video_id)
    finally:
        claims.release(url, STAGE, held)
    return result


def _has_no_audio(outcome: ClipTranscript | str) -> bool:
    return isinstance(outcome, ClipTranscript) and not outcome.has_audio


def _decode(url: str, media_dir: Path, ids: list[int]) -> dict[int, np.ndarray | AudioError]:
    """Each video's audio, or the reason it has none we can use."""
    downloads = store.downloads_of(url, ids)
    found: dict[int, np.ndarray | AudioError] = {}
    paths: dict[int, Path] = {}
    for video_id in ids:
        try:
            paths[video_id] = store.media_file(media_dir, downloads[video_id])
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


# --- TikTok's own transcripts --------------------------------------------------------------


# --- Prefect tasks -------------------------------------------------------------------------


# Files never fail the task (they get a row); the database or a model that cannot load can.
# 250 videos (transcription_task_videos) on CPU at about real time: hours; 12 h means a hang.
@task(
    name="transcribe-videos",
    cache_policy=NO_CACHE,
    **task_retries("database"),
    timeout_seconds=12 * HOUR,
)
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


@task(name="record-tiktok-transcripts", cache_policy=NO_CACHE, **task_retries("database"))
def record_tiktok_task(settings: Settings, campaign_name: str | None) -> int:
    return store.record_tiktok_transcripts(settings.resolved_database_url, campaign_name)


@task(name="identify-text-languages", cache_policy=NO_CACHE, **task_retries("database"))
def identify_languages_task(settings: Settings, campaign_name: str | None) -> int:
    """The text identifier's language of every new transcript and caption of the campaign."""
    from gettok.tasks.transcribe.text_language import identify_campaign

    return identify_campaign(settings.resolved_database_url, campaign_name)


@task(name="compare-transcripts", cache_policy=NO_CACHE, **task_retries("database"))
def compare_transcripts_task(settings: Settings, campaign_name: str) -> int:
    """Whisper against TikTok for every new pair (stored once; the report reads the sums)."""
    from gettok.tasks.report.comparisons import compare_campaign

    return compare_campaign(settings.resolved_database_url, campaign_name, settings.embedding_model)
