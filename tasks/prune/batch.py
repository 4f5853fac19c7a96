"""Batch compliance: ask the Research API which stored videos and comments are still available.

Due ids go out in tasks of up to 10,000 (`research/validation_task/create/`) and each task is
polled (`research/validation_task_status/get/`) until it is done, failed, or this run's wait is
over; a task still open is polled again by the next run (its ids and task id are stored), and
its ids are not page-checked meanwhile. A done task's videos the API calls available are
checked for 15 days; those it calls unavailable are pruned (reason `unavailable`: the API does
not say whether private or removed); those it names neither way stay due, for the page checks.
Comments it calls unavailable are deleted; available ones are checked for 15 days.

Every request goes through the client's ledger: the daily budget holds, and a budget or quota
used up stops the batch phase (open tasks wait for tomorrow; pages are checked meanwhile). An
account without the endpoints (`ComplianceNotOffered`) falls back to page checks for all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field

from gettok.clients.api_faults import ApiFault, DailyQuotaExhausted
from gettok.clients.research_api import ResearchApiClient
from gettok.clients.research_compliance import (
    MAX_TASK_IDS,
    ComplianceNotOffered,
    TaskStatus,
    create_task,
    task_status,
)
from gettok.models.schema import utcnow
from gettok.retry import POLICIES, RetryPolicy, call_with_retries
from gettok.tasks.prune import batch_store, store
from gettok.tasks.prune.compliance import PruneResult, prune_video

log = logging.getLogger(__name__)

TASK_MAX_AGE = timedelta(days=2)  # an open task older than this is given up (its ids are due)
RETRIED = {"server_error": "server_error", "rate_limited": "throttle", "network": "network"}


class BatchOutcome(BaseModel):
    offered: bool = True
    stopped: str = ""  # why the batch phase ended early (quota, a fault), if it did
    result: PruneResult = Field(default_factory=PruneResult)
    tasks_created: int = 0
    tasks_applied: int = 0
    tasks_failed: int = 0
    comments_checked: int = 0
    comments_deleted: int = 0


class BatchRun:
    """One prune run's batch phase; `run()` returns what it decided."""

    def __init__(
        self,
        url: str,
        media_dir: Path,
        client: ResearchApiClient,
        *,
        campaign_id: int | None = None,
        checked_before: datetime | None = None,
        poll_s: float = 30.0,
        wait_s: float = 900.0,
        task_size: int = MAX_TASK_IDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url, self.media_dir, self.client = url, media_dir, client
        self.campaign_id = campaign_id
        self.checked_before = checked_before or utcnow() - timedelta(days=15)
        self.poll_s, self.wait_s, self.task_size = poll_s, wait_s, task_size
        self.sleep, self.clock = sleep, clock
        self.outcome = BatchOutcome()

    def run(self) -> BatchOutcome:
        try:
            self._expire_old()
            self._send("video", self._due_videos())
            self._send("comment", self._due_comments())
            self._poll()
        except ComplianceNotOffered as fault:
            self.outcome.offered, self.outcome.stopped = False, f"not offered: {fault}"
        except DailyQuotaExhausted as fault:
            self.outcome.stopped = f"daily quota: {fault}"
        except ApiFault as fault:  # retries spent: open tasks resume next run
            self.outcome.stopped = f"{fault.kind}: {fault}"
        if self.outcome.stopped:
            log.warning("batch compliance stopped: %s", self.outcome.stopped)
        return self.outcome

    # -- sending -----------------------------------------------------------------------------

    def _expire_old(self) -> None:
        limit = utcnow() - TASK_MAX_AGE
        for task in batch_store.open_tasks(self.url):
            if task.created_at < limit:
                batch_store.close_task(self.url, task.row_id, "expired", error="never finished")

    def _due_videos(self) -> Iterator[list[int]]:
        waiting = batch_store.waiting_ids(self.url, "video")
        after = None
        while rows := store.pending_videos(
            self.url,
            self.campaign_id,
            self.task_size,
            checked_before=self.checked_before,
            after_id=after,
        ):
            after = rows[-1][0]
            ids = [vid for vid, _ in rows if vid not in waiting]
            if ids:
                yield ids

    def _due_comments(self) -> Iterator[list[int]]:
        waiting = batch_store.waiting_ids(self.url, "comment")
        after = None
        while rows := batch_store.due_comments(
            self.url, self.campaign_id, self.checked_before, self.task_size, after
        ):
            after = rows[-1]
            ids = [cid for cid in rows if cid not in waiting]
            if ids:
                yield ids

    def _send(self, category: str, batches: Iterator[list[int]]) -> None:
        for task in batch_store.open_tasks(self.url):  # rows whose create was never answered
            if task.category == category and task.task_id is None:
                self._create(task.row_id, category, task.ids)
        for ids in batches:
            self._create(batch_store.add_task(self.url, category, ids), category, ids)

    def _create(self, row_id: int, category: str, ids: list[int]) -> None:
        try:
            task_id = self._retried(lambda: create_task(self.client, category, ids))
        except ApiFault as fault:  # never created: its ids are page-checked (or sent next run)
            batch_store.close_task(self.url, row_id, "failed", error=f"{fault.kind}: {fault}")
            raise
        batch_store.set_task_id(self.url, row_id, task_id)
        self.outcome.tasks_created += 1

    # -- polling -----------------------------------------------------------------------------

    def _poll(self) -> None:
        """Poll every open task, then wait `poll_s`, doubling each round (each poll spends one
        request of the daily budget: a 15-minute wait costs about 5 rounds, not 30)."""
        deadline, wait = self.clock() + self.wait_s, self.poll_s
        while tasks := [t for t in batch_store.open_tasks(self.url) if t.task_id]:
            for task in tasks:
                status = self._retried(
                    lambda task=task: task_status(self.client, task.task_id, set(task.ids))
                )
                if status.state == "done":
                    self._apply(task, status)
                elif status.state == "failed":
                    batch_store.close_task(self.url, task.row_id, "failed", error="task failed")
                    self.outcome.tasks_failed += 1
            if self.clock() >= deadline:
                self.outcome.stopped = self.outcome.stopped or "tasks still processing: next run"
                return
            if any(t.task_id for t in batch_store.open_tasks(self.url)):
                self.sleep(min(wait, max(0.0, deadline - self.clock())))
                wait *= 2

    def _apply(self, task: batch_store.OpenTask, status: TaskStatus) -> None:
        """Act on a done task; safe to repeat (a run killed here applies it again)."""
        undecided = len(task.ids) - len(status.available) - len(status.unavailable)
        if task.category == "video":
            self._apply_videos(status)
        else:
            batch_store.mark_comments_checked(self.url, status.available)
            self.outcome.comments_checked += len(status.available)
            self.outcome.comments_deleted += batch_store.delete_comments(
                self.url, status.unavailable
            )
        counts = (len(status.available), len(status.unavailable), undecided)
        batch_store.close_task(self.url, task.row_id, "applied", counts)
        self.outcome.tasks_applied += 1

    def _apply_videos(self, status: TaskStatus) -> None:
        result = self.outcome.result
        store.mark_checked(self.url, sorted(status.available), "available")
        result.checked += len(status.available) + len(status.unavailable)
        result.public += len(status.available)
        for video_id in batch_store.unpruned(self.url, status.unavailable):
            try:
                result.files_removed += prune_video(
                    self.url, self.media_dir, video_id, "unavailable"
                )
            except OSError as exc:  # rows are pruned, the record stays open: finished next run
                log.warning("video %s: files not deleted yet: %s", video_id, exc)
            result.pruned["unavailable"] = result.pruned.get("unavailable", 0) + 1
            result.pruned_ids.append(video_id)

    def _retried(self, call):
        policies: dict[str, RetryPolicy] = {k: POLICIES[v] for k, v in RETRIED.items()}
        return call_with_retries(
            call,
            policies=policies,
            kind_of=lambda exc: exc.kind if isinstance(exc, ApiFault) else None,
            server_wait_s=lambda exc: getattr(exc, "retry_after_s", None),
        )
