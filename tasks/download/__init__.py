"""Download: each collected video's media from its tiktok.com page (Pyktok), validated before kept.

Records one `downloads` row per video with its status (ok, slideshow, private, removed, invalid,
transient, blocked, age_restricted, unreachable), attempts, last error and when it may be asked
again, how long the same failure has lasted, and the probed media facts (`media_info`). A video
found private or removed is marked pruned (`videos.pruned_at`) as the prune stage marks it.
Files go to `videos/<id>.mp4` and `slides/<id>/` under the media directory.
"""

from gettok.lazy_exports import lazy_exports

# Public names, read from their modules on first use: the frames stage reads `media` (the media
# check), and the commands that need no orchestration must not import the downloader's Prefect task.
_HOMES = {
    "download_batch": "downloader",
    "download_pending": "downloader",
    "download_videos": "downloader",
    "remove_stale_partials": "downloader",
    "DownloadResult": "store",
    "global_backoff_until": "store",
    "pending_videos": "store",
    "transient_due": "store",
}

__getattr__ = lazy_exports(__name__, _HOMES)


__all__ = [
    "DownloadResult",
    "download_batch",
    "download_pending",
    "download_videos",
    "global_backoff_until",
    "pending_videos",
    "remove_stale_partials",
    "transient_due",
]
