"""Frames: keep 1 of every N frames of each downloaded video (a slideshow's photos) as JPEGs.

Method: each downloaded video of the campaign without frames is sampled at `frame_every` frames,
at most `frame_max_per_video`, scaled to `frame_max_side`; a video's frames and its
`frame_extractions` row are recorded together, a file that gives none is recorded `failed` with
the reason. A rerun does only what is left.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from gettok.flows.artifact_keys import artifact_key
from gettok.models.campaign import load_campaign
from gettok.settings import get_settings
from gettok.stage import publish
from gettok.tasks.frames import FramesResult, extract_campaign_frames, extract_frames_batch


@flow(name="frames", log_prints=False)
def frames(campaign_file: str) -> FramesResult:
    """Frames for the campaign's downloaded videos that have none yet."""
    settings = get_settings()
    campaign = load_campaign(Path(campaign_file))
    result = extract_campaign_frames(
        settings.resolved_database_url, settings, campaign.name, run_frames=extract_frames_batch
    )
    publish(result.stage_result(), artifact_key("frames-result", campaign.name), get_run_logger())
    return result


if __name__ == "__main__":
    import sys

    print(frames(campaign_file=sys.argv[1]).stage_result().summary())
