"""Annotate: describe each video and read its on-screen text, classify its stance towards the
campaign's target, label the sentiment of its transcript and summarise it, with an LLM.

Records one `annotations` row per video, kind, model and prompt hash: status (ok, refused, invalid,
failed), the validated answer, tokens and cost, and the provenance (prompt version, temperature,
served model, inputs). A run keeps within one budget; what it leaves stays pending.
"""

from gettok.tasks.annotate.annotator import (
    REQUESTED_KINDS,
    AnnotateResult,
    annotate_videos,
    plan_for,
)
from gettok.tasks.annotate.campaign import annotate_campaign
from gettok.tasks.annotate.cost import CostEstimate, estimate_enrich
from gettok.tasks.annotate.store import pending_videos, record_annotation

__all__ = [
    "REQUESTED_KINDS",
    "AnnotateResult",
    "CostEstimate",
    "annotate_campaign",
    "annotate_videos",
    "estimate_enrich",
    "pending_videos",
    "plan_for",
    "record_annotation",
]
