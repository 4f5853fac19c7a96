"""Frames: keep 1 of every N frames of each downloaded video (or a slideshow's photos) as JPEGs.

Records the frames (`frames`, one row per kept image, with the settings that chose it) and one
`frame_extractions` row per video: `ok` with the count, or `failed` with the reason (not_mp4,
truncated, missing, bad_path, no_video_stream, undecodable, no_images) and the settings hash.
"""

from gettok.tasks.frames.campaign import (
    FRAMES_BATCH,
    extract_campaign_frames,
    extract_frames_batch,
)
from gettok.tasks.frames.extract import FramesResult, extract_frames, frame_settings
from gettok.tasks.frames.store import pending_videos

__all__ = [
    "FRAMES_BATCH",
    "FramesResult",
    "extract_campaign_frames",
    "extract_frames",
    "extract_frames_batch",
    "frame_settings",
    "pending_videos",
]
