"""Annotate: describe each video and read its on-screen text, classify its stance towards the
campaign's target, label the sentiment of its transcript and summarise it, with an LLM.

Records one `annotations` row per video, kind, model, prompt hash and inputs: status (ok,
refused, invalid, failed), the validated answer, tokens and cost, and the provenance (prompt
version, temperature, served model, the transcript and frames it read). A run keeps within one
budget; what it leaves stays pending, and so do annotations made from inputs no longer current.
"""

from gettok.lazy_exports import lazy_exports

# Public names, read from their modules on first use: export reads the provenance chain and must
# not import the LLM client and its SDK.
_HOMES = {
    "REQUESTED_KINDS": "annotator",
    "AnnotateResult": "annotator",
    "annotate_videos": "annotator",
    "plan_for": "annotator",
    "annotate_campaign": "campaign",
    "CostEstimate": "cost",
    "estimate_enrich": "cost",
    "pending_videos": "store",
    "record_annotation": "store",
}

__getattr__ = lazy_exports(__name__, _HOMES)

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
