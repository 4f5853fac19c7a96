"""How an OpenAI-compatible server's errors and answers are read: which faults are retried, and
after how long; which mean no request can succeed (an empty balance); why an answer is not kept."""

from __future__ import annotations

from typing import Any

import openai
from pydantic import ValidationError

from gettok.retry import RetryPolicy, retry_after_s
from gettok.settings import Settings

# No tokenizer makes a token longer than this on average over a whole answer: more characters
# than the limit times this means the server ignored the limit (20 MB answers were seen).
MAX_CHARS_PER_TOKEN = 16


def llm_policy(settings: Settings) -> RetryPolicy:
    """The waits and tries for the LLM's 429s, 5xx and timeouts, from the researcher's settings:
    `llm_max_attempts` tries in all, waits from `llm_backoff_s` doubling (with up to as much
    again at random), never sooner than the server's Retry-After, none over `llm_max_wait_s`."""
    return RetryPolicy(
        attempts=settings.llm_max_attempts,
        wait_initial_s=settings.llm_backoff_s,
        wait_max_s=settings.llm_max_wait_s,
        wait_jitter_s=settings.llm_backoff_s,
    )


def fault_kind(exc: Exception) -> str | None:
    """The failures worth another try; any other (a 4xx, an empty balance, a body the SDK cannot
    read) is not."""
    if is_empty_balance(exc):
        return None
    if isinstance(exc, openai.RateLimitError):
        return "throttle"
    if isinstance(exc, openai.InternalServerError):
        return "server_error"
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return "network"
    return None


def server_wait_s(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    return retry_after_s(getattr(response, "headers", None))


def validation_summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()[:5]
    )


def error_code(exc: openai.OpenAIError) -> str | None:
    """The error's `code` (or, in older OpenAI bodies, its `type`), as the server spelled it."""
    return getattr(exc, "code", None) or getattr(exc, "type", None)


def is_empty_balance(exc: openai.OpenAIError) -> bool:
    """OpenAI's 429 `insufficient_quota`: no credit left, unlike a rate limit's 429."""
    return isinstance(exc, openai.RateLimitError) and "insufficient_quota" in (
        getattr(exc, "code", None),
        getattr(exc, "type", None),
    )


def filter_categories(exc: openai.APIStatusError) -> str:
    """Azure's filtered categories from the error's `innererror`, e.g. "violence (high); "."""
    body = exc.body if isinstance(exc.body, dict) else {}
    results = (body.get("innererror") or {}).get("content_filter_result") or {}
    named = [
        f"{name} ({found.get('severity', 'detected')})"
        for name, found in sorted(results.items())
        if isinstance(found, dict) and found.get("filtered")
    ]
    return f"{', '.join(named)}; " if named else ""


def over_limit(content: str, usage: Any, max_tokens: int) -> str | None:
    """Why an answer is longer than the request allowed, or None when it is not."""
    reported = getattr(usage, "completion_tokens", None) if usage is not None else None
    if reported is not None and reported > max_tokens:
        return (
            f"the answer has {reported} tokens, over the limit of {max_tokens}: "
            "the server ignored max_completion_tokens; not stored"
        )
    if len(content) > max_tokens * MAX_CHARS_PER_TOKEN:
        return (
            f"the answer has {len(content)} characters, far over the limit of {max_tokens} "
            "tokens: the server ignored max_completion_tokens; not stored"
        )
    return None


def corrective_message(problem: str) -> str:
    return (
        f"Your answer did not match the required JSON schema: {problem}. "
        "Answer again with only the corrected JSON object."
    )
