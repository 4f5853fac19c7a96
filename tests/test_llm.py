"""The LLM client against the sandbox's chat completions, through the real openai SDK over HTTP:
answers per kind, every fault, costs, the budget, and the token estimates."""

from __future__ import annotations

import base64
import dataclasses
import time

import cv2
import numpy as np
import pytest
from pydantic import field_validator

from gettok.clients.llm import LlmClient, LlmUnavailable
from gettok.clients.llm_budget import Budget, PriceUnknown, cost_usd
from gettok.clients.llm_faults import llm_policy
from gettok.clients.llm_request import ChatRequest, image_tokens
from gettok.models.annotations import Description, SentimentAnswer, Summary, stance_model
from gettok.models.schema import AnnotationStatus
from gettok.settings import get_settings
from tests.no_waits import real_waits

LABELS = ("support", "no support", "neutral")
TARGET = "Target: Pedro Castillo as President of Peru\n"


def jpeg_url(bgr: tuple[int, int, int], size=(72, 128)) -> tuple[str, int, int]:
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[:] = bgr
    ok, buffer = cv2.imencode(".jpg", image)
    assert ok
    return "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode(), *size


def request(answer_model=SentimentAnswer, text="<transcript>hola</transcript>", images=()):
    return ChatRequest(
        model="sandbox-vision",
        system="You annotate videos.",
        user_text=text,
        answer_model=answer_model,
        schema_name="test",
        images=list(images),
    )


@pytest.fixture
def client_for(sandbox_env):
    """A client factory on the sandbox (retries keep their tries, not their waits: conftest)."""
    made = []

    def make(**overrides):
        overrides = {
            "llm_model": "sandbox-vision",
            "llm_prices": {"sandbox-vision": (1000.0, 2000.0)},
            "llm_backoff_s": 0.5,
            **overrides,
        }
        client = LlmClient(get_settings(**overrides))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def requests_made(sandbox) -> int:
    return sandbox.state.counters["llm_requests"]


def test_each_kind_answers_valid_marked_and_from_the_input(client_for, sandbox_env):
    client, budget = client_for(), Budget(100.0)
    blue, red = jpeg_url((200, 60, 30)), jpeg_url((30, 30, 210))

    described = client.annotate(request(Description, "Describe.", [blue, blue]), budget)
    assert described.status is AnnotationStatus.ok and described.is_sandbox
    assert described.value["description"].startswith("[sandbox] 2 frame(s) of 72x128 px")
    assert "blue" in described.value["description"]
    assert "no OCR" in described.value["onscreen_text"]
    red_description = client.annotate(request(Description, "Describe.", [red]), budget)
    assert "red" in red_description.value["description"]
    assert "1 frame(s)" in red_description.value["description"]

    stance = stance_model(LABELS)
    support = client.annotate(
        request(stance, TARGET + "<transcript>Viva Castillo, apoyo total</transcript>"), budget
    )
    against = client.annotate(
        request(stance, TARGET + "<transcript>Castillo corrupto, fuera</transcript>"), budget
    )
    unrelated = client.annotate(
        request(stance, TARGET + "<transcript>ceviche</transcript>"), budget
    )
    assert [o.value["label"] for o in (support, against, unrelated)] == list(LABELS)
    assert support.value["rationale"].startswith("[sandbox]")

    sentiment = client.annotate(request(text="<transcript>gracias, feliz</transcript>"), budget)
    assert sentiment.value == {"label": "positive", "confidence": 0.75}
    summary = client.annotate(request(Summary, "<transcript>uno dos tres</transcript>"), budget)
    assert summary.value["summary"] == "[sandbox] the speaker says: uno dos tres"

    # Deterministic: the same input gives the same answer.
    again = client.annotate(request(Description, "Describe.", [blue, blue]), budget)
    assert again.value == described.value
    assert requests_made(sandbox_env) == 8
    assert described.input_tokens > 2 * 85 and described.output_tokens > 0
    assert described.cost_usd == pytest.approx(
        (described.input_tokens * 1000 + described.output_tokens * 2000) / 1e6
    )
    outcomes = (described, red_description, support, against, unrelated, sentiment, summary, again)
    assert budget.spent_usd == pytest.approx(sum(o.cost_usd for o in outcomes))


