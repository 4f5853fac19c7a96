"""Parts of a day's query: how a window too big for one day's quota is cut so that it finishes.

A window's dates cannot be narrower than one UTC day, and a search id does not outlive the day's
quota (the next day it is "invalid or expired", and a restart from cursor 0 would spend the new
day on the same pages, forever). So a one-day window that stopped for the quota is split by its
*query* instead: first by `video_length` bucket (SHORT, MID, LONG, EXTRA_LONG: together exactly
the window's videos), then each part by halves of its OR terms (keywords, hashtags, usernames...),
until each part fits in a day. Every part is its own window row (its own checkpoint, resumable
by itself), told apart by the hash of the query it sends.

A part is named by a short label kept on the window: "" (the whole query), "length=MID", or
"length=MID;terms=3/8" (the fourth of eight equal slices of the OR terms).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from gettok.models.campaign import Campaign

LENGTH_BUCKETS = ("SHORT", "MID", "LONG", "EXTRA_LONG")
# Each bucket's durations in seconds, [low, high), as the API documents them.
LENGTH_SECONDS = {"SHORT": (0, 15), "MID": (15, 60), "LONG": (60, 300), "EXTRA_LONG": (300, 10**9)}

Query = dict[str, list[dict[str, Any]]]


def _labels(part: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in part.split(";") if item)


def part_length(part: str) -> str | None:
    """The length bucket a part is limited to, if any."""
    return _labels(part).get("length")


def _label(values: dict[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in values.items())


def _or_terms(query: Query) -> list[tuple[str, str, str]]:
    """Every OR term as (field, operation, value), in the query's own order."""
    return [
        (c["field_name"], c.get("operation", "IN"), str(v))
        for c in query.get("or", [])
        for v in c["field_values"]
    ]


def _slice(terms: list, index: int, slices: int) -> list:
    return terms[index * len(terms) // slices : (index + 1) * len(terms) // slices]


def _allowed_lengths(query: Query) -> list[str]:
    """The buckets the query itself admits (all four when it says nothing about length)."""
    allowed = list(LENGTH_BUCKETS)
    for condition in query.get("and", []):
        if condition["field_name"] == "video_length":
            named = {str(v).upper() for v in condition["field_values"]}
            allowed = [b for b in allowed if b in named]
    return allowed


def part_query(query: Query, part: str) -> Query:
    """The API query of one part of `query` (the campaign's `Query.to_api()`)."""
    labels = _labels(part)
    out = copy.deepcopy(query)
    if "length" in labels:
        condition = {"operation": "IN", "field_name": "video_length", "field_values": []}
        condition["field_values"] = [labels["length"]]
        out["and"] = [*out.get("and", []), condition]
    if "terms" in labels:
        index, slices = (int(x) for x in labels["terms"].split("/"))
        grouped: dict[tuple[str, str], list[str]] = {}
        for field, operation, value in _slice(_or_terms(query), index, slices):
            grouped.setdefault((field, operation), []).append(value)
        out["or"] = [
            {"operation": op, "field_name": field, "field_values": chunk}
            for (field, op), values in grouped.items()
            for chunk in ([[v] for v in values] if op == "EQ" else [values])
        ]
    return out


def split_part(query: Query, part: str) -> list[str]:
    """The next, smaller parts of `part`: by length bucket first, then halves of the OR terms;
    [] when it cannot be cut further (one bucket and one term)."""
    labels = _labels(part)
    if "length" not in labels:
        buckets = _allowed_lengths(query)
        if len(buckets) > 1:
            return [_label({**labels, "length": b}) for b in buckets]
    index, slices = (int(x) for x in labels.get("terms", "0/1").split("/"))
    if len(_slice(_or_terms(query), index, slices)) < 2:
        return []
    return [_label({**labels, "terms": f"{index * 2 + half}/{slices * 2}"}) for half in range(2)]


def part_hash(campaign: Campaign, part: str) -> str:
    """The `query_hash` of a part's window row (the whole query keeps the campaign's own)."""
    if not part:
        return campaign.query_hash
    body = json.dumps(part_query(campaign.query.to_api(), part), sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:16]
