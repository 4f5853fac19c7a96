"""The LLM client against the bodies real OpenAI-compatible servers send (tests/fixtures/openai/,
sources in SOURCES.md), replayed over HTTP by the sandbox and read by the real openai SDK: an
empty balance, content filters, answers cut at the limit or over it, and answers without usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gettok.clients.llm import LlmClient, LlmUnavailable
from gettok.clients.llm_budget import Budget
from gettok.clients.llm_request import ChatRequest
from gettok.models.annotations import SentimentAnswer, Summary
from gettok.models.schema import AnnotationStatus
from gettok.settings import get_settings

FIXTURES = Path(__file__).parent / "fixtures" / "openai"


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def serve(sandbox, *answers: tuple[int, dict] | tuple[int, dict, int]) -> None:
    """Queue (status, body[, times]) answers; the sandbox answers normally after them."""
    canned = [{"status": a[0], "body": a[1], "times": a[2] if len(a) > 2 else 1} for a in answers]
    sandbox.state.update_config({"llm": {"canned": canned}})


def request(answer_model=SentimentAnswer, text="<transcript>hola</transcript>", limit=200):
    return ChatRequest(
        model="sandbox-vision",
        system="You annotate videos.",
        user_text=text,
        answer_model=answer_model,
        schema_name="test",
        max_output_tokens=limit,
    )


@pytest.fixture
def client(sandbox_env):
    settings = get_settings(
        llm_model="sandbox-vision",
        llm_prices={"sandbox-vision": (1000.0, 2000.0)},
        llm_max_attempts=4,
    )
    made = LlmClient(settings)
    yield made
    made.close()


def requests_made(sandbox) -> int:
    return sandbox.state.counters["llm_requests"]


@pytest.mark.parametrize(
    "body", ["insufficient_quota_429.json", "insufficient_quota_429_2023.json"]
)
def test_an_empty_balance_stops_at_once_and_for_every_later_request(client, sandbox_env, body):
    serve(sandbox_env, (429, recorded(body), 10))
    with pytest.raises(LlmUnavailable, match="insufficient_quota.*add credit"):
        client.annotate(request(), Budget(100.0))
    assert requests_made(sandbox_env) == 1  # a rate limit would have been tried 4 times
    with pytest.raises(LlmUnavailable, match="insufficient_quota"):
        client.annotate(request(), Budget(100.0))  # the next video: not sent at all
    assert requests_made(sandbox_env) == 1


def test_a_rate_limit_429_is_still_retried(client, sandbox_env):
    limited = {"error": {"message": "Rate limit reached", "type": "requests", "param": None}}
    limited["error"]["code"] = "rate_limit_exceeded"
    serve(sandbox_env, (429, limited, 2))
    outcome = client.annotate(request(), Budget(100.0))
    assert outcome.status is AnnotationStatus.ok and outcome.attempts == 3


def test_a_prompt_refused_by_azures_content_filter_is_refused_once(client, sandbox_env):
    serve(sandbox_env, (400, recorded("azure_content_filter_400.json"), 10))
    outcome = client.annotate(request(), Budget(100.0))
    assert outcome.status is AnnotationStatus.refused and outcome.attempts == 1
    assert outcome.error.startswith("content filter: hate (high), self-harm (high), violence")
    assert requests_made(sandbox_env) == 1


def test_an_answer_filtered_with_finish_reason_content_filter_is_refused(client, sandbox_env):
    serve(sandbox_env, (200, recorded("azure_finish_content_filter_200.json")))
    outcome = client.annotate(request(), Budget(100.0))
    assert outcome.status is AnnotationStatus.refused and outcome.value is None
    assert outcome.input_tokens == 150  # billed as the server counted


def test_an_answer_cut_at_the_limit_is_asked_again_with_room_then_invalid(client, sandbox_env):
    cut = recorded("finish_length_200.json")
    serve(sandbox_env, (200, cut), (200, cut))
    outcome = client.annotate(request(Summary, limit=400), Budget(100.0))
    assert outcome.status is AnnotationStatus.invalid and outcome.attempts == 2
    assert outcome.error == "the answer was cut off at the limit of 800 tokens"
    assert sandbox_env.state.last_llm_request["max_completion_tokens"] == 800
    assert sandbox_env.state.last_llm_request["messages"] == request().messages()[:1] + [
        {"role": "user", "content": [{"type": "text", "text": "<transcript>hola</transcript>"}]}
    ]  # the same question, not a corrective turn quoting the cut answer


def test_an_answer_cut_once_then_finished_is_ok(client, sandbox_env):
    serve(sandbox_env, (200, recorded("finish_length_200.json")))
    outcome = client.annotate(request(Summary, limit=400), Budget(100.0))
    assert outcome.status is AnnotationStatus.ok and outcome.attempts == 2
    assert outcome.output_tokens > 400  # both answers are billed


def test_an_answer_without_usage_is_charged_an_estimate_never_zero(client, sandbox_env):
    serve(sandbox_env, (200, recorded("no_usage_200.json")))
    budget = Budget(100.0)
    outcome = client.annotate(request(), budget)
    assert outcome.status is AnnotationStatus.ok and outcome.usage_estimated
    assert outcome.input_tokens > 0 and outcome.output_tokens > 0
    assert budget.spent_usd == pytest.approx(outcome.cost_usd) and outcome.cost_usd > 0


def test_the_budget_is_a_ceiling_even_when_the_server_sends_no_usage(client, sandbox_env):
    sandbox_env.state.update_config({"llm": {"no_usage": 1.0}})
    limit = 3.5 * client.ceiling_usd(request())
    budget = Budget(limit)
    outcomes = [client.annotate(request(), budget) for _ in range(20)]
    sent = [o for o in outcomes if not o.skipped_for_budget]
    assert 3 <= len(sent) < 20 and requests_made(sandbox_env) == len(sent)
    assert 0 < budget.spent_usd <= limit


@pytest.mark.parametrize(
    ("content", "usage_out", "why"),
    [
        ('{"summary": "' + "a" * 20_000 + '"}', 50, "characters"),  # the server lied in usage
        ('{"summary": "long"}', 5_000, "tokens"),  # the server said it went over
    ],
)
def test_an_answer_over_the_limit_is_invalid_and_not_kept(
    client, sandbox_env, content, usage_out, why
):
    body = recorded("no_usage_200.json")
    body["choices"][0]["message"]["content"] = content
    body["usage"] = {"prompt_tokens": 10, "completion_tokens": usage_out, "total_tokens": 0}
    serve(sandbox_env, (200, body))
    outcome = client.annotate(request(Summary, limit=400), Budget(100.0))
    assert outcome.status is AnnotationStatus.invalid and outcome.value is None
    assert why in outcome.error and "not stored" in outcome.error and len(outcome.error) < 200
    assert outcome.attempts == 1  # not quoted back in a corrective turn


def test_an_unknown_model_stops_every_later_request_too(client, sandbox_env):
    missing = {"error": {"message": "The model `gpt-9` does not exist", "type": "invalid_request"}}
    missing["error"] |= {"param": None, "code": "model_not_found"}
    serve(sandbox_env, (404, missing, 10))
    with pytest.raises(LlmUnavailable, match="HTTP 404"):
        client.annotate(request(), Budget(100.0))
    with pytest.raises(LlmUnavailable, match="HTTP 404"):
        client.annotate(request(), Budget(100.0))
    assert requests_made(sandbox_env) == 1
