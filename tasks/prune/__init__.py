"""Prune (compliance): delete what authors made private or removed, as the API terms require.

Re-reads each stored video's tiktok.com page; only an explicit "private" or "removed" deletes its
media files and frames. Records `videos.pruned_at` and `pruned_reason`, the download's status, and
a `prune_records` row listing what was deleted; an undecided page deletes nothing (checked again).
"""

from gettok.tasks.prune.compliance import (
    PageCheck,
    PruneResult,
    check_page,
    prune_video,
    prune_videos,
)
from gettok.tasks.prune.store import pending_videos

__all__ = [
    "PageCheck",
    "PruneResult",
    "check_page",
    "pending_videos",
    "prune_video",
    "prune_videos",
]
