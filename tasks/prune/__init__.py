"""Prune (compliance): delete what authors made private or removed, as the API terms require.

Re-reads the tiktok.com page of every video of the campaign that is due (files or not); only an
explicit "private" or "removed" deletes its media files, frames, transcripts and annotations. A
video another stage already found private or removed is pruned without a page read. Records
`videos.pruned_at` and `pruned_reason`, the download's status, and a `prune_records` row listing
what was deleted (open while its files are being deleted); an undecided page deletes nothing.
"""

from gettok.tasks.prune.compliance import (
    PageCheck,
    PruneResult,
    check_page,
    finish_pruned,
    prune_video,
    prune_videos,
)
from gettok.tasks.prune.store import known_gone, pending_videos, unfinished

__all__ = [
    "PageCheck",
    "PruneResult",
    "check_page",
    "finish_pruned",
    "known_gone",
    "pending_videos",
    "prune_video",
    "prune_videos",
    "unfinished",
]
