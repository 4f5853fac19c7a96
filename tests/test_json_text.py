"""`export_json` rewrites stored JSON text (json.dumps' ASCII escapes) into exactly what decoding
and re-encoding it for the export writes, for any text: random strings over the characters
whose escapes differ between the two (and the backslashes that could be mistaken for them)."""

from __future__ import annotations

import json
import random

import polars as pl

from gettok.json_text import export_json, export_json_column
from gettok.tasks.export.table import raw_json

ALPHABET = [
    "a", '"', "\\", "/", "\\u", "u", "d83d", "\n", "\x00", "\x01", "\x1f", "\x7f", "é", "\u2028",
    "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00", "😀", "\U0010ffff", "\ufffd", " ",
]  # fmt: skip


def _payload(rng: random.Random) -> dict:
    text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 10)))
    return {f"k{text}": [text, 1.5, 2**70, None, True], "nested": {"x": text}}


def test_rewritten_text_equals_the_decoded_and_re_encoded_payload():
    rng = random.Random(19)
    for _ in range(50_000):
        stored = json.dumps(_payload(rng))
        # decoded as the driver decodes it (two halves stored apart become one character)
        assert export_json(stored) == raw_json(json.loads(stored)), stored


def test_a_column_rewrites_only_what_it_must_and_keeps_nulls():
    payloads = [{"a": "plain"}, {"a": "José"}, {"a": "cut \ud83d"}]
    texts = pl.Series([*map(json.dumps, payloads), None])
    assert export_json_column(texts).to_list() == [*map(raw_json, payloads), None]
