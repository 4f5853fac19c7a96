"""The coding sheet: a CSV people fill in (one `code_<coder>` column each), and its checks.

A sheet comes back after days in a spreadsheet program, so every row is checked before anything is
stored: ids that are missing or were rounded, rows given twice, codes outside the sample's labels,
and videos of another sample or campaign. All problems are reported at once, naming the rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from gettok.tasks.validate.kinds import checked_text, is_check
from gettok.tasks.validate.store import SampledVideo

CODE_PREFIX, FLAG_PREFIX = "code_", "flag_"
SKIP = "skip"  # a coder may write this instead of a label: seen, but not codable


class SheetError(ValueError):
    """A sheet that cannot be stored; `problems` names each bad row."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s), nothing stored:\n  {shown}{more}")


@dataclass(frozen=True)
class SheetCode:
    line: int
    video_id: int
    coder: str
    label: str | None  # None: skipped, or only flagged
    skipped: bool
    flagged: bool


@dataclass
class RawSheet:
    path: Path
    coders: dict[str, str]  # coder -> column holding their codes
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (line, row)


def video_url(video: SampledVideo) -> str:
    return f"https://www.tiktok.com/@{video.username or 'user'}/video/{video.video_id}"


def write_sheet(
    path: Path,
    sample_id: int,
    kind: str,
    labels: list[str],
    videos: list[SampledVideo],
    coders: list[str],
) -> Path:
    """Write the blind coding sheet: what a coder needs to code, never the model's label."""
    columns = ["sample_id", "position", "video_id", "video_url", "caption", "transcript"]
    columns += ["onscreen_text", "frames", "media"]
    columns += ["text_to_check"] if is_check(kind) else []
    columns += ["allowed_labels"]
    columns += [f"{CODE_PREFIX}{c}" for c in coders] + [f"{FLAG_PREFIX}{c}" for c in coders]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8-sig") as out:  # BOM: spreadsheets read UTF-8
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for v in videos:
            row = {
                "sample_id": sample_id,
                "position": v.position,
                "video_id": str(v.video_id),
                "video_url": video_url(v),
                "caption": v.caption or "",
                "transcript": v.transcript or "",
                "onscreen_text": v.onscreen_text or "",
                "frames": ";".join(v.frames),
                "media": ";".join(v.media),
                "allowed_labels": " | ".join([*labels, SKIP]),
            }
            if is_check(kind):
                row["text_to_check"] = checked_text(kind, v.annotation) or ""
            writer.writerow(row)
    return path


def read_sheet(path: Path) -> RawSheet:
    """Read a sheet's rows; a missing id column or no coder column is an error at once."""
    if not path.is_file():
        raise SheetError([f"{path}: no such file"])
    text = path.read_text(encoding="utf-8-sig")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in ("sample_id", "video_id") if c not in header]
    coders = {h[len(CODE_PREFIX) :]: h for h in header if h.startswith(CODE_PREFIX)}
    if "code" in header:  # one coder per file: the file is named after them
        coders[path.stem] = "code"
    problems = [f"{path.name}: no {c} column" for c in missing]
    if not coders:
        problems.append(f"{path.name}: no code_<coder> column (or one named 'code')")
    if problems:
        raise SheetError(problems)
    sheet = RawSheet(path=path, coders=coders)
    for line, row in enumerate(reader, start=2):
        cleaned = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if any(cleaned.values()):
            sheet.rows.append((line, cleaned))
    return sheet


def sample_ids(sheet: RawSheet) -> set[str]:
    return {row["sample_id"] for _, row in sheet.rows if row.get("sample_id")}


def check_sheet(
    sheet: RawSheet, sample_id: int, labels: list[str]
) -> tuple[list[SheetCode], list[str]]:
    """The sheet's codes and the problems found in it (rows named by their line in the file)."""
    canonical = {label.casefold(): label for label in labels}
    codes, problems, seen = [], [], {}
    name = sheet.path.name
    for line, row in sheet.rows:
        where = f"{name} row {line}"
        video_id = _video_id(row.get("video_id", ""))
        if isinstance(video_id, str):
            problems.append(f"{where}: {video_id}")
            continue
        if row.get("sample_id") != str(sample_id):
            problems.append(f"{where}: sample_id {row.get('sample_id')!r}, not {sample_id}")
        if video_id in seen:
            problems.append(f"{where}: video {video_id} again (first on row {seen[video_id]})")
            continue
        seen[video_id] = line
        for coder, column in sheet.coders.items():
            given = row.get(column, "")
            flagged = bool(row.get(f"{FLAG_PREFIX}{coder}", ""))
            if not given and not flagged:
                continue  # not coded yet
            if given and given.casefold() != SKIP and given.casefold() not in canonical:
                problems.append(
                    f"{where}, {column}: {given!r} is not one of {', '.join(labels)} (or {SKIP})"
                )
                continue
            label = canonical.get(given.casefold()) if given else None
            skipped = given.casefold() == SKIP
            codes.append(SheetCode(line, video_id, coder, label, skipped, flagged))
    return codes, problems


def _video_id(text: str) -> int | str:
    """The id, or what is wrong with it (spreadsheets round long numbers: 7.3E+18)."""
    if not text:
        return "missing video_id"
    if not text.isdigit():
        return (
            f"video_id {text!r} is not a whole number (a spreadsheet may have rounded it: "
            "keep the column as text)"
        )
    return int(text)
