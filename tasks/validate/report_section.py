"""The report's validation section: how far people agree with each AI label, per kind and per
prompt version, computed from every code stored when the report is written."""

from __future__ import annotations

from gettok.db import session_scope
from gettok.tasks.validate import TARGET_ACCURACY, figures_for, store
from gettok.tasks.validate.present import markdown_table, number, threshold_sentence

NO_VALIDATION = (
    "No validation yet: `gettok validate sample` draws a sample for people to code, and "
    "`gettok validate score` measures their agreement with the model."
)
HEADER = ["sample", "kind", "prompt version", "coded", "scored", "accuracy",
          "κ model vs majority", "α coders", "α with model", "macro F1", "flag below"]  # fmt: skip


def validation_section(url: str, campaign: str) -> str:
    """`## Validation` in Markdown: one row per sample and prompt version, then per sample the
    per-label scores, the confusion matrix and the confidence threshold."""
    with session_scope(url) as session:
        samples = store.campaign_samples(session, store.campaign_row_id(session, campaign))
        coded = {s.id: store.coded_videos(session, s.id) for s in samples}
    parts = ["## Validation"]
    rows, details = [], []
    for s in sorted(samples, key=lambda s: (s.kind, s.id)):
        if not any(c.codes for c in coded[s.id]):
            continue
        overall = figures_for(s.kind, s.labels, coded[s.id], TARGET_ACCURACY)
        versions = sorted({c.prompt for c in coded[s.id]})
        for prompt in versions:
            f = figures_for(
                s.kind, s.labels, [c for c in coded[s.id] if c.prompt == prompt], TARGET_ACCURACY
            )
            rows.append(_row(s.id, s.kind, prompt, f))
        if len(versions) > 1:
            rows.append(_row(s.id, s.kind, "all", overall))
        details.append(_details(s.id, s.kind, overall))
    if not rows:
        return "\n\n".join([*parts, NO_VALIDATION])
    parts.append(
        "People's codes against the model's labels (the coders' majority is the reference; "
        "summaries and descriptions are judged accurate, partly or inaccurate)."
    )
    return "\n\n".join([*parts, markdown_table(HEADER, rows), *details])


def _row(sample_id: int, kind: str, prompt: str, f) -> list[object]:
    return [
        sample_id, kind, f"`{prompt}`", f.coded, f.n, number(f.accuracy),
        number(f.kappa_model_vs_majority), number(f.alpha_coders), number(f.alpha_with_model),
        number(f.macro_f1), number(f.flag_below, 2),
    ]  # fmt: skip


def _details(sample_id: int, kind: str, f) -> str:
    per_label = markdown_table(
        ["label", "precision", "recall", "F1", "support"],
        [[s.label, number(s.precision), number(s.recall), number(s.f1), s.support]
         for s in f.per_label],
    )  # fmt: skip
    confusion = (
        markdown_table(
            ["coders' majority \\ model", *f.labels],
            [[label, *row] for label, row in zip(f.labels, f.confusion, strict=True)],
        )
        if f.confusion
        else ""
    )
    coders = ", ".join(f.coders) or "none"
    return "\n\n".join(
        [f"### Sample {sample_id}: {kind} (coders: {coders})", per_label, confusion,
         threshold_sentence(f) + "."]
    )  # fmt: skip
