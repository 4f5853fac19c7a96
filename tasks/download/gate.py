"""One gate for every request to tiktok.com from this process: a polite rate and a shared back-off.

When TikTok throttles one download worker, every worker pauses (the back-off doubles while the
throttling goes on), then one request goes first, alone, to see whether it is over; after
`block_limit` throttles in a row the gate closes for the run, and the videos not yet asked for
wait for a later run instead of feeding a retry storm. Across processes, `also_wait` takes a
callable such as `gettok.retry.rate_limit("download-rate")`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gettok.retry import RetryPolicy
from gettok.settings import Settings


class GateClosed(Exception):
    """The run was throttled too often: stop asking until `until`."""

    def __init__(self, until: datetime):
        super().__init__(f"throttled by tiktok.com: paused until {until.isoformat()}")
        self.until = until


class HostDown(Exception):
    """The site refused every connection, many in a row: an outage, not failed videos."""

    @classmethod
    def after(cls, refusals: int) -> HostDown:
        return cls(
            f"tiktok.com (or its media host) refused {refusals} connections in a row: "
            "an outage or a network problem, not the videos; nothing more was asked"
        )


class DownloadGate:
    def __init__(
        self,
        requests_per_s: float,
        block_backoff_s: float,
        block_limit: int,
        also_wait: Callable[[], None] | None = None,
        outage_refusals: int = 10,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / requests_per_s
        self.block_backoff_s = block_backoff_s
        self.block_limit = block_limit
        # The pause doubles with each throttle in a row, for as long as the throttling goes on.
        self.pause = RetryPolicy(
            attempts=block_limit,
            wait_initial_s=block_backoff_s,
            wait_max_s=math.inf,
            wait_jitter_s=0,
        )
        self.also_wait = also_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._paused_until = 0.0  # monotonic
        self._throttles_in_a_row = 0
        self.requests = 0
        self.throttles = 0
        self.closed_until: datetime | None = None
        self.outage_refusals = outage_refusals
        self._refusals_in_a_row = 0
        self.host_down: HostDown | None = None
        # After a throttle's pause one request goes first (a probe); the others wait for its
        # answer, so workers that were a slot apart cannot each be throttled again.
        self._probe_due = False
        self._prober: int | None = None  # the thread whose request is the probe

    @classmethod
    def from_settings(cls, settings: Settings, also_wait: Callable[[], None] | None = None):
        return cls(
            settings.download_requests_per_s,
            settings.download_block_backoff_s,
            settings.download_block_limit,
            also_wait,
            settings.download_outage_refusals,
        )

    def wait(self) -> None:
        """Block until this worker may send one request; raise GateClosed if the run must stop.

        A worker that slept through a pause looks again: the pause may have grown, or the gate
        closed, while it slept.
        """
        while True:
            with self._lock:
                if self.closed_until is not None:
                    raise GateClosed(self.closed_until)
                if self.host_down is not None:
                    raise self.host_down
                now = self._clock()
                if self._paused_until > now:
                    delay, slot = self._paused_until - now, None
                elif self._probe_due and self._prober not in (None, threading.get_ident()):
                    delay, slot = self.interval, None  # the probe is out: wait for its answer
                else:
                    slot = max(now, self._next_slot)
                    self._next_slot = slot + self.interval
                    delay = slot - now
                    if self._probe_due:
                        self._prober = threading.get_ident()
            if delay > 0:
                self._sleep(delay)
            if slot is None:
                continue
            with self._lock:
                if self.closed_until is not None:
                    raise GateClosed(self.closed_until)
                if self._paused_until > self._clock():
                    continue  # a throttle came while this worker waited for its slot
                self.requests += 1
            break
        if self.also_wait is not None:
            self.also_wait()

    def throttled(self) -> datetime:
        """Record a throttle; pause every worker and return when asking again is polite."""
        with self._lock:
            self.throttles += 1
            self._throttles_in_a_row += 1
            pause = self.pause.backoff_s(self._throttles_in_a_row)
            self._paused_until = max(self._paused_until, self._clock() + pause)
            self._probe_due, self._prober = True, None
            until = datetime.now(UTC) + timedelta(seconds=self._paused_until - self._clock())
            if self._throttles_in_a_row >= self.block_limit:
                self.closed_until = until
            return until

    def refused(self) -> None:
        """A connection was refused; after `outage_refusals` in a row every worker stops."""
        with self._lock:
            self._refusals_in_a_row += 1
            if self._refusals_in_a_row >= self.outage_refusals and self.host_down is None:
                self.host_down = HostDown.after(self._refusals_in_a_row)

    def succeeded(self) -> None:
        """A request got through: the throttling (and any run of refusals) is over."""
        with self._lock:
            self._throttles_in_a_row = 0
            self._refusals_in_a_row = 0
            self._probe_due, self._prober = False, None

    def done(self) -> None:
        """This worker's request has its answer, whatever it was: if it was the probe and said
        neither "through" nor "throttled" (a dropped connection), the next worker probes."""
        with self._lock:
            if self._prober == threading.get_ident():
                self._prober = None
