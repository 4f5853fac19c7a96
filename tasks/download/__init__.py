"""Download: each collected video's media from its tiktok.com page (Pyktok), validated before kept.

Records one `downloads` row per video with its status (ok, slideshow, private, removed, invalid,
transient, blocked, age_restricted, unreachable), attempts, last error and when it may be asked
again, how long the same failure has lasted, and the probed media facts (`media_info`). A video
found private or removed is marked pruned (`videos.pruned_at`) as the prune stage marks it.
Files go to `videos/<id>.mp4` and `slides/<id>/` under the media directory.
"""

from gettok.tasks.download.downloader import (
    download_batch,
    download_pending,
    download_videos,
    remove_stale_partials,
)
from gettok.tasks.download.store import (
    DownloadResult,
    global_backoff_until,
    pending_videos,
    transient_due,
)

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
