"""What the sandbox LLM answers: a value valid against the requested JSON schema, its known
annotation fields filled from the input. Descriptions come from image statistics (size, mean
colour, brightness), stance and sentiment from keywords in the prompt, summary checks from word
overlap, summaries from the transcript's first words; nothing is OCRed, and the answer says so.
Text fields start with "[sandbox]"."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MARK = "[sandbox]"
WORD = re.compile(r"\w+", re.UNICODE)

# Small bilingual lexicons (the corpus speaks Spanish and English).
POSITIVE = {
    "good",
    "great",
    "love",
    "happy",
    "support",
    "yes",
    "best",
    "hope",
    "thank",
    "thanks",
    "bueno",
    "buena",
    "bien",
    "amor",
    "feliz",
    "apoyo",
    "apoyamos",
    "sí",
    "si",
    "mejor",
    "esperanza",
    "gracias",
    "viva",
    "fuerza",
    "excelente",
}
NEGATIVE = {
    "bad",
    "hate",
    "sad",
    "against",
    "no",
    "worst",
    "corrupt",
    "crisis",
    "fear",
    "angry",
    "never",
    "malo",
    "mala",
    "mal",
    "odio",
    "triste",
    "contra",
    "peor",
    "corrupto",
    "corrupción",
    "miedo",
    "fuera",
    "nunca",
    "violencia",
    "vacancia",
    "renuncia",
}
STOPWORDS = {"the", "of", "as", "a", "an", "de", "del", "la", "el", "los", "las", "y", "and", "to"}
COLOURS = {  # RGB anchors for naming a frame's mean colour
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "grey": (128, 128, 128),
    "red": (200, 30, 30),
    "green": (30, 160, 60),
    "blue": (30, 60, 200),
    "yellow": (230, 210, 40),
    "orange": (240, 140, 30),
    "purple": (130, 50, 160),
    "brown": (120, 80, 40),
    "pink": (240, 150, 180),
    "cyan": (40, 200, 210),
}


def answer_for(schema: dict[str, Any], parts: dict[str, Any]) -> Any:
    """A value valid against `schema`, with the known annotation fields filled from the input."""
    answer = _fill(schema)
    if not isinstance(answer, dict):
        return answer
    properties = schema.get("properties", {})
    prompt = parts["prompt"]
    if "description" in answer:
        answer["description"] = f"{MARK} {describe_images(parts['images'])}"
    if "onscreen_text" in answer:
        answer["onscreen_text"] = f"{MARK} on-screen text not read: the sandbox does no OCR"
    if "summary" in answer:
        answer["summary"] = f"{MARK} {summarise(_section(prompt, 'transcript'))}"
    labels = properties.get("label", {}).get("enum")
    if labels and set(labels) == set(CHECK_LABELS):
        label, confidence = entailment_of(
            _section(prompt, "transcript"), _section(prompt, "summary")
        )
        answer["label"], answer["confidence"] = label, confidence
    elif labels:
        if "rationale" in answer:
            label, confidence, why = stance_of(prompt, labels)
            answer["rationale"] = f"{MARK} {why}"
        else:
            label, confidence = sentiment_of(_section(prompt, "transcript") or prompt, labels)
        answer["label"] = label
        if "confidence" in answer:
            answer["confidence"] = confidence
    return answer


def _fill(schema: dict[str, Any]) -> Any:
    """The simplest value of a JSON schema: first enum value, 0.5, false, "[sandbox]"."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: _fill(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    if kind in ("number", "integer"):
        low, high = schema.get("minimum", 0), schema.get("maximum", 1)
        value = min(max(0.5, low), high)
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return MARK


def _section(prompt: str, field: str) -> str:
    """A field of the prompt's JSON material (gettok's prompts), or of a `<field>` block."""
    material = _material(prompt)
    if field in material:
        return str(material[field]).strip()
    match = re.search(rf"<{field}>(.*?)</{field}>", prompt, re.DOTALL)
    return match.group(1).strip() if match else ""


