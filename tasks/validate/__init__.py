"""Validation: people code a seeded sample of the model's labels; gettok measures the agreement.

`draw_sample` records a sample of one kind (stance, sentiment, summary_check, description) and
writes a blind coding sheet; `store_sheets` checks coded sheets and stores their codes (all or
nothing); the coding page (`gettok.tasks.validate.page`) stores codes as they are made;
`score_sample` computes kappa, alpha, F1, the confusion matrix and confidence calibration from
every stored code, and records them in `validation_scores`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gettok.db import session_scope
from gettok.tasks.validate import store
from gettok.tasks.validate.kinds import (
    ANNOTATION_OF_KIND,
    labels_for,
    model_confidence,
    model_label,
)
from gettok.tasks.validate.sample import Stratify, draw_sample
from gettok.tasks.validate.sheet import (
    SheetError,
    check_sheet,
    read_sheet,
    sample_ids,
    write_sheet,
)

if TYPE_CHECKING:  # scikit-learn loads only when scoring, not with every export
    from gettok.tasks.validate.score import Figures

TARGET_ACCURACY = 0.8  # labels at or above the flag threshold are right this often

__all__ = ["SheetError", "create_sample", "score_sample", "store_sheets"]


@dataclass
class SampleResult:
    sample_id: int
    kind: str
    labels: list[str]
    videos: int
    sheet: Path


@dataclass
class ScoreResult:
    sample_id: int
    kind: str
    figures: Figures
    by_prompt: dict[str, Figures]  # one entry per prompt version in the sample


def create_sample(
    url: str,
    campaign: str,
    kind: str,
    n: int,
    out: Path,
    *,
    seed: int = 0,
    stratify: Stratify | None = None,
    stance_labels: list[str] | None = None,
    coders: list[str] = ("coder_1", "coder_2"),
) -> SampleResult:
    """Draw and record a sample of `kind`, and write its blind coding sheet to `out`."""
    labels = labels_for(kind, stance_labels)
    with session_scope(url) as session:
        campaign_id = store.campaign_row_id(session, campaign)
        candidates = store.annotated_videos(session, campaign_id, ANNOTATION_OF_KIND[kind])
        drawn = draw_sample(candidates, kind, n, seed, stratify)
        sample_id = store.save_sample(session, campaign_id, kind, seed, stratify, labels, drawn)
        session.flush()
        videos = store.sampled_videos(session, sample_id)
        write_sheet(out, sample_id, kind, labels, videos, list(coders))
    return SampleResult(sample_id, kind, labels, len(videos), out)


def store_sheets(url: str, campaign: str, paths: list[Path], sample_id: int | None = None) -> int:
    """Check every sheet, then store all their codes, or nothing if any row is wrong.

    Returns the sample id the sheets belong to."""
    sheets = [read_sheet(p) for p in paths]
    found = set().union(*(sample_ids(s) for s in sheets))
    if sample_id is None:
        if len(found) != 1 or not next(iter(found)).isdigit():
            raise SheetError([f"the sheets name samples {sorted(found)}: give --sample"])
        sample_id = int(next(iter(found)))
    with session_scope(url) as session:
        campaign_id = store.campaign_row_id(session, campaign)
        sample = store.get_sample(session, campaign_id, sample_id)
        items = store.sample_items(session, sample_id)
        codes, problems = [], _duplicate_coders(sheets)
        for sheet in sheets:
            sheet_codes, sheet_problems = check_sheet(sheet, sample_id, sample.labels)
            problems += sheet_problems
            codes += [(sheet.path.name, c) for c in sheet_codes]
        ids = {c.video_id for _, c in codes}
        in_campaign = store.campaign_video_ids(session, campaign_id, ids)
        for name, c in codes:
            where = f"{name} row {c.line}: video {c.video_id}"
            if c.video_id not in in_campaign:
                problems.append(f"{where} is not in campaign {campaign}")
            elif c.video_id not in items:
                problems.append(f"{where} is not in sample {sample_id}")
        if problems:
            raise SheetError(sorted(set(problems), key=problems.index))
        store.save_codes(
            session,
            [
                {
                    "item_id": items[c.video_id],
                    "coder": c.coder,
                    "label": c.label,
                    "skipped": c.skipped,
                    "flagged": c.flagged,
                    "source": name,
                }
                for name, c in codes
            ],
        )
    return sample_id


def _duplicate_coders(sheets) -> list[str]:
    seen: dict[str, str] = {}
    problems = []
    for sheet in sheets:
        for coder in sheet.coders:
            if coder in seen:
                problems.append(f"coder {coder!r} is in both {seen[coder]} and {sheet.path.name}")
            seen.setdefault(coder, sheet.path.name)
    return problems


def score_sample(
    url: str, campaign: str, sample_id: int, target_accuracy: float = TARGET_ACCURACY
) -> ScoreResult:
    """Score every stored code of the sample against the model, and record the figures."""
    with session_scope(url) as session:
        sample = store.get_sample(session, store.campaign_row_id(session, campaign), sample_id)
        coded = store.coded_videos(session, sample_id)
        kind, labels, target = sample.kind, sample.labels, target_accuracy
        figures = figures_for(kind, labels, coded, target)
        by_prompt = {
            prompt: figures_for(kind, labels, [c for c in coded if c.prompt == prompt], target)
            for prompt in sorted({c.prompt for c in coded})
        }
        store.save_score(
            session,
            sample_id,
            figures.n,
            {
                **figures.model_dump(),
                "kind": sample.kind,
                "by_prompt": {k: v.model_dump() for k, v in by_prompt.items()},
            },
        )
        return ScoreResult(sample_id, sample.kind, figures, by_prompt)


def figures_for(
    kind: str, labels: list[str], coded: list[store.CodedVideo], target_accuracy: float
) -> Figures:
    """The agreement figures of some of a sample's videos (all of them, or one prompt version)."""
    from gettok.tasks.validate.score import ScoredVideo, score_codes

    return score_codes(
        [
            ScoredVideo(
                model=model_label(kind, c.annotation),
                confidence=model_confidence(kind, c.annotation),
                codes=c.codes,
            )
            for c in coded
        ],
        list(labels),
        target_accuracy,
    )
