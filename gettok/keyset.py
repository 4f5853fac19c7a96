"""Pending work read a page at a time: the loop every stage runs over what it has to do.

A stage's pending query returns rows in a fixed order; each page asks only for rows past the
last one seen (keyset pagination), so memory holds one page, the database never skips or
re-reads rows at page borders, and a row the stage leaves pending (it failed, another worker
holds it) is not met again in the same run: the loop always ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from sqlalchemy import Boolean
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

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


ID_RANGE = 5000  # videos a ranged page query looks at, at most, in one statement

IdRows = Callable[[int | None, int, int], list[Row]]


def in_id_ranges(
    fetch: IdRows,
    range_end: Callable[[int | None, int], int | None],
    span: int | None = None,
) -> Callable[[int | None, int], list[Row]]:
    """A page fetch for `KeysetPages` that asks for pending rows one range of ids at a time.

    `fetch(after, until, n)` returns at most n pending rows with ids in (after, until], in id
    order; `range_end(after, span)` is the id `span` candidates past `after` (None: none left;
    `span` is ID_RANGE unless given).
    Bounded above, a page query is planned for at most `span` videos (index probes); bounded
    below only, Postgres planned it for every video past `after` and read indexes from their
    start, so each page cost more the larger the campaign (EXPLAIN at 100k: 136 ms a page)."""

    last_end = None  # the end of the range the last page stopped in

    def end_past(after):
        nonlocal last_end
        if last_end is not None and after is not None and after < last_end:
            return last_end  # the next page goes on in the same range: no query
        last_end = range_end(after, span or ID_RANGE)
        return last_end

    def page(after, n: int) -> list[Row]:
        rows: list[Row] = []
        while len(rows) < n and (until := end_past(after)) is not None:
            rows += fetch(after, until, n - len(rows))
            after = until  # a full page ends the loop: the next page starts past its last row
        return rows

    return page


def id_bounds(after: int | None, until: int | None, *columns) -> list:
    """SQL: each of `columns` (the same video id, joined) in (after, until]. Every joined copy
    gets the bounds: Postgres does not carry a range from one side of a join to the other."""
    clauses = []
    for column in columns:
        if after is not None:
            clauses.append(column > after)
        if until is not None:
            clauses.append(column <= until)
    return clauses


class _OnPostgres(ColumnElement[bool]):
    """A condition Postgres gets and other databases read as true (see `inner_bounds`)."""

    inherit_cache = True

    def __init__(self, condition: ColumnElement[bool]) -> None:
        self.condition = condition
        self.type = Boolean()


@compiles(_OnPostgres)
def _always(element: _OnPostgres, compiler, **kw) -> str:
    return "1 = 1"


@compiles(_OnPostgres, "postgresql")
def _on_postgres(element: _OnPostgres, compiler, **kw) -> str:
    return compiler.process(element.condition, **kw)


def inner_bounds(after: int | None, until: int | None, column) -> list:
    """`id_bounds` for a correlated subquery's own copy of the video id, on Postgres only.

    Postgres may answer "no row of these settings for these videos" with one ordered scan of the
    settings' index (a merge anti-join), which reads from the index's start unless bounded too.
    SQLite probes the index once per video; given the bounds, it probed with them instead of the
    video id and read every row past the page for each video (426 s for one page at 100k)."""
    return [_OnPostgres(clause) for clause in id_bounds(after, until, column)]
