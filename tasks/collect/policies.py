"""Named retry policies for the Research API's faults: one per kind, each with its own waits.

What happens when a policy gives up (split, restart, fail, stop for the day) is the collect
stage's decision, documented in `tasks/collect.py`.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, Field

from gettok.clients.research_api import ApiFault
from gettok.settings import Settings


class RetryPolicy(BaseModel):
    """Jittered exponential waits for one kind of fault: `retries` more tries, then give up."""

    retries: int = Field(ge=0)
    base_s: float = Field(ge=0)
    max_s: float = Field(ge=0)
    factor: float = 2.0
    jitter: float = Field(0.2, ge=0, lt=1)

    def wait_s(self, retry: int, scale: float = 1.0) -> float:
        wait = min(self.max_s, self.base_s * self.factor ** (retry - 1))
        return wait * scale * (1 + random.uniform(-self.jitter, self.jitter))


class CollectPolicies(BaseModel):
    """One named policy per fault of the Research API, and what giving up leads to."""

    server_error: RetryPolicy = RetryPolicy(retries=4, base_s=5, max_s=60)  # then split/fail
    search_id_expired: RetryPolicy = RetryPolicy(retries=4, base_s=2, max_s=30)  # then restart
    invalid_cursor: RetryPolicy = RetryPolicy(retries=4, base_s=2, max_s=30)  # then fail
    rate_limited: RetryPolicy = RetryPolicy(retries=5, base_s=10, max_s=300)  # then stop the day
    network: RetryPolicy = RetryPolicy(retries=5, base_s=2, max_s=60)  # then fail the window
    max_empty_pages: int = Field(5, ge=1)  # has_more pages with no video, in a row
    max_search_restarts: int = Field(1, ge=0)
    wait_scale: float = Field(1.0, ge=0)  # multiplies every wait; tests use tiny ones

    @classmethod
    def from_settings(cls, settings: Settings) -> CollectPolicies:
        return cls(wait_scale=settings.tiktok_retry_wait_scale)

    def for_fault(self, fault: ApiFault) -> RetryPolicy | None:
        return getattr(self, fault.kind, None) if fault.kind in RETRIED else None


RETRIED = ("server_error", "search_id_expired", "invalid_cursor", "rate_limited", "network")
