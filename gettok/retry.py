"""One place for waiting and retrying: a named policy per kind of failure, used by every client.

Each external failure belongs to one kind (a dropped connection, a throttle, a server error, a
database hiccup) and each kind has one policy: how many tries, and how long to wait between them
(jittered exponential, capped). HTTP clients retry through `call_with_retries` (several kinds,
each counted against its own policy, a server's `Retry-After` honoured) or `retrying(kind)` (one
kind); both run on stamina, so tests switch every wait off with `stamina.set_testing(True, ...)`
instead of a knob in production settings. Prefect tasks take their `retries` and
`retry_delay_seconds` from `task_retries(kind)`. A server's `Retry-After` is read by
`retry_after_s` alone, and a Prefect global rate limit is taken through `rate_limit(name)`.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

import stamina
from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

T = TypeVar("T")

# For Prefect's `timeout_seconds`: each flow and task that talks to the outside sets one, sized
# far above its longest honest run, so that only a hang (a connection that never answers, a
# server that never closes) ends it; the work is resumable, so the next run picks up from there.
HOUR = 3600
DAY = 24 * HOUR

FailureKind = Literal["network", "throttle", "server_error", "database", "incomplete"]


class RetryPolicy(BaseModel):
    """Tries and jittered exponential waits for one kind of failure."""

    attempts: int = Field(ge=1)  # tries in all, the first included
    wait_initial_s: float = Field(ge=0)
    wait_max_s: float = Field(ge=0)
    wait_exp_base: float = Field(2.0, ge=1)
    wait_jitter_s: float = Field(1.0, ge=0)  # up to this much is added to each wait, at random
    timeout_s: float | None = None  # give up after this long in all, whatever the tries left

    def delays(self) -> list[float]:
        """The waits between tries, without jitter (for Prefect's `retry_delay_seconds`)."""
        return [self.backoff_s(retry) for retry in range(1, self.attempts)]

    def backoff_s(self, retry: int) -> float:
        """The wait before retry number `retry` (1-based), without jitter."""
        try:
            return min(self.wait_max_s, self.wait_initial_s * self.wait_exp_base ** (retry - 1))
        except OverflowError:
            return self.wait_max_s

    def wait_s(
        self, retry: int, server_wait_s: float | None = None, rng: random.Random | None = None
    ) -> float:
        """The wait before retry number `retry`: the jittered backoff, and never sooner than the
        server asked (its `Retry-After`); both capped at `wait_max_s`, so a server asking for
        hours cannot stall a run (the next try meets the same refusal and the kind gives up)."""
        jitter = (rng or random).uniform(0, self.wait_jitter_s) if self.wait_jitter_s else 0.0
        wait = min(self.wait_max_s, self.backoff_s(retry) + jitter)
        if server_wait_s is not None:
            wait = max(wait, min(self.wait_max_s, server_wait_s))
        return wait


POLICIES: dict[str, RetryPolicy] = {
    # A dropped connection or a timeout: try soon, a few times.
    "network": RetryPolicy(attempts=5, wait_initial_s=2, wait_max_s=60, timeout_s=600),
    # 429 or a throttle page: the server asked us to slow down; wait longer (or its Retry-After).
    "throttle": RetryPolicy(attempts=6, wait_initial_s=10, wait_max_s=300, timeout_s=1800),
    # 5xx: the server is unwell; back off harder than for the network.
    "server_error": RetryPolicy(attempts=5, wait_initial_s=5, wait_max_s=60, timeout_s=900),
    # The database went away (restart, failover): the GET-Tok runs lasted hours, so wait minutes.
    "database": RetryPolicy(attempts=3, wait_initial_s=10, wait_max_s=60, wait_exp_base=6),
    # A unit of work still incomplete after its own retries (a window that failed, a batch that
    # raised): one more pass shortly after, since most such failures were a passing outage.
    "incomplete": RetryPolicy(attempts=2, wait_initial_s=30, wait_max_s=30),
}


def policy(kind: FailureKind) -> RetryPolicy:
    return POLICIES[kind]


RetryOn = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]


def retrying(kind: FailureKind | RetryPolicy, on: RetryOn) -> Iterator[AbstractContextManager[Any]]:
    """`for attempt in retrying("network", on=httpx.TransportError): with attempt: ...`."""
    p = kind if isinstance(kind, RetryPolicy) else POLICIES[kind]
    return stamina.retry_context(
        on=on,
        attempts=p.attempts,
        timeout=p.timeout_s,
        wait_initial=p.wait_initial_s,
        wait_max=p.wait_max_s,
        wait_jitter=p.wait_jitter_s,
        wait_exp_base=p.wait_exp_base,
    )


def call_with_retries(
    call: Callable[[], T],
    *,
    policies: Mapping[str, RetryPolicy],
    kind_of: Callable[[Exception], str | None],
    server_wait_s: Callable[[Exception], float | None] = lambda exc: None,
    attempts: int | None = None,
) -> T:
    """`call()` until it returns; each failure is retried under its kind's policy.

    `kind_of` names a failure's kind (a key of `policies`), or None for one no retry can fix,
    which is raised at once. Each kind counts its own tries: when a kind has used its policy's
    tries, its failure is raised (the caller decides what giving up means: split a window, stop
    for the day, record the row as failed). `attempts` caps the tries of all kinds together
    (default: no cap beyond the policies'). `server_wait_s` reads the wait a server asked for.
    """
    tries: Counter[str] = Counter()

    def retry_or_not(exc: Exception) -> bool | float:
        kind = kind_of(exc)
        if kind is None or kind not in policies:
            return False
        tries[kind] += 1
        p = policies[kind]
        if tries[kind] >= p.attempts:
            return False
        wait = p.wait_s(tries[kind], server_wait_s(exc))
        log.info("%s (%s retry %d of %d in %.1fs)", exc, kind, tries[kind], p.attempts - 1, wait)
        return wait

    timeouts = [p.timeout_s for p in policies.values()]
    total = attempts or sum(p.attempts for p in policies.values())
    for attempt in stamina.retry_context(
        on=retry_or_not,
        attempts=total,
        timeout=None if None in timeouts or not timeouts else max(timeouts),
    ):
        with attempt:
            return call()
    raise AssertionError("unreachable: stamina re-raises the last failure")


def task_retries(kind: FailureKind = "database") -> dict[str, Any]:
    """Keyword arguments for `@task` or `.with_options`: the policy's tries and waits, with
    Prefect's own jitter. In stamina's testing mode (tests) the tries stay and the waits go."""
    p = POLICIES[kind]
    delays = [0.0] * len(p.delays()) if stamina.is_testing() else p.delays()
    return {"retries": p.attempts - 1, "retry_delay_seconds": delays, "retry_jitter_factor": 0.2}


def retry_after_s(headers: Mapping[str, str] | None, now: datetime | None = None) -> float | None:
    """Seconds a server asked us to wait: `retry-after-ms` (OpenAI, Azure), or `Retry-After` in
    seconds or as an HTTP date (RFC 9110). None when it said nothing usable."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = _number(lowered.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, says RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def rate_limit(name: str) -> Callable[[], None]:
    """A hook that takes one slot of the Prefect global rate limit `name` per call (one request
    to tiktok.com or to the LLM, shared by every worker of every process)."""

    def wait() -> None:
        from prefect.concurrency.sync import rate_limit as prefect_rate_limit

        prefect_rate_limit(name, occupy=1, strict=True)

    return wait