def _material(prompt: str) -> dict:
    start = prompt.find("{\n")
    if start < 0:
        return {}
    try:
        value, _ = json.JSONDecoder().raw_decode(prompt[start:])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def describe_images(images: list[tuple[np.ndarray, str]]) -> str:
    if not images:
        return "no images were given"
    height, width = images[0][0].shape[:2]
    means = [image.reshape(-1, 3).mean(axis=0)[::-1] for image, _detail in images]  # BGR->RGB
    mean = np.mean(means, axis=0)
    brightness = float(mean.mean())
    level = "dark" if brightness < 85 else "bright" if brightness > 170 else "medium"
    changes = sum(float(np.abs(a - b).mean()) > 20 for a, b in zip(means, means[1:], strict=False))
    return (
        f"{len(images)} frame(s) of {width}x{height} px, mostly {colour_name(mean)} "
        f"(mean RGB {int(mean[0])}, {int(mean[1])}, {int(mean[2])}), {level} brightness, "
        f"{changes} marked colour change(s) between frames"
    )


def colour_name(rgb: np.ndarray) -> str:
    return min(COLOURS, key=lambda name: float(np.sum((np.array(COLOURS[name]) - rgb) ** 2)))


def _words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def sentiment_of(text: str, labels: list[str]) -> tuple[str, float]:
    words = _words(text)
    positive = sum(w in POSITIVE for w in words)
    negative = sum(w in NEGATIVE for w in words)
    if positive == negative:
        label, confidence = "neutral", 0.4 if positive == 0 else 0.5
    else:
        label = "positive" if positive > negative else "negative"
        confidence = min(0.95, 0.55 + 0.1 * abs(positive - negative))
    return (label if label in labels else labels[0]), round(confidence, 2)


def stance_of(prompt: str, labels: list[str]) -> tuple[str, float, str]:
    """Keywords near the target: supportive words give the first label, opposing the second."""
    target_line = re.search(r"^Target:\s*(.+)$", prompt, re.MULTILINE)
    target = target_line.group(1) if target_line else ""
    evidence = " ".join(_section(prompt, tag) for tag in ("transcript", "description", "caption"))
    words = _words(evidence)
    names = {w for w in _words(target) if w not in STOPWORDS and len(w) > 3}
    mentions = sum(w in names for w in words)
    positive = sum(w in POSITIVE for w in words)
    negative = sum(w in NEGATIVE for w in words)
    neutral = next((label for label in labels if "neutral" in label.lower()), labels[-1])
    if mentions == 0 or positive == negative:
        label, confidence = neutral, 0.4 if mentions == 0 else 0.5
    else:
        label = labels[0] if positive > negative else labels[1 if labels[1] != neutral else 0]
        confidence = min(0.95, 0.55 + 0.1 * abs(positive - negative))
    why = (
        f"the target is mentioned {mentions} time(s), with {positive} supportive and "
        f"{negative} opposing keyword(s)"
    )
    return label, round(confidence, 2), why


CHECK_LABELS = ("entailed", "neutral", "contradicted")
NEGATIONS = {"no", "not", "never", "nunca", "jamás", "ni", "nadie"}


def entailment_of(transcript: str, summary: str) -> tuple[str, float]:
    """Judge a summary by its words: all in the transcript, entailed; a negation the transcript
    lacks, contradicted; otherwise neutral (the sandbox's own "[sandbox] the speaker says:" and
    trailing "..." are not claims)."""
    claim = summary.replace(MARK, "").replace("the speaker says:", "").replace("...", " ")
    said, claimed = set(_words(transcript)), set(_words(claim))
    if not claimed:
        return "neutral", 0.4
    if (claimed & NEGATIONS) - said:
        return "contradicted", 0.8
    missing = len(claimed - said) / len(claimed)
    if missing == 0:
        return "entailed", 0.9
    return "neutral", round(max(0.4, 0.8 - missing / 2), 2)


def summarise(transcript: str, max_words: int = 30) -> str:
    words = transcript.split()
    if not words:
        return "the transcript is empty"
    text = " ".join(words[:max_words])
    return f"the speaker says: {text}{'...' if len(words) > max_words else ''}"
