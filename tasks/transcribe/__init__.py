"""Transcribe: every downloaded video's speech by Whisper, beside TikTok's own transcript.

Records one `transcripts` row per video, engine, model and settings hash (status ok or failed,
`is_empty` for silence and music, the settings as provenance, Whisper's detected language and
what decided the language); TikTok's `voice_to_text` is kept as engine "tiktok". The newest ok
row of an engine is the video's current one; older ones stay as history. Every transcript's and
caption's language is also identified from its text (`text_languages`). The model work holds a
slot of a Prefect global concurrency limit.
"""

from gettok.lazy_exports import lazy_exports

# Public names, read from their modules on first use: export and report read the stores and the
# text identifier, and must not import the batch's Prefect tasks.
_HOMES = {
    "TIKTOK_ENGINE": "store",
    "WHISPER_ENGINE": "store",
    "pending_videos": "store",
    "record_tiktok_transcripts": "store",
    "settings_hash": "store",
    "TranscribeResult": "transcriber",
    "ensure_transcription_limit": "transcriber",
    "identify_languages_task": "transcriber",
    "compare_transcripts_task": "transcriber",
    "model_slot": "transcriber",
    "record_tiktok_task": "transcriber",
    "transcribe_batch": "transcriber",
    "transcribe_campaign": "campaign",
    "transcribe_videos": "transcriber",
    "whisper_options": "transcriber",
}

__getattr__ = lazy_exports(__name__, _HOMES)

__all__ = [
    "TIKTOK_ENGINE",
    "WHISPER_ENGINE",
    "TranscribeResult",
    "compare_transcripts_task",
    "ensure_transcription_limit",
    "identify_languages_task",
    "model_slot",
    "pending_videos",
    "record_tiktok_task",
    "record_tiktok_transcripts",
    "settings_hash",
    "transcribe_batch",
    "transcribe_campaign",
    "transcribe_videos",
    "whisper_options",
]
