"""What validation adds to the exported dataset: a `validated` flag and the people's codes.

Kept apart from the export's own columns so the export needs no change to gain or lose them;
a video coded by several people carries their majority code (none on a tie), and a coder who
coded the same video in two samples counts once, with their latest code.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import polars as pl
from gettok.tasks.validate.kinds import KINDS, majority_code
from gettok.tasks.validate.store import human_codes
from sqlalchemy.orm import Session

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


def add_human_codes(session: Session, campaign_id: int, records: list[dict[str, Any]]) -> None:
    """Set `validated` and `human_<kind>` on each exported record, in place."""
    latest: dict[int, dict[str, dict[str, str | None]]] = defaultdict(lambda: defaultdict(dict))
    for video_id, kind, coder, label in human_codes(session, campaign_id):  # oldest first
        latest[video_id][kind][coder] = label
    for record in records:
        kinds = latest.get(record["video_id"], {})
        codes = {kind: majority_code(by_coder) for kind, by_coder in kinds.items()}
        record["validated"] = any(code is not None for code in codes.values())
        record.update({f"human_{kind}": code for kind, code in codes.items()})
