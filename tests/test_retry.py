"""The one retry module: Retry-After in its three forms, each named policy's waits, per-kind tries,
and what Prefect tasks get."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import stamina

from gettok.retry import (
    POLICIES,
    RetryPolicy,
    call_with_retries,
    retry_after_s,
    task_retries,
)
from tests.no_waits import real_waits

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"Retry-After": "Sun, 01 Mar 2026 12:00:30 GMT"}, 30.0),  # an HTTP date
        ({"Retry-After": "Sun, 01 Mar 2026 12:00:30 -0000"}, 30.0),  # a date without a zone
        ({"Retry-After": "Sun, 01 Mar 2026 11:00:00 GMT"}, 0.0),  # a date already past
        ({"retry-after-ms": "250"}, 0.25),
        ({"Retry-After-Ms": "250", "Retry-After": "9"}, 0.25),  # the finer one wins
        ({"retry-after-ms": "soon", "Retry-After": "9"}, 9.0),  # an unreadable one is skipped
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "tomorrow"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Content-Type": "text/plain"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_in_seconds_as_a_date_or_in_milliseconds(headers, seconds):
    assert retry_after_s(headers, now=NOW) == seconds


def test_retry_after_reads_httpx_headers():
    assert retry_after_s(httpx.Response(429, headers={"Retry-After": "3"}).headers) == 3.0


def test_each_named_policy_waits_longer_each_time_up_to_its_cap():
    assert POLICIES["database"].delays() == [10, 60]
    assert POLICIES["incomplete"].delays() == [30]
    assert POLICIES["throttle"].delays() == [10, 20, 40, 80, 160]
    assert POLICIES["server_error"].delays() == [5, 10, 20, 40]
    assert POLICIES["network"].delays() == [2, 4, 8, 16]
    for name, policy in POLICIES.items():
        delays = policy.delays()
        assert len(delays) == policy.attempts - 1, name
        assert delays == sorted(delays) and max(delays) <= policy.wait_max_s, name


def test_a_wait_is_jittered_floored_by_the_server_and_capped():
    policy = RetryPolicy(attempts=4, wait_initial_s=1, wait_max_s=5, wait_jitter_s=0.5)
    waits = [policy.wait_s(3) for _ in range(200)]
    assert all(4 <= w <= 4.5 for w in waits) and len(set(waits)) > 1
    assert policy.wait_s(10) == 5  # capped
    assert policy.wait_s(1, server_wait_s=3) == 3  # never sooner than asked
    assert policy.wait_s(1, server_wait_s=3600) == 5  # a server asking for an hour gets the cap
    assert 1 <= policy.wait_s(1, server_wait_s=0.1) <= 1.5  # nor sooner than our own backoff


class Flaky(Exception):
    def __init__(self, kind: str, server_wait_s: float | None = None):
        super().__init__(kind)
        self.kind, self.server_wait_s = kind, server_wait_s


def failing(*errors: Exception):
    """A call that raises `errors` in turn, then returns how many calls it took."""
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return len(calls)

    return call, calls


FAST = RetryPolicy(attempts=3, wait_initial_s=0, wait_max_s=1, wait_jitter_s=0)


def retry(call, attempts=None):
    return call_with_retries(
        call,
        policies={"a": FAST, "b": FAST},
        kind_of=lambda exc: exc.kind if isinstance(exc, Flaky) else None,
        server_wait_s=lambda exc: exc.server_wait_s,
        attempts=attempts,
    )


def test_each_kind_counts_its_own_tries():
    call, calls = failing(Flaky("a"), Flaky("b"), Flaky("a"), Flaky("b"))
    assert retry(call) == 5  # two of each kind are within each kind's three tries

    call, calls = failing(Flaky("a"), Flaky("b"), Flaky("a"), Flaky("a"))
    with pytest.raises(Flaky, match="a"):
        retry(call)  # the third "a" used up its policy
    assert len(calls) == 4


def test_a_cap_on_all_tries_and_failures_no_retry_fixes():
    call, calls = failing(Flaky("a"), Flaky("b"), Flaky("a"))
    with pytest.raises(Flaky):
        retry(call, attempts=2)
    assert len(calls) == 2

    call, calls = failing(Flaky("unknown"), Flaky("a"))
    with pytest.raises(Flaky, match="unknown"):
        retry(call)
    call, calls = failing(ValueError("a bug"))
    with pytest.raises(ValueError):
        retry(call)
    assert len(calls) == 1


def test_waits_are_real_outside_testing_mode_and_honour_the_server():
    call, _ = failing(Flaky("a", server_wait_s=0.2), Flaky("b"))
    with real_waits() as waits:
        assert retry(call) == 3
    assert waits == [pytest.approx(0.2), 0.0]


def test_testing_mode_keeps_the_tries_and_drops_the_waits():
    assert stamina.is_testing()  # tests/conftest.py
    assert task_retries("database") == {
        "retries": 2,
        "retry_delay_seconds": [0.0, 0.0],
        "retry_jitter_factor": 0.2,
    }
    with stamina.set_testing(False):
        assert task_retries("database")["retry_delay_seconds"] == [10, 60]
        assert task_retries("incomplete")["retries"] == 1
