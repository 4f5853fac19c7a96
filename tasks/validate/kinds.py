"""What people validate, per kind: the annotation it checks, the codes they may give, and what the
model said in those codes.

Stance and sentiment are coded blind: the coder picks a label and it is compared with the model's.
A summary or a description cannot be coded blind, so the coder sees it and judges it (accurate,
partly, inaccurate); the model's own claim is "accurate", so agreement there is the share of
outputs people judged accurate.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

ANNOTATION_OF_KIND = {
    "stance": "stance",
    "sentiment": "sentiment",
    "summary_check": "summary",
    "description": "description",
}
KINDS = tuple(ANNOTATION_OF_KIND)
SENTIMENT_LABELS = ["positive", "negative", "neutral"]
CHECK_LABELS = ["accurate", "partly", "inaccurate"]
CHECKED_FIELD = {"summary_check": "summary", "description": "description"}


class KindError(ValueError):
    """A kind gettok cannot validate, or a campaign without the labels it needs."""


def is_check(kind: str) -> bool:
    """True when people judge the model's text rather than label the video blind."""
    return kind in CHECKED_FIELD


def labels_for(kind: str, stance_labels: list[str] | None) -> list[str]:
    """The codes a coder may give for `kind` (stance: the campaign's own labels)."""
    if kind not in ANNOTATION_OF_KIND:
        raise KindError(f"unknown kind {kind!r}: use {', '.join(KINDS)}")
    if kind == "stance":
        if not stance_labels:
            raise KindError("the campaign has no [stance] labels: there is no stance to validate")
        return list(stance_labels)
    return list(SENTIMENT_LABELS if kind == "sentiment" else CHECK_LABELS)


def model_label(kind: str, value: dict[str, Any]) -> str | None:
    """The model's answer in the coders' vocabulary."""
    if is_check(kind):
        return "accurate"
    label = value.get("label")
    return str(label) if label is not None else None


def model_confidence(kind: str, value: dict[str, Any]) -> float | None:
    """The confidence the model stated (none for summaries and descriptions)."""
    confidence = None if is_check(kind) else value.get("confidence")
    return float(confidence) if confidence is not None else None


def checked_text(kind: str, value: dict[str, Any]) -> str | None:
    """The model's text a coder judges (summary or description); None for blind kinds."""
    field = CHECKED_FIELD.get(kind)
    return value.get(field) if field else None


def majority_code(codes: dict[str, str | None]) -> str | None:
    """The code most coders gave; None when nobody coded or the top codes tie."""
    counts = Counter(c for c in codes.values() if c is not None).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]
