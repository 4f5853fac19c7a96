"""What the LLM must answer for each annotation kind, as pydantic models.

Each model is both the structured-output JSON schema sent with the request and the validator of
the answer. The stance model is built per campaign, so that its labels are the campaign's own
and an answer with any other label fails validation.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

Confidence = Field(ge=0.0, le=1.0, description="How sure you are, from 0 (guess) to 1 (certain).")


class Answer(BaseModel):
    """Base for LLM answers: no extra keys, so a drifting model fails loudly."""

    model_config = ConfigDict(extra="forbid")


class Description(Answer):
    """An objective description of the video and, apart, the text shown on screen (GET-Tok)."""

    description: str = Field(min_length=1, description="What happens in the video, objectively.")
    onscreen_text: str = Field(
        description="Text shown in the frames, verbatim; empty if none or unreadable."
    )


class Stance(Answer):
    """A stance towards the campaign's target; `label` is checked against the campaign's labels."""

    label: str
    confidence: float = Confidence
    rationale: str = Field(min_length=1, description="One or two sentences on why.")


class SentimentAnswer(Answer):
    """What the model answers for sentiment."""

    label: Literal["positive", "negative", "neutral"]
    confidence: float = Confidence


class Sentiment(SentimentAnswer):
    """The stored sentiment: the answer plus our flag for low confidence (as the Ecuador study)."""

    low_confidence: bool


class Summary(Answer):
    """A short summary of what the transcript says."""

    summary: str = Field(min_length=1)


class SummaryCheck(Answer):
    """Whether the transcript entails the summary (the Ecuador study's NLI check of summaries)."""

    label: Literal["entailed", "neutral", "contradicted"] = Field(
        description="entailed: the transcript supports every claim of the summary; "
        "contradicted: the transcript says otherwise on some claim; neutral: neither."
    )
    confidence: float = Confidence


@lru_cache(maxsize=32)
def stance_model(labels: tuple[str, ...]) -> type[Stance]:
    """A Stance model whose label must be one of the campaign's labels."""
    label_type = Literal[labels]  # type: ignore[valid-type]
    return create_model(
        "Stance",
        __base__=Stance,
        label=(label_type, Field(description="One of the allowed labels, exactly as written.")),
    )


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the form OpenAI's strict structured output accepts.

    Strict mode wants every property required and `additionalProperties: false`; titles are
    dropped because some OpenAI-compatible servers (vLLM, Ollama) choke on them. The answer is
    still validated with pydantic, so bounds that a server ignores are enforced here. Built once
    per model (pydantic's schema generation cost the dry run 5 ms a video); a copy each call.
    """
    return copy.deepcopy(_strict_json_schema(model))


@lru_cache(maxsize=64)
def _strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = copy.deepcopy(model.model_json_schema())

    def tighten(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("title", None)
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                tighten(value)
        elif isinstance(node, list):
            for value in node:
                tighten(value)

    tighten(schema)
    return schema
