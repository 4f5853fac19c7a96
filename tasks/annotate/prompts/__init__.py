"""Our prompt templates, one TOML file per annotation kind, each with an id and a version.

The prompt hash covers what decides the answer: the system and user text, the output JSON
schema and any campaign values filled in (a stance target and its labels). Editing a template or
a schema changes the hash, so the next run annotates again instead of mixing two prompts' labels.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

PROMPTS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: int
    system: str
    user: str
    expected_output_tokens: int  # for the dry run's estimate
    max_output_tokens: int
    material: tuple[str, ...] = ()  # untrusted fields, sent as one JSON object in `{material}`

    @property
    def name(self) -> str:
        return f"{self.id}-v{self.version}"

    def render(self, **values: Any) -> str:
        """The user message with `{placeholders}` filled (values are never re-interpreted).

        The untrusted fields (transcript, caption, a model's description) go in as one JSON object:
        a caption holding `</caption>` or "ignore the instructions" stays a quoted string value,
        it cannot end its block or pass for our words.
        """
        material = {name: str(values.get(name, "")) for name in self.material}
        trusted = {k: v for k, v in values.items() if k not in self.material}
        return self.user.format_map(
            {**trusted, "material": json.dumps(material, ensure_ascii=False, indent=2)}
        )

    def hash(self, schema: dict[str, Any], **fixed: Any) -> str:
        """The prompt hash: template text, output schema and the fixed values (e.g. target)."""
        body = json.dumps(
            {
                "system": self.system,
                "user": self.user,
                "material": list(self.material),
                "schema": schema,
                "fixed": fixed,
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:32]


@lru_cache(maxsize=16)
def load_prompt(prompt_id: str) -> PromptTemplate:
    """Read `tasks/prompts/{prompt_id}.toml`."""
    path = PROMPTS_DIR / f"{prompt_id}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return PromptTemplate(
        id=data["id"],
        version=int(data["version"]),
        system=data["system"].strip(),
        user=data["user"].strip(),
        expected_output_tokens=int(data.get("expected_output_tokens", 200)),
        max_output_tokens=int(data.get("max_output_tokens", 800)),
        material=tuple(data.get("material", ())),
    )
