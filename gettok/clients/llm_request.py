"""One annotation request to an OpenAI-compatible server, and the tokens it is expected to use,
estimated before sending: the dry run's figures and the budget's worst case."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from gettok.models.annotations import strict_json_schema

CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English; Spanish runs a little longer
MESSAGE_OVERHEAD_TOKENS = 4


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


@lru_cache(maxsize=64)
def schema_tokens(answer_model: type[BaseModel]) -> int:
    """The tokens of the answer's JSON schema, sent with every request: counted once per model
    (dumping it for every video cost the dry run 7 s of 57 at 20k videos)."""
    return text_tokens(json.dumps(strict_json_schema(answer_model)))


def image_tokens(width: int, height: int, detail: str = "high") -> int:
    """OpenAI's published cost of one image: 85 base tokens plus 170 per 512-px tile at high
    detail, after fitting in 2048x2048 and shrinking the short side to 768."""
    if detail == "low":
        return 85
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


@dataclass
class ChatRequest:
    """One annotation request: messages plus the answer model they must satisfy."""

    model: str
    system: str
    user_text: str
    answer_model: type[BaseModel]
    schema_name: str
    images: list[tuple[str, int, int]] = field(default_factory=list)  # (data URL, width, height)
    temperature: float = 0.0
    max_output_tokens: int = 800
    expected_output_tokens: int = 200
    image_detail: str = "high"

    def messages(self) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = [{"type": "text", "text": self.user_text}]
        for url, _w, _h in self.images:
            content.append(
                {"type": "image_url", "image_url": {"url": url, "detail": self.image_detail}}
            )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": content}]

    def estimated_tokens(self) -> tuple[int, int]:
        """(input, output) tokens expected, before sending: what the dry run uses."""
        return self.input_tokens(self.messages()), self.expected_output_tokens

    def input_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Estimated input tokens of `messages` (a corrective turn included) with the schema."""
        tokens = schema_tokens(self.answer_model)
        for message in messages:
            content = message.get("content") or ""
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
            for part in parts:
                if part["type"] == "text":
                    tokens += text_tokens(part["text"])
        tokens += sum(image_tokens(w, h, self.image_detail) for _u, w, h in self.images)
        return tokens
