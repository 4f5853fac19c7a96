"""Named retry policies for the Research API's faults: one per kind, each with its own waits.

The waits and tries are `gettok.retry` policies (the shared ones where the fault is a shared
kind: server errors, throttles, the network); what happens when a policy gives up (split,
restart, fail, stop for the day) is the collect stage's decision, documented in `paging.py`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from gettok.retry import POLICIES, RetryPolicy

# The API issues "search id invalid or expired" and "invalid cursor" even for ids it just gave
# out; a short wait usually clears them.
PAGING_GLITCH = RetryPolicy(attempts=5, wait_initial_s=2, wait_max_s=30)


class CollectPolicies(BaseModel):
    """One named policy per fault of the Research API, and what giving up leads to."""

    server_error: RetryPolicy = POLICIES["server_error"]  # then split/fail
    search_id_expired: RetryPolicy = PAGING_GLITCH  # then restart
    invalid_cursor: RetryPolicy = PAGING_GLITCH  # then fail
    rate_limited: RetryPolicy = POLICIES["throttle"]  # then stop the day
    network: RetryPolicy = POLICIES["network"]  # then fail the window
    max_empty_pages: int = Field(5, ge=1)  # has_more pages with no video, in a row
    max_search_restarts: int = Field(1, ge=0)
    # Stored videos a search started again leaves out (`narrowing.py`); more: split the window.
    max_excluded_ids: int = Field(1000, ge=0)

    def retried(self) -> dict[str, RetryPolicy]:
        """The policy of each fault kind worth retrying, by `ApiFault.kind`; other faults (401,
        400, the daily quota) are raised at once."""
        return {kind: getattr(self, kind) for kind in RETRIED}


RETRIED = ("server_error", "search_id_expired", "invalid_cursor", "rate_limited", "network")
