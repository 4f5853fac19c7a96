"""Stored JSON text rewritten as the export writes JSON, without parsing it.

Every writer of a JSON column stores `json.dumps(value)` (SQLAlchemy's JSON type, and the
Postgres page statement of the collector): ASCII, every other character a `\\uXXXX` escape. The
export writes `json.dumps(value, ensure_ascii=False)` with a lone UTF-16 surrogate left escaped
(no file encoding can hold it). The two differ only in those escapes, so the stored text is
rewritten escape by escape: the same bytes as decoding and re-encoding every payload, at a
fraction of the cost, and a text with no `\\u` in it is already the export's.
"""

from __future__ import annotations

import re

import polars as pl

# A backslash and what it escapes: a UTF-16 pair, one \uXXXX, or any other escaped character
# (matched so that the `u` of an escaped backslash, `\\u`, is never read as an escape).
_ESCAPE = re.compile(
    r"\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|(.))",
    re.DOTALL,
)


def _unescaped(match: re.Match[str]) -> str:
    high, low, single, other = match.groups()
    if high is not None:
        code = 0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00)
        return chr(code)
    if single is not None:
        code = int(single, 16)
        if code < 0x20 or 0xD800 <= code <= 0xDFFF:  # escaped in the export too
            return f"\\u{code:04x}"
        return chr(code)
    return "/" if other == "/" else match.group()  # `\/` is a plain slash to json.loads


def export_json(stored: str) -> str:
    """`stored` (JSON text as json.dumps wrote it) as `json.dumps(json.loads(stored),
    ensure_ascii=False)` writes it, lone surrogates escaped."""
    return _ESCAPE.sub(_unescaped, stored) if "\\" in stored else stored


def export_json_column(texts: pl.Series) -> pl.Series:
    """`export_json` of every text; only those holding an escape reach Python."""
    escaped = texts.str.contains("\\", literal=True).fill_null(False)
    if not escaped.any():
        return texts
    rewritten = [export_json(text) for text in texts.filter(escaped).to_list()]
    return texts.scatter(escaped.arg_true(), pl.Series(rewritten, dtype=pl.Utf8))
