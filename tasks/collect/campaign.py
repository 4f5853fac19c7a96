"""A campaign's collection run: its windows one at a time, waiting for the quota if asked, and
what the run did (`CollectResult`)."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import date, datetime

from pydantic import BaseModel, Field, computed_field

from gettok.clients.research_api import ResearchApiClient
from gettok.db import session_scope
from gettok.models.campaign import Campaign
from gettok.models.schema import utcnow
from gettok.settings import Settings
from gettok.stage import StageResult
from gettok.tasks.collect.paging import (
    QUOTA_RESET_MARGIN_S,
    CollectAborted,
    CollectContext,
    CollectPolicies,
    QuotaExhausted,
    WindowOutcome,
    collect_window,
)
from gettok.tasks.collect.store import save_campaign
from gettok.tasks.collect.windows import (
    CollectionWindow,
    collection_windows,
    last_indexed_day,
    next_utc_midnight,
)

log = logging.getLogger(__name__)


class CollectResult(BaseModel):
    """A collect run: what each window did, and whether the run stopped for the day."""

    campaign: str
    start: date
    end: date | None  # None: nothing to collect yet (the index lags)
    windows: list[WindowOutcome] = Field(default_factory=list)
    quota_exhausted: bool = False
    resumes_at: datetime | None = None
    aborted: str | None = None
    deferred_after: date | None = None  # days after this were left for a later run (index lag)

    def _count(self, status: str) -> int:
        return sum(1 for w in self.windows if w.status == status)

    @computed_field
    @property
    def windows_done(self) -> int:
        return self._count("done")

    @computed_field
    @property
    def windows_skipped(self) -> int:
        return self._count("skipped")

    @computed_field
    @property
    def windows_split(self) -> int:
        return self._count("split")

    @computed_field
    @property
    def windows_failed(self) -> int:
        return self._count("failed")

    @computed_field
    @property
    def windows_busy(self) -> int:
        return self._count("busy")

    @computed_field
    @property
    def videos(self) -> int:
        return sum(w.videos for w in self.windows)

    @computed_field
    @property
    def requests(self) -> int:
        return sum(w.requests for w in self.windows)

    @computed_field
    @property
    def state(self) -> str:
        if self.aborted:
            return f"aborted: {self.aborted}"
        if self.quota_exhausted:
            return "quota exhausted, resumes at 00:00 UTC"
        if self.windows_failed:
            return f"incomplete: {self.windows_failed} window(s) failed"
        if self.windows_busy:
            return f"incomplete: {self.windows_busy} window(s) held by another collector"
        return "completed"

    @computed_field
    @property
    def not_indexed(self) -> str | None:
        """What the run left for later because the API has not indexed it yet (its ~48 h lag)."""
        if self.deferred_after is None:
            return None
        return (
            f"days after {self.deferred_after} not yet indexed by the API (it lags ~48 h): "
            "left for a later run"
        )

    def stage_result(self) -> StageResult:
        """Windows collected this run are done; windows already done or held are skipped."""
        failed = {s: self._count(s) for s in ("failed", "quota_exhausted") if self._count(s)}
        notes = [self.state] if self.state != "completed" else []
        notes += [self.not_indexed] if self.not_indexed else []
        return StageResult(
            stage="collect",
            done=self.windows_done + self.windows_split,
            skipped=self.windows_skipped + self.windows_busy,
            failed=failed,
            counts={"videos": self.videos, "requests": self.requests},
            notes=notes,
        )


WindowRunner = Callable[[CollectContext, CollectionWindow], WindowOutcome]


def plan_range(
    campaign: Campaign, start: date | None, end: date | None
) -> tuple[date, date | None, date | None]:
    """The range to collect: defaults from the campaign, the end held back by the index lag."""
    start = start or campaign.start_date
    end = end or campaign.end_date or last_indexed_day()
    deferred = None
    if end > last_indexed_day():
        deferred, end = last_indexed_day(), last_indexed_day()
    return start, (end if end >= start else None), deferred


def collect_campaign(
    settings: Settings,
    campaign: Campaign,
    start: date | None = None,
    end: date | None = None,
    *,
    wait_for_quota: bool = False,
    run_window: WindowRunner = collect_window,
    on_window: Callable[[WindowOutcome], None] | None = None,
    policies: CollectPolicies | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CollectResult:
    """Collect `start`..`end` (inclusive, UTC) for a campaign, one window at a time."""
    start, end, deferred = plan_range(campaign, start, end)
    result = CollectResult(campaign=campaign.name, start=start, end=end, deferred_after=deferred)
    if end is None:
        return result
    url = settings.resolved_database_url
    with session_scope(url) as session:
        campaign_id = save_campaign(session, campaign)
    queue = deque(collection_windows(start, end, settings.window_days))
    with ResearchApiClient.from_settings(settings) as client:
        ctx = CollectContext(
            url,
            client,
            campaign,
            campaign_id,
            policies or CollectPolicies(),
        )
        while queue:
            window = queue.popleft()
            try:
                outcome = run_window(ctx, window)
            except QuotaExhausted as exc:
                outcome = exc.outcome
                if wait_for_quota:
                    resumes_at = next_utc_midnight()
                    wait = (resumes_at - utcnow()).total_seconds() + QUOTA_RESET_MARGIN_S
                    log.warning("%s; waiting %.0fs until %s", exc.reason, wait, resumes_at)
                    _report(result, outcome, on_window)
                    sleep(wait)
                    queue.appendleft(window)
                    continue
                result.quota_exhausted, result.resumes_at = True, next_utc_midnight()
                _report(result, outcome, on_window)
                break
            except CollectAborted as exc:
                result.aborted = exc.reason
                _report(result, exc.outcome, on_window)
                break
            _report(result, outcome, on_window)
            queue.extendleft(reversed(outcome.split_into))
    return result


def _report(result: CollectResult, outcome: WindowOutcome, on_window) -> None:
    result.windows.append(outcome)
    if on_window:
        on_window(outcome)
