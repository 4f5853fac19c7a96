"""Summary checks (the Ecuador study's NLI validation): how many summaries the transcript
entails, leaves neutral or contradicts, per judge, and the contradicted summaries listed."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from gettok.db import session_scope
from gettok.models.schema import Annotation, AnnotationKind, AnnotationStatus
from gettok.tasks.report.analyses import queries, tables
from gettok.tasks.report.analyses.section import AnalysisContext, Section

LABELS = ("entailed", "neutral", "contradicted")
LISTED = 30  # contradicted summaries shown in the report (all are in the CSV)


def _label():
    return Annotation.value["label"].as_string()


def _mine(campaign: str):
    return (
        Annotation.video_id.in_(queries.campaign_videos(campaign)),
        Annotation.kind == AnnotationKind.summary_check,
    )


def check_counts(session, campaign: str) -> list[tuple[str, str, str, int, float]]:
    """(judge model, prompt, label, summaries, mean confidence) of ok checks, per judge."""
    # One inner row per check: Postgres groups a JSON path given twice as two expressions.
    checks = (
        select(
            Annotation.model.label("model"),
            Annotation.prompt_id.label("prompt"),
            _label().label("label"),
            Annotation.value["confidence"].as_float().label("confidence"),
        )
        .where(*_mine(campaign), Annotation.status == AnnotationStatus.ok)
        .subquery()
    )
    keys = (checks.c.model, checks.c.prompt, checks.c.label)
    rows = session.execute(
        select(*keys, func.count(), func.avg(checks.c.confidence)).group_by(*keys).order_by(*keys)
    ).all()
    return [(m, p, str(label), int(n), float(c or 0.0)) for m, p, label, n, c in rows]


def contradicted(session, campaign: str) -> Iterator[tuple[int, str, float, str]]:
    """(video id, judge model, confidence, the summary checked), streamed, video id order."""
    summary = aliased(Annotation)
    checked_id = Annotation.settings["inputs"]["summary_annotation_id"].as_integer()
    query = (
        select(
            Annotation.video_id,
            Annotation.model,
            Annotation.value["confidence"].as_float(),
            summary.value["summary"].as_string(),
        )
        .outerjoin(summary, summary.id == checked_id)
        .where(*_mine(campaign), Annotation.status == AnnotationStatus.ok)
        .where(_label() == "contradicted")
        .order_by(Annotation.video_id, Annotation.model)
    )
    for vid, model, confidence, text in queries.stream(session, query):
        yield int(vid), model, float(confidence or 0.0), text or ""


def summary_checks_section(ctx: AnalysisContext) -> Section:
    with session_scope(ctx.url) as session:
        counts = check_counts(session, ctx.campaign)
        listed = list(contradicted(session, ctx.campaign))
    count_rows = [[m, p, label, n, round(c, 3)] for m, p, label, n, c in counts]
    header = ["judge", "prompt", "label", "summaries", "mean_confidence"]
    csv_counts = tables.write_csv(ctx.out_dir / "summary_checks.csv", header, count_rows)
    rows = [[v, m, round(c, 3), s] for v, m, c, s in listed]
    csv_bad = tables.write_csv(
        ctx.out_dir / "summaries_contradicted.csv",
        ["video_id", "judge", "confidence", "summary"],
        rows,
    )
    if not counts:
        text = (
            "No summary has been checked yet (`gettok enrich --kind summary_check`); "
            f"[{csv_counts.name}]({csv_counts.name}) and [{csv_bad.name}]({csv_bad.name}) "
            "hold their headers only."
        )
    else:
        text = "\n\n".join(
            [
                "Does the transcript entail the summary? Each check by its judge (the LLM, or a "
                "local NLI model), with the judge's mean confidence.",
                tables.markdown(
                    ["judge", "prompt", "label", "summaries", "mean confidence"], count_rows
                ),
                f"Contradicted summaries ({len(rows):,}):",
                tables.markdown(["video", "judge", "confidence", "summary"], rows, limit=LISTED)
                if rows
                else "None.",
                f"Tables: [summary_checks.csv]({csv_counts.name}), "
                f"[summaries_contradicted.csv]({csv_bad.name})",
            ]
        )
    return Section("summary-checks", "Summary checks", text, [], [csv_counts, csv_bad])
