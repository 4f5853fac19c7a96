"""Frames: keep 1 of every N frames of each downloaded video (or a slideshow's photos) as JPEGs.

Records the frames (`frames`, one row per kept image, with the settings that chose it) and one
`frame_extractions` row per video: `ok` with the count, or `failed` with the reason (not_mp4,
truncated, missing, bad_path, no_video_stream, undecodable, no_images) and the settings hash.
"""

from gettok.lazy_exports import lazy_exports

# Public names, read from their modules on first use: the dry run reads the frames' store, and
# the commands that need no orchestration must not import the batch's Prefect task.
_HOMES = {
    "FRAMES_BATCH": "campaign",
    "extract_campaign_frames": "campaign",
    "extract_frames_batch": "campaign",
    "FramesResult": "extract",
    "extract_frames": "extract",
    "frame_settings": "extract",
    "pending_videos": "store",
}

__getattr__ = lazy_exports(__name__, _HOMES)


__all__ = [
    "FRAMES_BATCH",
    "FramesResult",
    "extract_campaign_frames",
    "extract_frames",
    "extract_frames_batch",
    "frame_settings",
    "pending_videos",
]
