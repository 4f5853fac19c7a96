"""Two string measures computed in the database that equal Python's, so that a campaign-wide
estimate can be summed in SQL instead of row by row: `str.strip()` and the length of a string
once written by `json.dumps(..., ensure_ascii=False)` (how prompts carry their material).

SQLite has no `translate`, so there the length is a Python function registered on each
connection (`register_sqlite_functions`); it is called per row inside the aggregate query.
"""

from __future__ import annotations

import json

from sqlalchemy import Integer, String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

# Every character str.strip() removes (all of Unicode's whitespace lies below U+3001).
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
# json.dumps writes these as two characters (\" \\ \b \f \n \r \t) ...
ESCAPED_SHORT = '"\\\b\f\n\r\t'
# ... and the other control characters as six (\u00XX). Postgres text never holds NUL.
ESCAPED_LONG = "".join(chr(c) for c in range(1, 0x20) if chr(c) not in ESCAPED_SHORT)
SQLITE_JSON_LENGTH = "gettok_json_length"


def json_length(text: str) -> int:
    """Characters `text` takes inside a JSON document, quotes excluded."""
    return len(json.dumps(text, ensure_ascii=False)) - 2


def register_sqlite_functions(dbapi_connection) -> None:
    dbapi_connection.create_function(
        SQLITE_JSON_LENGTH,
        1,
        lambda text: None if text is None else json_length(str(text)),
        deterministic=True,
    )


class json_string_length(FunctionElement):
    """SQL: `json_length` of a text expression (NULL stays NULL)."""

    type = Integer()
    inherit_cache = True
    name = "json_string_length"


@compiles(json_string_length)
def _json_length_sqlite(element: json_string_length, compiler, **kw) -> str:
    return f"{SQLITE_JSON_LENGTH}({compiler.process(element.clauses, **kw)})"


@compiles(json_string_length, "postgresql")
def _json_length_postgres(element: json_string_length, compiler, **kw) -> str:
    """length + 1 per short escape + 5 per long one. Each count is skipped by a regular
    expression when the text holds none (most do): translate() reads the whole set for every
    character, 20 times slower than the match at 100k transcripts."""
    text = compiler.process(element.clauses, **kw)

    def bound(value: str) -> str:
        return compiler.process(literal(value, String()), **kw)

    # Bracket expressions of the characters themselves (a backslash escaped for the regex).
    has_short = bound("[" + ESCAPED_SHORT.replace("\\", "\\\\") + "]")
    has_long = bound("[" + ESCAPED_LONG + "]")
    short = " + ".join(
        f"(length({text}) - length(replace({text}, {bound(c)}, '')))" for c in ESCAPED_SHORT
    )
    long = f"(length({text}) - length(translate({text}, {bound(ESCAPED_LONG)}, '')))"
    return (
        f"(length({text}) + CASE WHEN {text} ~ {has_short} THEN {short} ELSE 0 END"
        f" + CASE WHEN {text} ~ {has_long} THEN 5 * {long} ELSE 0 END)"
    )


class stripped(FunctionElement):
    """SQL: a text expression with `str.strip()`'s whitespace trimmed from both ends."""

    type = String()
    inherit_cache = True
    name = "stripped"


@compiles(stripped)
def _stripped(element: stripped, compiler, **kw) -> str:
    # Both trim a set of characters from both ends; Postgres spells it btrim.
    function = "btrim" if compiler.dialect.name == "postgresql" else "trim"
    whitespace = compiler.process(literal(WHITESPACE, String()), **kw)
    return f"{function}({compiler.process(element.clauses, **kw)}, {whitespace})"
