"""One place for waiting and retrying: a named policy per kind of failure, used by every client.

Each external failure belongs to one kind (a dropped connection, a throttle, a server error, a
database hiccup) and each kind has one policy: how many tries, and how long to wait between them
(jittered exponential, capped). HTTP clients retry through `retrying(kind)` (stamina, so tests
switch every wait off with `stamina.set_testing(True)` instead of a knob in production settings);
Prefect tasks take their `retries`/`retry_delay_seconds` from `task_retries(kind)`. A server's
`Retry-After` is read by `retry_after_s` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import stamina
from pydantic import BaseModel, Field

FailureKind = Literal["network", "throttle", "server_error", "database"]


class RetryPolicy(BaseModel):
    """Tries and jittered exponential waits for one kind of failure."""

    attempts: int = Field(ge=1)  # tries in all, the first included
    wait_initial_s: float = Field(ge=0)
    wait_max_s: float = Field(ge=0)
    wait_exp_base: float = Field(2.0, ge=1)
    wait_jitter_s: float = Field(1.0, ge=0)
    timeout_s: float | None = None  # give up after this long in all, whatever the tries left

    def delays(self) -> list[float]:
        """The waits between tries, without jitter (for Prefect's `retry_delay_seconds`)."""
        return [
            min(self.wait_max_s, self.wait_initial_s * self.wait_exp_base**i)
            for i in range(self.attempts - 1)
        ]

    def wait_s(self, retry: int) -> float:
        """The wait before retry number `retry` (1-based), without jitter."""
        return min(self.wait_max_s, self.wait_initial_s * self.wait_exp_base ** (retry - 1))


POLICIES: dict[str, RetryPolicy] = {
    # A dropped connection or a timeout: try soon, a few times.
    "network": RetryPolicy(attempts=5, wait_initial_s=2, wait_max_s=60, timeout_s=600),
    # 429 or a throttle page: the server asked us to slow down; wait longer (or its Retry-After).
    "throttle": RetryPolicy(attempts=6, wait_initial_s=10, wait_max_s=300, timeout_s=1800),
    # 5xx: the server is unwell; back off harder than for the network.
    "server_error": RetryPolicy(attempts=5, wait_initial_s=5, wait_max_s=60, timeout_s=900),
    # The database went away (restart, failover): the GET-Tok runs lasted hours, so wait minutes.
    "database": RetryPolicy(attempts=3, wait_initial_s=10, wait_max_s=60, wait_exp_base=6),
}


def policy(kind: FailureKind) -> RetryPolicy:
    return POLICIES[kind]


RetryOn = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]


def retrying(kind: FailureKind, on: RetryOn) -> Iterator[AbstractContextManager[Any]]:
    """`for attempt in retrying("network", on=httpx.TransportError): with attempt: ...`."""
    p = POLICIES[kind]
    return stamina.retry_context(
        on=on,
        attempts=p.attempts,
        timeout=p.timeout_s,
        wait_initial=p.wait_initial_s,
        wait_max=p.wait_max_s,
        wait_jitter=p.wait_jitter_s,
        wait_exp_base=p.wait_exp_base,
    )


def task_retries(kind: FailureKind = "database") -> dict[str, Any]:
    """Keyword arguments for `@task`: the policy's tries and waits, with Prefect's own jitter."""
    p = POLICIES[kind]
    return {
        "retries": p.attempts - 1,
        "retry_delay_seconds": p.delays(),
        "retry_jitter_factor": 0.2,
    }


def retry_after_s(headers: Mapping[str, str] | None, now: datetime | None = None) -> float | None:
    """Seconds a server asked us to wait: `retry-after-ms`, or `Retry-After` in seconds or as a
    date (RFC 9110). None when it said nothing usable."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        value = lowered.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = parsedate_to_datetime(value)
            return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None


def rate_limit(name: str) -> Callable[[], None]:
    """A hook that takes one slot of the Prefect global rate limit `name` per call."""

    def wait() -> None:
        from prefect.concurrency.sync import rate_limit as prefect_rate_limit

        prefect_rate_limit(name, occupy=1, strict=True)

    return wait
