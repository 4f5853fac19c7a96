"""Collect: every video the Research API returns for the campaign's query, one UTC day at a time.

Records the campaign (`campaigns`), each day's window with its paging checkpoint and status
(`collection_windows`), every video as sent (`videos`, raw payload kept), which campaign found it
(`campaign_videos`), each sighting's engagement counts, records the API sent that cannot be stored
(`rejected_records`, with the reason) and every request against the daily budget (`api_requests`).
"""

from gettok.tasks.collect.campaign import CollectResult, collect_campaign, plan_range
from gettok.tasks.collect.paging import CollectContext, WindowOutcome, collect_window
from gettok.tasks.collect.store import daily_counts
from gettok.tasks.collect.windows import CollectionWindow, collection_windows, last_indexed_day

__all__ = [
    "CollectContext",
    "CollectResult",
    "CollectionWindow",
    "WindowOutcome",
    "collect_campaign",
    "collect_window",
    "collection_windows",
    "daily_counts",
    "last_indexed_day",
    "plan_range",
]
