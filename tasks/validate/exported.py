"""What validation adds to the exported dataset: a `validated` flag and the people's codes.

Kept apart from the export's own columns so the export needs no change to gain or lose them;
a video coded by several people carries their majority code (none on a tie), and a coder who
coded the same video in two samples counts once, with their latest code.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import polars as pl
from sqlalchemy.orm import Session

from gettok.tasks.validate.kinds import KINDS, majority_code
from gettok.tasks.validate.store import human_codes

# (name, type, description): the export wraps them in its own Column.
HUMAN_CODE_COLUMNS: list[tuple[str, pl.DataType, str]] = [
    (
        "validated",
        pl.Boolean,
        "a person coded this video in a validation sample (gettok validate); codes in human_*",
    ),
    *(
        (
            f"human_{kind}",
            pl.Utf8,
            f"people's {kind.replace('_', ' ')} code (majority of coders; empty on a tie or "
            "when not coded)",
        )
        for kind in KINDS
    ),
]


def human_code_table(session: Session, campaign_id: int) -> pl.DataFrame:
    """Per coded video: `validated` and its `human_<kind>` codes, to join onto the export table
    (a few rows per person-hour of coding, so read once per export)."""
    latest: dict[int, dict[str, dict[str, str | None]]] = defaultdict(lambda: defaultdict(dict))
    for video_id, kind, coder, label in human_codes(session, campaign_id):  # oldest first
        latest[video_id][kind][coder] = label
    rows: list[dict[str, Any]] = []
    for video_id, kinds in latest.items():
        codes = {kind: majority_code(by_coder) for kind, by_coder in kinds.items()}
        validated = any(code is not None for code in codes.values())
        rows.append(
            {"video_id": video_id, "validated": validated}
            | {f"human_{k}": c for k, c in codes.items()}
        )
    schema = {"video_id": pl.Int64} | {name: dtype for name, dtype, _ in HUMAN_CODE_COLUMNS}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
