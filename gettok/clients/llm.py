"""One structured-output request to any OpenAI-compatible server, with its faults, cost and budget.

The SDK's own retries are switched off (`max_retries=0`) so that every attempt is counted here;
429s, 5xx and timeouts are retried through `gettok.retry` (jittered backoff, never sooner than the
server's Retry-After or retry-after-ms, capped), a refusal is recorded as such, and an answer that
fails validation gets one corrective retry quoting the error. Every attempt that returned usage is
charged, and a run's budget refuses new requests once spent.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai
from pydantic import BaseModel, ValidationError

from gettok.models.annotations import strict_json_schema
from gettok.models.api import strip_nul
from gettok.models.schema import AnnotationStatus, utcnow
from gettok.retry import RetryPolicy, call_with_retries, retry_after_s
from gettok.settings import Settings, redact

SANDBOX_FINGERPRINT = "gettok-sandbox"  # the sandbox's system_fingerprint: marks its answers
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English; Spanish runs a little longer
MESSAGE_OVERHEAD_TOKENS = 4


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


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


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
        """(input, output) tokens expected, before sending: what the dry run and budget use."""
        schema = json.dumps(strict_json_schema(self.answer_model))
        tokens = text_tokens(self.system) + text_tokens(self.user_text) + text_tokens(schema)
        tokens += sum(image_tokens(w, h, self.image_detail) for _u, w, h in self.images)
        return tokens, self.expected_output_tokens


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


class LlmOutcome(BaseModel):
    """What one request came to, with the provenance the annotation row stores."""

    status: AnnotationStatus | None  # None: not sent, the budget was reached
    value: dict[str, Any] | None = None
    error: str | None = None
    model: str  # as configured: the stable key of the annotation
    served_model: str | None = None  # as the server named it (e.g. a dated snapshot)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float | None = None  # of the last request, without waits
    attempts: int = 0
    is_sandbox: bool = False
    created_at: Any = None

    @property
    def skipped_for_budget(self) -> bool:
        return self.status is None


class LlmUnavailable(RuntimeError):
    """The server refuses every request (bad key, no access, unknown model): stop the run
    instead of recording the same failure against every video."""


class GaveUp(Exception):
    """Every attempt met a 429, a 5xx, a timeout or a dropped connection."""


class LlmClient:
    """The configured OpenAI-compatible server (OpenAI, Azure gateways, vLLM, Ollama, LM Studio)."""

    def __init__(
        self,
        settings: Settings,
        *,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        """`before_request` runs before every HTTP attempt: e.g. a slot of a Prefect global rate
        limit shared by all workers (`gettok.retry.rate_limit("llm-rate")`)."""
        self.settings = settings
        policy = llm_policy(settings)
        self.policies = {"throttle": policy, "server_error": policy, "network": policy}
        self._before_request = before_request
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
        self._client = openai.OpenAI(
            api_key=key,
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout_s,
            max_retries=0,  # retries are ours, so that each one is counted and capped
        )

    def close(self) -> None:
        self._client.close()

    def estimate_usd(self, request: ChatRequest) -> float:
        return cost_usd(self.settings, request.model, *request.estimated_tokens())

    def annotate(self, request: ChatRequest, budget: Budget) -> LlmOutcome:
        """Send `request` until it gives a valid answer, a refusal, or a recorded failure."""
        outcome = LlmOutcome(status=None, model=request.model)
        messages = request.messages()
        for round_ in range(2):  # the answer, then at most one corrective retry
            estimate = self.estimate_usd(request)
            if not budget.reserve(estimate):
                return outcome  # left pending for a later run with more budget
            completion = None
            try:
                completion = self._send(request, messages, outcome)
            except GaveUp as exc:
                outcome.status, outcome.error = AnnotationStatus.failed, str(exc)
                return outcome
            except (
                openai.AuthenticationError,
                openai.PermissionDeniedError,
                openai.NotFoundError,
            ) as exc:
                raise LlmUnavailable(
                    f"{self._server()} answered HTTP {exc.status_code} for model "
                    f"{request.model!r}: {self._clean(exc.message)}"
                ) from None
            except openai.APIStatusError as exc:  # 4xx other than 429: retrying cannot help
                outcome.status = AnnotationStatus.failed
                outcome.error = f"HTTP {exc.status_code}: {self._clean(exc.message)}"
                return outcome
            except openai.OpenAIError as exc:  # e.g. a body the SDK could not read
                outcome.status = AnnotationStatus.failed
                outcome.error = f"{type(exc).__name__}: {self._clean(str(exc))}"
                return outcome
            finally:
                usage = completion.usage if completion is not None else None
                budget.settle(estimate, self._charge(outcome, usage))
            choice = completion.choices[0] if completion.choices else None
            if choice is None:
                outcome.status, outcome.error = AnnotationStatus.failed, "no choices in the answer"
                return outcome
            message = choice.message
            if message.refusal or choice.finish_reason == "content_filter":
                outcome.status = AnnotationStatus.refused
                outcome.error = self._clean(message.refusal or "content filter")
                return outcome
            content = message.content or ""
            try:
                answer = request.answer_model.model_validate_json(content)
            except ValidationError as exc:
                problem = _validation_summary(exc, choice.finish_reason)
                if round_ == 0:
                    messages = [
                        *messages,
                        {"role": "assistant", "content": content},
                        {"role": "user", "content": _corrective_message(problem)},
                    ]
                    continue
                outcome.status, outcome.error = AnnotationStatus.invalid, self._clean(problem)
                return outcome
            outcome.status, outcome.value = AnnotationStatus.ok, strip_nul(answer.model_dump())
            return outcome
        raise AssertionError("unreachable")

    def _send(self, request: ChatRequest, messages: list[dict[str, Any]], outcome: LlmOutcome):
        """One logical request, retried on 429 / 5xx / timeouts / dropped connections."""
        schema = strict_json_schema(request.answer_model)

        def once():
            outcome.attempts += 1
            if self._before_request is not None:
                self._before_request()
            started = time.perf_counter()
            completion = self._client.chat.completions.create(
                model=request.model,
                messages=messages,
                temperature=request.temperature,
                max_completion_tokens=request.max_output_tokens,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": request.schema_name, "schema": schema, "strict": True},
                },
            )
            outcome.latency_ms = (time.perf_counter() - started) * 1000
            return completion

        try:
            completion = call_with_retries(
                once,
                policies=self.policies,
                kind_of=_fault_kind,
                server_wait_s=_server_wait_s,
                attempts=self.settings.llm_max_attempts,
            )
        except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as e:
            raise GaveUp(f"{self._describe(e)} (gave up after {outcome.attempts} attempts)") from e
        outcome.created_at = utcnow()
        outcome.is_sandbox = completion.system_fingerprint == SANDBOX_FINGERPRINT
        outcome.served_model = completion.model or None
        return completion

    def _describe(self, exc: openai.OpenAIError) -> str:
        if isinstance(exc, openai.APITimeoutError):
            return f"timed out after {self.settings.llm_timeout_s:g} s"
        if isinstance(exc, openai.APIConnectionError):
            return f"connection failed: {self._clean(str(exc))}"
        status = getattr(exc, "status_code", "?")
        return f"HTTP {status}: {self._clean(getattr(exc, 'message', str(exc)))}"

    def _charge(self, outcome: LlmOutcome, usage: Any) -> float:
        """Add one completion's usage to the outcome; return its cost."""
        if usage is None:
            return 0.0
        tokens_in, tokens_out = usage.prompt_tokens or 0, usage.completion_tokens or 0
        cost = cost_usd(self.settings, outcome.model, tokens_in, tokens_out)
        outcome.input_tokens += tokens_in
        outcome.output_tokens += tokens_out
        outcome.cost_usd += cost
        return cost

    def _server(self) -> str:
        return self.settings.openai_base_url or "api.openai.com"

    def _clean(self, text: str) -> str:
        return redact(str(text), self.settings).replace("\x00", "")[:500]


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


def _fault_kind(exc: Exception) -> str | None:
    """The failures worth another try; any other (a 4xx, a body the SDK cannot read) is not."""
    if isinstance(exc, openai.RateLimitError):
        return "throttle"
    if isinstance(exc, openai.InternalServerError):
        return "server_error"
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return "network"
    return None


def _server_wait_s(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    return retry_after_s(getattr(response, "headers", None))


def _validation_summary(exc: ValidationError, finish_reason: str | None) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()[:5]
    )
    if finish_reason == "length":
        problems = f"the answer was cut off at the token limit; {problems}"
    return problems


def _corrective_message(problem: str) -> str:
    return (
        f"Your answer did not match the required JSON schema: {problem}. "
        "Answer again with only the corrected JSON object."
    )
