"""The agreement figures as plain text (the terminal) and as Markdown tables (the report)."""

from __future__ import annotations

from gettok.tasks.validate.score import Figures


def number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def figure_lines(f: Figures) -> list[str]:
    """What `gettok validate score` prints, one figure per line."""
    lines = [
        f"{f.coded} videos coded, {f.n} with a majority code; coders: {', '.join(f.coders)}",
        f"accuracy of the model against the majority: {number(f.accuracy)}",
        *(f"Cohen's kappa, model vs {c}: {number(k)}" for c, k in f.kappa_model_vs_coder.items()),
        f"Cohen's kappa, model vs majority: {number(f.kappa_model_vs_majority)}",
        f"Krippendorff's alpha among coders: {number(f.alpha_coders)}; "
        f"with the model as a coder: {number(f.alpha_with_model)}",
        f"macro F1: {number(f.macro_f1)}",
        f"{'label':<24}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}",
        *(
            f"{s.label:<24}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>9}"
            for s in f.per_label
        ),
    ]
    if f.confusion:
        lines.append("confusion (rows: coders' majority; columns: model, same order)")
        lines += [f"{label:<24}" + "".join(f"{c:>6}" for c in row) for label, row in
                  zip(f.labels, f.confusion, strict=True)]  # fmt: skip
    lines += [
        f"confidence {b.low:.1f}-{b.high:.1f}: {b.n} videos, right {b.accuracy:.3f} "
        f"(mean confidence {b.mean_confidence:.3f})"
        for b in f.confidence_bins
    ]
    lines.append(threshold_sentence(f))
    return lines


def threshold_sentence(f: Figures) -> str:
    if not f.confidence_bins:
        return "no confidences stated: no threshold to suggest"
    if f.flag_below is None:
        return f"no confidence level reaches {f.target_accuracy:.0%} accuracy: check every label"
    return (
        f"flag labels with confidence below {f.flag_below:.2f} "
        f"(those at or above are right at least {f.target_accuracy:.0%} of the time)"
    )


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)
