"""A daily start with nothing new, through each stage's own entry point (bench/scale.py's
`daily_start`): what a campaign's scheduled run pays before it has any work, past the marks
the last run left (`gettok.watermarks`).

The marks are written as a daily run leaves them: just past the campaign's last change (the
synthetic campaign was built moments ago, within the margin a real mark keeps behind its pass),
with the last whole pass a day ago. The batch runners would do no work; nothing reaches them.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from sqlalchemy import func, select

from gettok import db, watermarks
from gettok.models.schema import (
    Annotation,
    Campaign,
    CampaignVideo,
    Download,
    FrameExtraction,
    StageWatermark,
    Transcript,
    Video,
    utcnow,
)

WATCH_TARGET = ("opencv-orb", "bench-target")


def start_with_nothing_new(url: str) -> dict[str, float]:
    """Seconds of each stage's start (its pending pages read to the end, its mark updated)."""
    from bench.scale_data import scale_campaign
    from gettok.clients.llm_budget import Budget
    from gettok.settings import get_settings
    from gettok.tasks.annotate import store as annotate_store
    from gettok.tasks.annotate.annotator import AnnotateResult, plan_for
    from gettok.tasks.annotate.campaign import annotate_campaign
    from gettok.tasks.download.downloader import download_round
    from gettok.tasks.frames import store as frames_store
    from gettok.tasks.frames.campaign import extract_campaign_frames
    from gettok.tasks.frames.extract import frame_settings
    from gettok.tasks.transcribe import store as transcribe_store
    from gettok.tasks.transcribe import text_language
    from gettok.tasks.transcribe.campaign import transcribe_campaign
    from gettok.tasks.transcribe.whisper import WhisperOptions
    from gettok.tasks.watch.store import unchecked_frames

    os.environ["GETTOK_DATABASE_URL"] = url  # the stages that take settings read it there
    settings, campaign, options = get_settings(), scale_campaign(), WhisperOptions()
    plan = plan_for("summary", campaign, settings)
    digest = frames_store.settings_hash(frame_settings(settings))
    _mark_every_stage(
        url,
        {
            "download": "",
            "transcribe": transcribe_store.fingerprint(options),
            "frames": digest,
            plan.stage: annotate_store.plan_fingerprint(plan, settings.llm_invalid_max_tries),
            "watch": watermarks.fingerprint(*WATCH_TARGET),
            transcribe_store.TIKTOK_STAGE: "",
            text_language.STAGE: text_language.MODEL,
        },
    )
    with db.session_scope(url) as session:
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == "scale"))

    def nothing(*args, **kwargs):
        raise AssertionError("a daily start with nothing new asked for work")

    def retry(url, settings, campaign, kind, video_ids, **kwargs) -> AnnotateResult:
        """The answers the synthetic campaign has asked again: real work, not done here."""
        return AnnotateResult(kind=kind, model=plan.model, prompt_hash=plan.prompt_hash)

    starts = {
        "download": lambda: download_round(url, "scale", settings.download_batch_size, nothing),
        "transcribe": lambda: transcribe_campaign(settings, options, "scale", nothing),
        "frames": lambda: extract_campaign_frames(url, settings, "scale", nothing),
        "annotate": lambda: annotate_campaign(
            campaign, settings, Budget(1.0), kinds=["summary"], run_batch=retry
        ),
        "watch": lambda: sum(1 for _ in unchecked_frames(url, campaign_id, *WATCH_TARGET)),
        "tiktok_transcripts": lambda: transcribe_store.record_tiktok_transcripts(url, "scale"),
        "text_languages": lambda: text_language.identify_campaign(url, "scale"),
    }
    seconds = {}
    for stage, start in starts.items():
        began = time.perf_counter()
        start()
        seconds[stage] = round(time.perf_counter() - began, 3)
    return seconds


def _mark_every_stage(url: str, fingerprints: dict[str, str]) -> None:
    """Each stage's mark just past the campaign's last change, its last whole pass a day ago."""
    with db.session_scope(url) as session:
        times = [
            session.scalar(select(func.max(column)))
            for column in (
                CampaignVideo.first_seen_at,
                Video.last_seen_at,
                Download.updated_at,
                Transcript.created_at,
                FrameExtraction.recorded_at,
                Annotation.created_at,
            )
        ]
        last = max(t for t in times if t is not None)
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == "scale"))
        for stage, fingerprint in fingerprints.items():
            session.merge(
                StageWatermark(
                    campaign_id=campaign_id,
                    stage=stage,
                    fingerprint=fingerprint,
                    mark=last + timedelta(microseconds=1),
                    walked_at=utcnow() - timedelta(days=1),
                )
            )
