"""Transcribe: every downloaded video's speech by Whisper, beside TikTok's own transcript.

Records one `transcripts` row per video, engine, model and settings hash (status ok or failed,
`is_empty` for silence and music, the settings as provenance); TikTok's `voice_to_text` is kept as
engine "tiktok". The model work holds a slot of a Prefect global concurrency limit.
"""

from gettok.tasks.transcribe.store import (
    TIKTOK_ENGINE,
    WHISPER_ENGINE,
    pending_videos,
    record_tiktok_transcripts,
    settings_hash,
)
from gettok.tasks.transcribe.transcriber import (
    TranscribeResult,
    ensure_transcription_limit,
    model_slot,
    record_tiktok_task,
    transcribe_batch,
    transcribe_videos,
    whisper_options,
)

__all__ = [
    "TIKTOK_ENGINE",
    "WHISPER_ENGINE",
    "TranscribeResult",
    "ensure_transcription_limit",
    "model_slot",
    "pending_videos",
    "record_tiktok_task",
    "record_tiktok_transcripts",
    "settings_hash",
    "transcribe_batch",
    "transcribe_videos",
    "whisper_options",
]
