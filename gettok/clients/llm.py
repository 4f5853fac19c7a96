"""One structured-output request to any OpenAI-compatible server, with its faults, cost and budget.

The SDK's own retries are switched off (`max_retries=0`) so that every attempt is counted here;
429s, 5xx and timeouts are retried through `gettok.retry` (jittered backoff, never sooner than the
server's Retry-After or retry-after-ms, capped), a refusal (the model's, or a content filter's) is
recorded as such, an answer cut at the token limit is asked once more with room to finish, and an
answer that fails validation gets one corrective retry quoting the error. Every answer is charged:
by its `usage`, or by an estimate when the server sends none. A run's budget is a ceiling: a request
starts only if its worst case (the whole `max_completion_tokens`) still fits. A bad key, an unknown
model or an empty balance stops the run at the first answer, for every request after it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai
from pydantic import BaseModel, ValidationError

from gettok.clients.llm_budget import Budget, cost_usd
from gettok.clients.llm_faults import (
    corrective_message,
    error_code,
    fault_kind,
    filter_categories,
    is_empty_balance,
    llm_policy,
    over_limit,
    server_wait_s,
    validation_summary,
)
from gettok.clients.llm_request import ChatRequest, text_tokens
from gettok.models.annotations import strict_json_schema
from gettok.models.api import strip_nul
from gettok.models.schema import AnnotationStatus, utcnow
from gettok.retry import call_with_retries
from gettok.settings import Settings, redact

SANDBOX_FINGERPRINT = "gettok-sandbox"  # the sandbox's system_fingerprint: marks its answers
LENGTH_RETRY_FACTOR = 2  # an answer cut at the token limit is asked again with this much room


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
    usage_estimated: bool = False  # the server sent no token counts: charged by estimate
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
        self._stopped: LlmUnavailable | None = None  # set by the first answer that stops the run
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
        """The expected cost of `request` (the dry run's figure)."""
        return cost_usd(self.settings, request.model, *request.estimated_tokens())

    def ceiling_usd(self, request: ChatRequest, messages=None, max_tokens: int = 0) -> float:
        """The most `request` can cost: its input and every output token it is allowed."""
        messages = messages if messages is not None else request.messages()
        tokens_out = max_tokens or request.max_output_tokens
        return cost_usd(self.settings, request.model, request.input_tokens(messages), tokens_out)

    def annotate(self, request: ChatRequest, budget: Budget) -> LlmOutcome:
        """Send `request` until it gives a valid answer, a refusal, or a recorded failure."""
        if self._stopped is not None:  # an earlier answer said no request can succeed
            raise LlmUnavailable(str(self._stopped))
        outcome = LlmOutcome(status=None, model=request.model)
        messages, max_tokens = request.messages(), request.max_output_tokens
        for round_ in range(2):  # the answer, then at most one more try (cut off, or invalid)
            ceiling = self.ceiling_usd(request, messages, max_tokens)
            if not budget.reserve(ceiling):
                return outcome  # left pending for a later run with more budget
            completion = None
            try:
                completion = self._send(request, messages, max_tokens, outcome)
            except (GaveUp, openai.OpenAIError) as exc:
                return self._failure(exc, request, outcome)
            finally:
                budget.settle(ceiling, self._charge(outcome, request, messages, completion))
            retry = self._read(completion, request, max_tokens, outcome, last=round_ == 1)
            if retry is None:
                return outcome
            messages, max_tokens = retry
        raise AssertionError("unreachable")

    def _read(
        self, completion, request: ChatRequest, max_tokens: int, outcome: LlmOutcome, last: bool
    ) -> tuple[list[dict[str, Any]], int] | None:
        """Judge one answer into `outcome`; or return the messages and limit to try again with."""
        choice = completion.choices[0] if completion.choices else None
        if choice is None:
            outcome.status, outcome.error = AnnotationStatus.failed, "no choices in the answer"
            return None
        message, content = choice.message, choice.message.content or ""
        if message.refusal or choice.finish_reason == "content_filter":
            outcome.status = AnnotationStatus.refused
            outcome.error = self._clean(message.refusal or "content filter: answer filtered")
            return None
        too_long = over_limit(content, completion.usage, max_tokens)
        if too_long:  # the server ignored the limit: never stored, never fed to a later prompt
            outcome.status, outcome.error = AnnotationStatus.invalid, too_long
            return None
        if choice.finish_reason == "length":
            if last:
                outcome.status = AnnotationStatus.invalid
                outcome.error = f"the answer was cut off at the limit of {max_tokens} tokens"
                return None
            return request.messages(), max_tokens * LENGTH_RETRY_FACTOR
        try:
            answer = request.answer_model.model_validate_json(content)
        except ValidationError as exc:
            problem = validation_summary(exc)
            if last:
                outcome.status, outcome.error = AnnotationStatus.invalid, self._clean(problem)
                return None
            corrective = [
                {"role": "assistant", "content": content},
                {"role": "user", "content": corrective_message(problem)},
            ]
            return [*request.messages(), *corrective], max_tokens
        outcome.status, outcome.value = AnnotationStatus.ok, strip_nul(answer.model_dump())
        return None

    def _failure(self, exc: Exception, request: ChatRequest, outcome: LlmOutcome) -> LlmOutcome:
        """What an error answer means: a stop for the whole run, a refusal, or a failure."""
        if isinstance(exc, GaveUp):
            outcome.status, outcome.error = AnnotationStatus.failed, str(exc)
            return outcome
        if is_empty_balance(exc) or isinstance(
            exc, openai.AuthenticationError | openai.PermissionDeniedError | openai.NotFoundError
        ):
            self._stopped = LlmUnavailable(self._stop_reason(exc, request))
            raise self._stopped from None
        if isinstance(exc, openai.BadRequestError) and error_code(exc) == "content_filter":
            outcome.status = AnnotationStatus.refused  # the prompt: asking again gives the same
            outcome.error = self._clean(f"content filter: {filter_categories(exc)}{exc.message}")
            return outcome
        if isinstance(exc, openai.APIStatusError):  # 4xx other than 429: retrying cannot help
            outcome.status = AnnotationStatus.failed
            outcome.error = f"HTTP {exc.status_code}: {self._clean(exc.message)}"
            return outcome
        outcome.status = AnnotationStatus.failed  # e.g. a body the SDK could not read
        outcome.error = f"{type(exc).__name__}: {self._clean(str(exc))}"
        return outcome

    def _stop_reason(self, exc: openai.APIStatusError, request: ChatRequest) -> str:
        said = f"{self._server()} answered HTTP {exc.status_code} for model {request.model!r}"
        if is_empty_balance(exc):
            return (
                f"{said}: the account's balance or quota is used up (insufficient_quota), "
                f"which waiting does not fix: add credit or raise the limit, then run again "
                f"({self._clean(exc.message)})"
            )
        return f"{said}: {self._clean(exc.message)}"

    def _send(
        self,
        request: ChatRequest,
        messages: list[dict[str, Any]],
        max_tokens: int,
        outcome: LlmOutcome,
    ):
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
                max_completion_tokens=max_tokens,
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
                kind_of=fault_kind,
                server_wait_s=server_wait_s,
                attempts=self.settings.llm_max_attempts,
            )
        except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as e:
            if is_empty_balance(e):
                raise  # not a fault that retrying outlasts: the run stops
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

    def _charge(
        self, outcome: LlmOutcome, request: ChatRequest, messages: list[dict[str, Any]], completion
    ) -> float:
        """Add one answer's tokens to the outcome and return its cost: as the server counted
        them, or estimated from the text when it sent no `usage` (never free)."""
        if completion is None:  # an error answer: nothing generated, nothing billed
            return 0.0
        usage = completion.usage
        tokens_in = usage.prompt_tokens if usage is not None else None
        tokens_out = usage.completion_tokens if usage is not None else None
        if tokens_in is None or tokens_out is None:
            outcome.usage_estimated = True
            answer = "".join(
                (c.message.content or "") + (c.message.refusal or "") for c in completion.choices
            )
            tokens_in = tokens_in if tokens_in is not None else request.input_tokens(messages)
            tokens_out = tokens_out if tokens_out is not None else text_tokens(answer)
        cost = cost_usd(self.settings, outcome.model, tokens_in, tokens_out)
        outcome.input_tokens += tokens_in
        outcome.output_tokens += tokens_out
        outcome.cost_usd += cost
        return cost

    def _server(self) -> str:
        return self.settings.openai_base_url or "api.openai.com"

    def _clean(self, text: str) -> str:
        return redact(str(text), self.settings).replace("\x00", "")[:500]
