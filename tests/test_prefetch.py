"""`ahead`: a generator run a step ahead in a thread, its order, errors and early stops kept."""

from __future__ import annotations

import threading

import pytest

from gettok.prefetch import ahead


def test_the_next_item_is_made_while_the_consumer_holds_this_one():
    making_second = threading.Event()

    def items():
        yield 1
        making_second.set()
        yield 2
        yield 3

    seen = []
    for item in ahead(items()):
        if item == 1:  # the producer went on without waiting for the consumer
            assert making_second.wait(10)
        seen.append(item)
    assert seen == [1, 2, 3]


def test_an_error_reaches_the_consumer_after_the_items_before_it():
    def items():
        yield "a"
        yield "b"
        raise ValueError("page 3 failed")

    seen = []
    with pytest.raises(ValueError, match="page 3 failed"):
        for item in ahead(items()):
            seen.append(item)
    assert seen == ["a", "b"]


def test_a_consumer_that_stops_early_stops_and_closes_the_producer_in_its_thread():
    closed_in, made = [], []
    main = threading.current_thread()

    def items():
        try:
            for n in range(1_000):
                made.append(n)
                yield n
        finally:
            closed_in.append(threading.current_thread())

    pages = ahead(items(), depth=2)
    assert [next(pages), next(pages)] == [0, 1]
    pages.close()
    assert len(closed_in) == 1 and closed_in[0] is not main
    assert len(made) <= 5  # at most `depth` past what was taken, and the one being put


def test_a_failing_consumer_stops_the_producer():
    closed = threading.Event()

    def items():
        try:
            while True:
                yield "page"
        finally:
            closed.set()

    with pytest.raises(RuntimeError):
        for _ in ahead(items()):
            raise RuntimeError("the writer failed")
    assert closed.is_set()
