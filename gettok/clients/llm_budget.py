"""What LLM answers cost in USD (per-model prices; a dated model name falls back to its family),
and a run's budget, shared by concurrent requests."""

from __future__ import annotations

import threading

from gettok.settings import Settings


class PriceUnknown(ValueError):
    """A model with no price: the budget could not be kept, so the run does not start."""


def price_for(settings: Settings, model: str) -> tuple[float, float]:
    """USD per million (input, output) tokens; a dated model name falls back to its family."""
    prices = settings.llm_prices
    if model in prices:
        return prices[model]
    family = max((name for name in prices if model.startswith(name)), key=len, default=None)
    if family is None:
        raise PriceUnknown(
            f"no price for model {model!r}: add it to GETTOK_LLM_PRICES as "
            f'{{"{model}": [input_usd_per_million, output_usd_per_million]}} '
            "(0, 0 for a local server)"
        )
    return prices[family]


def cost_usd(settings: Settings, model: str, input_tokens: int, output_tokens: int) -> float:
    price_in, price_out = price_for(settings, model)
    return (input_tokens * price_in + output_tokens * price_out) / 1_000_000


class Budget:
    """A run's spending limit in USD, shared by concurrent requests.

    A request starts only if what is spent, plus what requests in flight are expected to cost,
    plus its own expected cost stays within the limit; so a run stops at the limit instead of
    overshooting it by the number of requests in flight. Once one request is refused the budget
    is reached: no later request starts, even a smaller one, so a run stops at one clear point.
    """

    def __init__(self, limit_usd: float) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self._reserved = 0.0
        self._lock = threading.Lock()
        self.reached = False

    def reserve(self, estimate_usd: float) -> bool:
        with self._lock:
            if self.reached or self.spent_usd + self._reserved + estimate_usd > self.limit_usd:
                self.reached = True
                return False
            self._reserved += estimate_usd
            return True

    def settle(self, estimate_usd: float, actual_usd: float) -> None:
        with self._lock:
            self._reserved -= estimate_usd
            self.spent_usd += actual_usd

    @property
    def remaining_usd(self) -> float:
        return max(0.0, self.limit_usd - self.spent_usd)
