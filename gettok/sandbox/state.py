"""What a running sandbox remembers: its config (mutable at runtime), corpus, tokens, searches,
per-day request counts and a fault rng.

Tests hold the same `SandboxState` object the server uses, so they can flip fault rates with
`state.update_config({...})` (or `POST /_sandbox/config` from another process), move the clock
with `state.clock`, and read `state.counters`.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from gettok.sandbox.config import SandboxConfig
from gettok.sandbox.corpus import Corpus

# Fields whose change means a different corpus (the rest are faults, quotas and credentials).
CORPUS_FIELDS = (
    "seed",
    "videos_per_day",
    "private_share",
    "removed_share",
    "slideshow_share",
    "invisible_share",
)
MAX_SEARCHES = 1000  # oldest searches expire first (their ids become "invalid or expired")


@dataclass
class Search:
    """A search the API issued: the request it answers and its full result set (slot order)."""

    search_id: str
    fingerprint: str
    slots: list  # list[CorpusVideo], visible or not


def utc_now() -> datetime:
    return datetime.now(UTC)


class SandboxState:
    def __init__(
        self, config: SandboxConfig | None = None, clock: Callable[[], datetime] = utc_now
    ):
        self.config = config or SandboxConfig()
        self.corpus = Corpus(self.config)
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.tokens: dict[str, datetime] = {}
        self.searches: OrderedDict[str, Search] = OrderedDict()
        self.requests_by_day: Counter[date] = Counter()
        self.records_by_day: Counter[date] = Counter()
        # Fields the service refuses with invalid_params (a test may add one to see the run stop).
        self.rejected_fields: set[str] = set()
        self.lock = threading.RLock()
        self.rng = self._fault_rng()
        self.last_llm_request: dict | None = None
        self.compliance_tasks: dict[int, dict[str, Any]] = {}  # batch compliance, by task id

    def _fault_rng(self) -> random.Random:
        seed = self.config.fault_seed
        return random.Random(seed) if seed is not None else random.Random()

    def chance(self, rate: float) -> bool:
        """One fault draw: True with probability `rate` (no draw at all when the rate is 0)."""
        if rate <= 0:
            return False
        with self.lock:
            return self.rng.random() < rate

    def randint(self, low: int, high: int) -> int:
        with self.lock:
            return self.rng.randint(low, high)

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    def update_config(self, patch: dict[str, Any]) -> SandboxConfig:
        """Apply a (nested) JSON patch to the config; rebuild what depends on the changed parts."""
        with self.lock:
            merged = _deep_merge(self.config.model_dump(mode="json"), patch)
            new = SandboxConfig.model_validate(merged)
            corpus_changed = any(getattr(new, f) != getattr(self.config, f) for f in CORPUS_FIELDS)
            seed_changed = new.fault_seed != self.config.fault_seed
            self.config = new
            if corpus_changed:
                self.corpus = Corpus(new)
                self.searches.clear()
            if seed_changed or "fault_seed" in patch:
                self.rng = self._fault_rng()
            return new

    def reset_usage(self) -> None:
        """Forget the quota used so far (as at 00:00 UTC), tokens and searches."""
        with self.lock:
            self.requests_by_day.clear()
            self.records_by_day.clear()
            self.tokens.clear()
            self.searches.clear()
            self.counters.clear()


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
