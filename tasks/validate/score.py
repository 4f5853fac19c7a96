"""Agreement between the model and the coders, with scikit-learn's metrics and `krippendorff`.

The reference for the model is the coders' majority code (a tie has no majority and is left out);
a video nobody coded counts nowhere. Undefined figures (kappa when every code is the same label,
alpha with one coder) are None, never a made-up 0 or 1.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import krippendorff
import numpy as np
from pydantic import BaseModel
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

from gettok.tasks.validate import TARGET_ACCURACY
from gettok.tasks.validate.kinds import majority_code

# Confidence bins: is a label given with confidence 0.9 right nine times in ten?
BIN_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class ScoredVideo:
    """One coded video: the model's label and confidence, and each coder's code (None: uncoded)."""

    model: str | None
    confidence: float | None
    codes: dict[str, str | None]


class LabelScore(BaseModel):
    label: str
    precision: float
    recall: float
    f1: float
    support: int  # videos whose majority code is this label


class ConfidenceBin(BaseModel):
    low: float
    high: float
    n: int
    accuracy: float
    mean_confidence: float


class Figures(BaseModel):
    """Everything `gettok validate score` prints and stores for one sample."""

    n: int  # videos with a majority code: the model is scored on these
    coded: int  # videos with at least one code
    coders: list[str]
    labels: list[str]
    accuracy: float | None
    kappa_model_vs_coder: dict[str, float | None]
    kappa_model_vs_majority: float | None
    alpha_coders: float | None
    alpha_with_model: float | None
    per_label: list[LabelScore]
    macro_f1: float | None
    confusion: list[list[int]]  # rows: majority code, columns: model label, both in `labels` order
    confidence_bins: list[ConfidenceBin]
    target_accuracy: float
    flag_below: float | None  # None: no confidence reaches the target, check every label

    def headline(self) -> dict[str, float | int | None]:
        return {
            "n": self.n,
            "kappa_model_vs_majority": self.kappa_model_vs_majority,
            "alpha_coders": self.alpha_coders,
            "macro_f1": self.macro_f1,
        }


def score_codes(
    videos: list[ScoredVideo], labels: list[str], target_accuracy: float = TARGET_ACCURACY
) -> Figures:
    coders = sorted({c for v in videos for c in v.codes})
    labels = labels + sorted({v.model for v in videos if v.model and v.model not in labels})
    coded = [v for v in videos if any(c is not None for c in v.codes.values())]
    pairs = [(v, majority_code(v.codes)) for v in coded]
    scored = [(v, m) for v, m in pairs if m is not None and v.model is not None]
    truth = [m for _, m in scored]
    model = [v.model for v, _ in scored]
    return Figures(
        n=len(scored),
        coded=len(coded),
        coders=coders,
        labels=labels,
        accuracy=_mean([t == p for t, p in zip(truth, model, strict=True)]),
        kappa_model_vs_coder={c: _kappa_against(coded, c) for c in coders},
        kappa_model_vs_majority=_kappa(truth, model),
        alpha_coders=_alpha([[v.codes.get(c) for v in coded] for c in coders], labels),
        alpha_with_model=_alpha(
            [[v.codes.get(c) for v in coded] for c in coders] + [[v.model for v in coded]], labels
        ),
        per_label=_per_label(truth, model, labels),
        macro_f1=_macro_f1(truth, model),
        confusion=confusion_matrix(truth, model, labels=labels).tolist() if scored else [],
        confidence_bins=_confidence_bins(scored),
        target_accuracy=target_accuracy,
        flag_below=flag_threshold(scored, target_accuracy),
    )


def _finite(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _mean(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def _kappa(a: list[str], b: list[str]) -> float | None:
    if not a:
        return None
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")  # one label only: kappa is undefined, said as None
        return _finite(cohen_kappa_score(a, b, replace_undefined_by=np.nan))


def _kappa_against(videos: list[ScoredVideo], coder: str) -> float | None:
    pairs = [(v.codes[coder], v.model) for v in videos if v.codes.get(coder) and v.model]
    return _kappa([c for c, _ in pairs], [m for _, m in pairs])


def _alpha(rows: list[list[str | None]], labels: list[str]) -> float | None:
    """Krippendorff's alpha (nominal) among the rows' coders; None with fewer than two."""
    if len(rows) < 2 or not rows[0]:
        return None
    index = {label: i for i, label in enumerate(labels)}
    data = np.array([[np.nan if c is None else index[c] for c in row] for row in rows], dtype=float)
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            return _finite(
                krippendorff.alpha(
                    reliability_data=data,
                    level_of_measurement="nominal",
                    value_domain=list(range(len(labels))),
                )
            )
    except ValueError:  # no video coded by two coders: nothing to agree on
        return None


def _per_label(truth: list[str], model: list[str], labels: list[str]) -> list[LabelScore]:
    if not truth:
        return []
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, model, labels=labels, zero_division=0
    )
    return [
        LabelScore(label=label, precision=p, recall=r, f1=f, support=int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    ]


def _macro_f1(truth: list[str], model: list[str]) -> float | None:
    """Mean F1 over the labels that occur (in the codes or the model's answers)."""
    if not truth:
        return None
    _, _, f1, _ = precision_recall_fscore_support(
        truth, model, labels=sorted(set(truth) | set(model)), average="macro", zero_division=0
    )
    return float(f1)


def _confidence_bins(scored: list[tuple[ScoredVideo, str]]) -> list[ConfidenceBin]:
    bins = []
    for i, (low, high) in enumerate(zip(BIN_EDGES, BIN_EDGES[1:], strict=False)):
        last = i == len(BIN_EDGES) - 2
        inside = [
            (v.confidence, v.model == m)
            for v, m in scored
            if v.confidence is not None
            and low <= v.confidence
            and (v.confidence < high or (last and v.confidence <= high))
        ]
        if inside:
            bins.append(
                ConfidenceBin(
                    low=low,
                    high=high,
                    n=len(inside),
                    accuracy=sum(ok for _, ok in inside) / len(inside),
                    mean_confidence=sum(c for c, _ in inside) / len(inside),
                )
            )
    return bins


def flag_threshold(scored: list[tuple[ScoredVideo, str]], target: float) -> float | None:
    """The lowest confidence t such that labels at t or above are right at least `target` of the
    time: labels below t should be flagged for a person. None when no t reaches the target."""
    known = [(v.confidence, v.model == m) for v, m in scored if v.confidence is not None]
    for t in sorted({c for c, _ in known}):
        kept = [ok for c, ok in known if c >= t]
        if sum(kept) / len(kept) >= target:
            return t
    return None
