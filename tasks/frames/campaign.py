"""A campaign's frames in batches, and the thin Prefect task that runs one batch."""

from __future__ import annotations

from collections.abc import Callable

from prefect import task
from prefect.cache_policies import NO_CACHE

from gettok import watermarks
from gettok.settings import Settings
from gettok.tasks.frames import store
from gettok.tasks.frames.extract import FramesResult, extract_frames, frame_settings

FRAMES_BATCH = 500
STAGE = "frames"

FramesRunner = Callable[..., FramesResult]


def extract_campaign_frames(
    url: str,
    settings: Settings,
    campaign_name: str,
    run_frames: FramesRunner = extract_frames,
    batch_size: int = FRAMES_BATCH,
) -> FramesResult:
    """Frames for the campaign's pending videos, `batch_size` videos per batch in id order, each
    page read once the batch before it is done; a video that fails or that another worker holds
    is not met again in this run (keyset pages)."""
    digest = store.settings_hash(frame_settings(settings))
    sweep = watermarks.begin(url, campaign_name, STAGE, digest)
    pages = store.pending_pages(url, digest, campaign_name, batch_size, sweep)
    total = FramesResult()
    for batch in pages:
        total = total.merge(run_frames(url, settings, batch, len(batch)))
    watermarks.finish_downstream(sweep, pages, lambda ids: store.still_pending(url, digest, ids))
    return total


@task(
    name="extract-frames-batch",
    cache_policy=NO_CACHE,
    task_run_name="extract-frames[{video_ids[0]}..]",
)
def extract_frames_batch(
    database_url: str, settings: Settings, video_ids: list[int], limit: int
) -> FramesResult:
    """Local decoding has nothing worth retrying: failures are recorded per video."""
    return extract_frames(database_url, settings, video_ids, limit)
