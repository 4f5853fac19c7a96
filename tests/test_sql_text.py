"""The database's string measures equal Python's on both databases: the JSON-escaped length
(`json.dumps(..., ensure_ascii=False)`) and `str.strip()`, for every character class that either
side treats specially."""

from __future__ import annotations

import random

from sqlalchemy import bindparam, select

from gettok import db
from gettok.sql_text import (
    ESCAPED_LONG,
    ESCAPED_SHORT,
    WHITESPACE,
    json_length,
    json_string_length,
    stripped,
)

# Every special character alone and among ordinary ones, plus random mixtures of all of them
# with accents, emoji, CJK and fullwidth forms (NUL excluded: Postgres text cannot hold it).
ALPHABET = ESCAPED_SHORT + ESCAPED_LONG + WHITESPACE + "aZ09 ñé🇵🇪中＠'/]^-[" + "\u200b\ufeff"
TEXTS = [
    "",
    "plain",
    *ESCAPED_SHORT,
    *ESCAPED_LONG,
    *WHITESPACE,
    *(f"a{c}b{c}" for c in ESCAPED_SHORT + ESCAPED_LONG),
    *(f"{c}x{c}" for c in WHITESPACE),
    *(
        "".join(random.Random(seed).choices(ALPHABET, k=random.Random(seed).randint(1, 60)))
        for seed in range(200)
    ),
]


def test_json_length_and_strip_equal_pythons(db_url):
    value = bindparam("value", type_=None)
    query = select(json_string_length(value), stripped(value))
    with db.session_scope(db_url) as session:
        for text in TEXTS:
            length, trimmed = session.execute(query, {"value": text}).one()
            assert (length, trimmed) == (json_length(text), text.strip()), repr(text)
        assert session.execute(select(json_string_length(bindparam("none", None)))).scalar() is None


def test_json_length_counts_escapes():
    assert json_length('a"b\\c\n') == 9
    assert json_length("\x01") == 6
    assert json_length("ñ🇵🇪") == 3
