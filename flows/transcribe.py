"""Transcription: every downloaded video's speech, by Whisper, beside TikTok's own transcript.

Method: TikTok's `voice_to_text` is kept as it came from the Research API; each downloaded video
(or slideshow sound) without a transcript for the configured model and settings is decoded from
its mp4 and transcribed with faster-whisper in batches that span many clips, in the campaign's
language (see below). Silence and music are kept but flagged empty; undecodable audio is
recorded as a failure. The model work holds a slot of the `gpu` concurrency limit. Whisper
detects each clip's language; the campaign's `language` decides only when detection is unsure
(below GETTOK_WHISPER_LANGUAGE_HINT_BELOW) or with `force_language = true`. Then fastText's
lid.176 identifies the language of every new transcript and caption from its text, and each new
pair of Whisper and TikTok transcripts is compared once (the report reads the stored rows).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import load_campaign
from gettok.retry import DAY
from gettok.settings import get_settings
from gettok.stage import publish
from gettok.tasks.transcribe import (
    TranscribeResult,
    compare_transcripts_task,
    identify_languages_task,
    record_tiktok_task,
    transcribe_batch,
    transcribe_campaign,
    whisper_options,
)


# The model is fetched from the Hugging Face hub on first use; a backlog on CPU runs at about real
# time (90 s a clip), so days for a big campaign. Three days means it hangs.
@flow(name="transcribe", log_prints=False, timeout_seconds=3 * DAY)
def transcribe(
    campaign_file: str,
    retry_failed: bool = False,
    limit: int | None = None,
    model: str | None = None,
) -> TranscribeResult:
    """Transcribe a campaign's pending videos (with `model` instead of GETTOK_WHISPER_MODEL:
    a re-transcription; the new transcripts become current, the old ones stay)."""
    logger = get_run_logger()
    settings = get_settings()
    campaign = load_campaign(Path(campaign_file))
    options = whisper_options(settings, campaign.language, campaign.force_language, model=model)

    result = TranscribeResult(tiktok=record_tiktok_task(settings, campaign.name))
    logger.info("transcribing pending videos with %s", options.model_name)
    result = result.merge(
        transcribe_campaign(
            settings,
            options,
            campaign.name,
            transcribe_batch,
            retry_failed=retry_failed,
            limit=limit,
            log=logger,
        )
    )
    result.text_languages = identify_languages_task(settings, campaign.name)
    result.compared = compare_transcripts_task(settings, campaign.name)

    publish(result.stage_result(), artifact_key("transcribe-result", campaign.name), logger)
    create_markdown_artifact(
        key=artifact_key("transcribe", campaign.name),
        markdown=_report(campaign.name, options.model_name, result),
        description=f"Transcription run of {campaign.name}",
    )
    return result


def _report(name: str, model: str, result: TranscribeResult) -> str:
    failed = "\n".join(f"| {i} | {e[:120]} |" for i, e in list(result.failed.items())[:20])
    return (
        f"# Transcription: {name}\n\nModel `{model}` on {result.device or 'n/a'}: "
        f"{result.summary()}.\n\n"
        + (f"| failed video | error |\n| --- | --- |\n{failed}\n" if failed else "")
    )


if __name__ == "__main__":
    import sys

    print(transcribe(campaign_file=sys.argv[1]).summary())
