"""Local classifiers by model name, as alternatives to the LLM for two kinds:

- sentiment by zero-shot classification (transformers' "zero-shot-classification" pipeline; the
  Ecuador study used xlm-roberta-large-xnli), labels positive / negative / neutral;
- the summary check by an NLI cross-encoder (sentence-transformers' CrossEncoder), premise the
  transcript, hypothesis the summary: entailed / neutral / contradicted.

Each names its model and the settings that decide its answer (hypothesis template, labels, the
weights' hash for a local folder), which go into the annotation's provenance. torch and
transformers load only when a classifier first runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

SENTIMENT_LABELS = ("positive", "negative", "neutral")
HYPOTHESIS = "The sentiment of this text is {}."
# The labels NLI models give, to the summary check's words.
NLI_LABELS = {"entailment": "entailed", "neutral": "neutral", "contradiction": "contradicted"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def uses_local_engine(kind: str, settings) -> bool:
    """Whether the settings give `kind` to a local classifier rather than the LLM."""
    return (kind == "sentiment" and settings.sentiment_engine == "zero-shot") or (
        kind == "summary_check" and settings.summary_check_engine == "nli"
    )


class LocalModelUnavailable(RuntimeError):
    """The model cannot be loaded (not downloaded, no network, not a classifier of this kind)."""


def weights_sha256(name: str) -> str | None:
    """SHA-256 of a local model folder's weights (None for a hub name)."""
    for file in WEIGHT_FILES:
        path = Path(name) / file
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
    return None


@dataclass
class LocalClassifier:
    """What both engines share: the model, its settings and their hash (the rows' prompt hash)."""

    model: str
    engine: str
    settings: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def provenance(self) -> dict[str, Any]:
        weights = weights_sha256(self.model)
        extra = {"weights_sha256": weights} if weights else {}
        return {"engine": self.engine, **self.settings, **extra}

    @property
    def settings_hash(self) -> str:
        body = json.dumps({"model": self.model, **self.provenance}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:32]


class ZeroShotSentiment(LocalClassifier):
    def __init__(self, model: str, low_confidence_below: float, batch_size: int = 16):
        super().__init__(
            model,
            "zero-shot-classification",
            {"labels": list(SENTIMENT_LABELS), "hypothesis_template": HYPOTHESIS},
        )
        self.low_confidence_below = low_confidence_below
        self.batch_size = batch_size

    @cached_property
    def pipeline(self):
        try:
            from transformers import pipeline

            return pipeline("zero-shot-classification", model=self.model, device=-1)
        except (OSError, ValueError, ImportError) as exc:
            raise LocalModelUnavailable(f"zero-shot model {self.model!r}: {exc}") from exc

    def classify(self, texts: list[str]) -> list[dict[str, Any]]:
        """One answer per text: the best label, its score as confidence, flagged when low."""
        found = self.pipeline(
            texts,
            candidate_labels=list(SENTIMENT_LABELS),
            hypothesis_template=HYPOTHESIS,
            batch_size=self.batch_size,
        )
        found = [found] if isinstance(found, dict) else found
        return [
            {
                "label": r["labels"][0],
                "confidence": round(float(r["scores"][0]), 4),
                "low_confidence": float(r["scores"][0]) < self.low_confidence_below,
            }
            for r in found
        ]


class NliSummaryCheck(LocalClassifier):
    def __init__(self, model: str, batch_size: int = 16):
        super().__init__(
            model, "nli-cross-encoder", {"premise": "transcript", "hypothesis": "summary"}
        )
        self.batch_size = batch_size

    @cached_property
    def cross_encoder(self):
        try:
            from sentence_transformers import CrossEncoder

            encoder = CrossEncoder(self.model, device="cpu")
        except (OSError, ValueError, ImportError) as exc:
            raise LocalModelUnavailable(f"NLI model {self.model!r}: {exc}") from exc
        names = {i: str(n).casefold() for i, n in encoder.model.config.id2label.items()}
        if sorted(names.values()) != sorted(NLI_LABELS):
            raise LocalModelUnavailable(
                f"{self.model!r} is not an NLI model: its labels are {sorted(names.values())}"
            )
        return encoder, names

    def classify(self, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """One answer per (transcript, summary): the most probable relation and its probability."""
        encoder, names = self.cross_encoder
        import numpy as np

        logits = np.asarray(encoder.predict(pairs, batch_size=self.batch_size, apply_softmax=False))
        logits = logits.reshape(len(pairs), -1)
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        best = probabilities.argmax(axis=1)
        return [
            {"label": NLI_LABELS[names[int(i)]], "confidence": round(float(p[i]), 4)}
            for i, p in zip(best, probabilities, strict=True)
        ]
