"""A campaign's pending videos through Whisper, a page of `transcription_task_videos` at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable

from gettok import watermarks
from gettok.settings import Settings
from gettok.tasks.transcribe import store
from gettok.tasks.transcribe.transcriber import TranscribeResult
from gettok.tasks.transcribe.whisper import WhisperOptions

STAGE = "transcribe"

BatchRunner = Callable[[list[int], Settings, WhisperOptions, bool], TranscribeResult]


def transcribe_campaign(
    settings: Settings,
    options: WhisperOptions,
    campaign_name: str,
    run_batch: BatchRunner,
    *,
    retry_failed: bool = False,
    limit: int | None = None,
    log: logging.Logger | logging.LoggerAdapter | None = None,
) -> TranscribeResult:
    """Up to `limit` pending videos in id order, each page read once the batch before it is done;
    a video that fails stays pending for a later run, never for this one (keyset pages)."""
    log = log or logging.getLogger(__name__)
    url = settings.resolved_database_url
    size = settings.transcription_task_videos
    sweep = watermarks.begin(
        url, campaign_name, STAGE, store.fingerprint(options), whole=retry_failed
    )
    pages = store.pending_pages(
        url, options, campaign_name, size, retry_failed=retry_failed, limit=limit, sweep=sweep
    )
    result, number = TranscribeResult(), 0
    for number, page in enumerate(pages, 1):
        batch = run_batch(page, settings, options, retry_failed)
        result = result.merge(batch)
        log.info("batch %d (%d videos so far): %s", number, pages.read, batch.summary())
    watermarks.finish_downstream(sweep, pages, lambda ids: store.still_pending(url, options, ids))
    # Read by people and by the crash trials (tests/chaos_trials.py), which sum these counts.
    log.info(
        "%d videos to transcribe with %s, in %d batches", pages.read, options.model_name, number
    )
    return result
