"""A generator run a step ahead in a thread, so that its reads overlap the consumer's work.

A page of the export table is a handful of queries (the database's time, on its own core) and
their parsing by polars; both let Python's GIL go, so reading the next page while the consumer
joins and writes this one uses the machine's second core instead of waiting on it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def ahead(items: Generator[T, None, None], depth: int = 1) -> Iterator[T]:
    """`items`, produced in a background thread up to `depth` items ahead of the consumer.

    The producer's exception is raised to the consumer, after the items before it; a consumer
    that stops early (or fails) stops the producer, and `items` is closed in the thread that ran
    it (its sessions are that thread's alone)."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((_END, exc))
        finally:
            items.close()

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = handoff.get()
            if item is _END:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        worker.join()