def test_429_gives_up_after_the_attempts_without_sdk_retries(client_for, sandbox_env):
    sandbox_env.state.update_config({"llm": {"rate_limit_429": 1.0}})
    client = client_for(llm_max_attempts=3, llm_max_wait_s=30)
    outcome = client.annotate(request(), Budget(100.0))
    assert outcome.status is AnnotationStatus.failed and "HTTP 429" in outcome.error
    assert "gave up after 3 attempts" in outcome.error
    assert requests_made(sandbox_env) == outcome.attempts == 3  # no hidden SDK retries
    assert outcome.cost_usd == 0


@pytest.mark.parametrize(
    ("headers", "wait_s"),
    [
        ({"retry_after_s": 30, "retry_after_ms": 300}, 0.3),  # the finer header wins
        ({"retry_after_s": 1}, 1.0),
    ],
)
def test_429_waits_as_long_as_the_server_asks_over_http(sandbox_env, headers, wait_s):
    sandbox_env.state.update_config({"llm": {"rate_limit_429": 1.0, **headers}})
    settings = get_settings(llm_model="sandbox-vision", llm_max_attempts=3, llm_backoff_s=0)
    client = LlmClient(settings)
    try:
        with real_waits() as waits:
            started = time.monotonic()
            outcome = client.annotate(request(), Budget(100.0))
            elapsed = time.monotonic() - started
    finally:
        client.close()
    assert outcome.status is AnnotationStatus.failed and outcome.attempts == 3
    assert waits == [pytest.approx(wait_s)] * 2  # between the 3 attempts, no backoff of ours
    assert 2 * wait_s <= elapsed < 2 * wait_s + 5  # waited for real, not just scheduled


def test_the_llm_policy_comes_from_the_settings(settings_env):
    policy = llm_policy(get_settings(llm_max_attempts=4, llm_backoff_s=1.0, llm_max_wait_s=3))
    assert policy.attempts == 4 and policy.delays() == [1.0, 2.0, 3.0]
    for retry in (1, 2, 3):  # jittered: up to one more backoff, never past the cap
        assert min(3, 2 ** (retry - 1)) <= policy.wait_s(retry) <= min(3, 2 ** (retry - 1) + 1)
    assert policy.wait_s(1, server_wait_s=2.5) == 2.5  # never sooner than the server asked
    assert policy.wait_s(1, server_wait_s=60) == 3  # nor longer than the cap


def test_429_then_success_is_ok(client_for, sandbox_env):
    sandbox_env.state.update_config({"llm": {"rate_limit_429": 0.5}, "fault_seed": 7})
    client = client_for(llm_max_attempts=10)
    outcomes = [client.annotate(request(), Budget(100.0)) for _ in range(6)]
    assert all(o.status is AnnotationStatus.ok for o in outcomes)
    assert sandbox_env.state.counters["llm_429"] > 0
    assert sum(o.attempts for o in outcomes) == requests_made(sandbox_env)


def test_5xx_is_retried_then_fails(client_for, sandbox_env):
    sandbox_env.state.update_config({"llm": {"error_500": 1.0}})
    client = client_for(llm_max_attempts=4, llm_backoff_s=1.0, llm_max_wait_s=100)
    outcome = client.annotate(request(), Budget(100.0))
    assert outcome.status is AnnotationStatus.failed and "HTTP 500" in outcome.error
    assert requests_made(sandbox_env) == outcome.attempts == 4


def test_timeout_is_retried_then_recorded(client_for, sandbox_env):
    sandbox_env.state.update_config({"llm": {"timeout": 1.0, "timeout_s": 1.5}})
    client = client_for(llm_timeout_s=0.3, llm_max_attempts=2)
    outcome = client.annotate(request(), Budget(100.0))
    assert outcome.status is AnnotationStatus.failed
    assert outcome.error.startswith("timed out after 0.3 s")
    assert outcome.attempts == 2


def test_refusal_is_recorded_not_retried(client_for, sandbox_env):
    sandbox_env.state.update_config({"llm": {"refusal": 1.0}})
    outcome = client_for().annotate(request(), Budget(100.0))
    assert outcome.status is AnnotationStatus.refused and outcome.value is None
    assert outcome.error.startswith("[sandbox] I can't help")
    assert requests_made(sandbox_env) == 1 and outcome.output_tokens > 0  # refusals are billed


