"""The contract every stage keeps: what it did, as one small result that logs and publishes itself.

A stage run ends with a `StageResult`: how many items it finished (`done`), how many it left for
another run or another worker (`skipped`), and how many ended in each failure status (`failed`).
Results of batches combine with `merge`; `publish` logs one line and writes the Prefect artifact,
so every flow reports the same way and the tests assert on the same fields.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class StageResult(BaseModel):
    """What one stage did over a batch or a run."""

    stage: str
    done: int = 0
    skipped: int = 0  # left for later: done meanwhile, held by another worker, put off
    failed: dict[str, int] = Field(default_factory=dict)  # by recorded status or reason
    counts: dict[str, float] = Field(default_factory=dict)  # stage-specific tallies (summed)
    notes: list[str] = Field(default_factory=list)  # what a researcher should know about the run

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    @property
    def attempted(self) -> int:
        return self.done + self.failed_total

    def merge(self, other: StageResult) -> StageResult:
        """This result followed by `other` (another batch or round of the same stage)."""
        if other.stage != self.stage:
            raise ValueError(f"cannot merge {other.stage!r} into {self.stage!r}")
        failed = dict(self.failed)
        for status, n in other.failed.items():
            failed[status] = failed.get(status, 0) + n
        counts = dict(self.counts)
        for name, n in other.counts.items():
            counts[name] = counts.get(name, 0) + n
        notes = self.notes + [n for n in other.notes if n not in self.notes]
        return StageResult(
            stage=self.stage,
            done=self.done + other.done,
            skipped=self.skipped + other.skipped,
            failed=failed,
            counts=counts,
            notes=notes,
        )

    def summary(self) -> str:
        failed = ", ".join(f"{n} {s}" for s, n in sorted(self.failed.items()) if n) or "none"
        extra = "".join(f", {_number(n)} {name}" for name, n in sorted(self.counts.items()))
        text = f"{self.stage}: {self.done} done, {self.skipped} skipped, failed: {failed}{extra}"
        return text + "".join(f"; {note}" for note in self.notes)

    def markdown(self) -> str:
        rows = [("done", self.done), ("skipped", self.skipped)]
        rows += [(f"failed: {s}", n) for s, n in sorted(self.failed.items())]
        rows += [(name, _number(n)) for name, n in sorted(self.counts.items())]
        table = "\n".join(f"| {k} | {v} |" for k, v in rows)
        notes = "".join(f"\n- {note}" for note in self.notes)
        return f"## {self.stage}\n\n| outcome | count |\n| --- | --- |\n{table}\n{notes}"


def _number(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:.3f}"


def file_digests(paths: Iterable[Path]) -> dict[Path, str]:
    """SHA-256 of each existing file: how an output stage tells a rewrite from a change. Read in
    chunks: an export of 500k videos is a 1.8 GB file, which read whole tripled the peak memory."""
    digests = {}
    for p in map(Path, paths):
        if p.is_file():
            with p.open("rb") as f:
                digests[p] = hashlib.file_digest(f, "sha256").hexdigest()
    return digests


def publish(
    result: StageResult,
    artifact_key: str | None = None,
    logger: logging.Logger | logging.LoggerAdapter | Any | None = None,
) -> StageResult:
    """Log the result in one line and, inside a Prefect run, publish it as a Markdown artifact."""
    log = logger or logging.getLogger("gettok")
    log.info(result.summary())
    if artifact_key:
        from prefect.context import FlowRunContext, TaskRunContext

        if FlowRunContext.get() or TaskRunContext.get():
            from prefect.artifacts import create_markdown_artifact

            create_markdown_artifact(
                key=artifact_key, markdown=result.markdown(), description=result.summary()
            )
    return result
