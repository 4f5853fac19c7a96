"""Pending work read a page at a time: the loop every stage runs over what it has to do.

A stage's pending query returns rows in a fixed order; each page asks only for rows past the
last one seen (keyset pagination), so memory holds one page, the database never skips or
re-reads rows at page borders, and a row the stage leaves pending (it failed, another worker
holds it) is not met again in the same run: the loop always ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

Row = TypeVar("Row")
Key = TypeVar("Key")


class KeysetPages(Generic[Row, Key]):
    """Pages of `fetch(after, n)` (rows past the key `after`, at most `n`, in key order), `size`
    rows each and `limit` rows in all; `after` and `read` say where the loop stopped."""

    def __init__(
        self,
        fetch: Callable[[Key | None, int], list[Row]],
        size: int,
        limit: int | None = None,
        key: Callable[[Row], Key] = lambda row: row,  # type: ignore[assignment,return-value]
    ) -> None:
        if size < 1:
            raise ValueError(f"page size must be positive, not {size}")
        self.fetch, self.size, self.limit, self.key = fetch, size, limit, key
        self.after: Key | None = None
        self.read = 0

    def left(self) -> int | None:
        """How many more rows the limit allows (None: no limit)."""
        return None if self.limit is None else max(0, self.limit - self.read)

    def __iter__(self) -> Iterator[list[Row]]:
        while (left := self.left()) is None or left > 0:
            wanted = self.size if left is None else min(self.size, left)
            page = self.fetch(self.after, wanted)
            if not page:
                return
            self.after, self.read = self.key(page[-1]), self.read + len(page)
            yield page
            if len(page) < wanted:  # the query had no more: spare it one empty read
                return