def test_invalid_json_gets_one_corrective_retry(client_for, sandbox_env):
    sandbox_env.state.update_config({"llm": {"invalid_json": 1.0}})
    outcome = client_for().annotate(request(), Budget(100.0))
    assert outcome.status is AnnotationStatus.ok and outcome.value["label"] == "neutral"
    assert outcome.attempts == 2 and requests_made(sandbox_env) == 2
    assert sandbox_env.state.counters["llm_invalid_json"] == 1


class NoSandboxSummary(Summary):
    """A validator the sandbox's answers always fail, to reach the recorded invalid status."""

    @field_validator("summary")
    @classmethod
    def _not_sandbox(cls, value: str) -> str:
        if value.startswith("[sandbox]"):
            raise ValueError("summaries must not be marked")
        return value


def test_output_failing_validation_twice_is_invalid(client_for, sandbox_env):
    outcome = client_for().annotate(
        request(NoSandboxSummary, "<transcript>a b</transcript>"), Budget(100.0)
    )
    assert outcome.status is AnnotationStatus.invalid
    assert "summaries must not be marked" in outcome.error
    assert outcome.attempts == 2 and requests_made(sandbox_env) == 2
    assert outcome.input_tokens > 0  # both attempts are charged


def test_client_errors_are_not_retried(client_for, sandbox_env):
    remote = ("https://example.org/frame.jpg", 72, 128)  # the sandbox reads only data: URLs
    outcome = client_for().annotate(request(Description, "Describe.", [remote]), Budget(100.0))
    assert outcome.status is AnnotationStatus.failed and outcome.error.startswith("HTTP 400")
    assert outcome.attempts == 1


def test_budget_refuses_a_request_it_cannot_cover(client_for, sandbox_env):
    client = client_for()
    ceiling = client.ceiling_usd(request())  # the whole max_completion_tokens answered
    assert ceiling > client.estimate_usd(request())
    budget = Budget(ceiling * 1.01)  # room for one request at its worst
    first = client.annotate(request(), budget)
    assert first.status is AnnotationStatus.ok
    assert budget.spent_usd == pytest.approx(first.cost_usd)
    second = client.annotate(request(), budget)
    assert second.skipped_for_budget and second.attempts == 0
    assert requests_made(sandbox_env) == 1


def test_prices(client_for):
    settings = get_settings(llm_prices={"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)})
    assert cost_usd(settings, "gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)
    assert cost_usd(settings, "gpt-4o", 0, 1_000_000) == pytest.approx(10.0)
    with pytest.raises(PriceUnknown, match="GETTOK_LLM_PRICES"):
        cost_usd(settings, "llama3", 1, 1)


def test_image_tokens_follow_openai_examples():
    assert image_tokens(1024, 1024) == 765  # 4 tiles of 512 after shrinking to 768
    assert image_tokens(2048, 4096) == 1105  # 768x1536: 6 tiles
    assert image_tokens(4096, 8192, "low") == 85
    assert image_tokens(72, 128) == 255  # small frames: one tile


def test_models_endpoint_lists_the_sandbox_model(client_for):
    client = client_for()
    assert [m.id for m in client._client.models.list()] == ["sandbox-vision"]


def test_every_attempt_takes_a_shared_rate_limit_slot(sandbox_env):
    sandbox_env.state.update_config({"llm": {"error_500": 1.0}})
    slots: list[int] = []
    settings = get_settings(llm_model="sandbox-vision", llm_max_attempts=3, llm_backoff_s=0)
    client = LlmClient(settings, before_request=lambda: slots.append(1))
    outcome = client.annotate(request(), Budget(100.0))
    client.close()
    assert len(slots) == outcome.attempts == requests_made(sandbox_env) == 3


def test_a_server_refusing_everything_stops_instead_of_failing_each_video(client_for, sandbox_env):
    client = client_for(llm_prices={"gpt-4o-mini": (0.15, 0.6)})
    wrong_model = dataclasses.replace(request(), model="gpt-4o-mini")
    with pytest.raises(LlmUnavailable, match="HTTP 404 for model 'gpt-4o-mini'"):
        client.annotate(wrong_model, Budget(100.0))
    assert requests_made(sandbox_env) == 1
