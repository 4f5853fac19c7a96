"""Every table of the analyses twice: a CSV beside the report, and Markdown inside it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from gettok.tasks.report.figures import _replace_whole


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    """The table as UTF-8 CSV, written beside and renamed over (never half a file)."""

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            out = csv.writer(f)
            out.writerow(header)
            out.writerows(rows)

    _replace_whole(path, write)
    return path


def markdown(header: list[str], rows: list[list[Any]], limit: int | None = None) -> str:
    shown = rows if limit is None else rows[:limit]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in shown]
    if limit is not None and len(rows) > limit:
        lines.append(f"\n({len(rows) - limit:,} more rows in the CSV)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")
