"""Annotation rows under the limits of money and truth: an invalid answer is asked again on a
later run up to a cap (recorded in `tries`), an answer over its limit is never stored nor read by
a later prompt, a server that refuses everything stops the batch at its first answer, and the
spend of a kind that stopped still counts against the run's budget."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gettok import db
from gettok.clients.llm import LlmClient, LlmUnavailable
from gettok.clients.llm_budget import Budget
from gettok.models.schema import Annotation, AnnotationKind, AnnotationStatus
from gettok.settings import get_settings
from gettok.tasks.annotate.annotator import annotate_videos
from tests.enrich_rows import add_videos, point_at_sandbox


@pytest.fixture
def rows(db_url, sandbox_env, monkeypatch, tmp_path):
    point_at_sandbox(monkeypatch, db_url, tmp_path / "media")
    return add_videos(db_url, tmp_path / "media", count=4)  # 3 with transcript text


def run_kind(kind: str, rows, budget: Budget | None = None, **overrides):
    settings = get_settings(**overrides)
    client = LlmClient(settings)
    try:
        return annotate_videos(
            settings.resolved_database_url,
            settings,
            rows.campaign,
            kind,
            rows.video_ids,
            client=client,
            budget=budget or Budget(100.0),
        )
    finally:
        client.close()


def stored(url: str, kind: AnnotationKind) -> dict[int, Annotation]:
    with db.session_scope(url) as session:
        found = session.scalars(select(Annotation).where(Annotation.kind == kind)).all()
    return {a.video_id: a for a in found}


def answer(content: str, completion_tokens: int = 5) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "sandbox-vision",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": completion_tokens, "total_tokens": 0},
    }


def serve(sandbox, body: dict, times: int, status: int = 200) -> None:
    canned = [{"status": status, "body": body, "times": times}]
    sandbox.state.update_config({"llm": {"canned": canned}})


def test_invalid_is_asked_again_on_a_later_run_up_to_the_cap(rows, db_url, sandbox_env):
    serve(sandbox_env, answer('{"label": "ecstatic", "confidence": 2}'), times=6)  # 3 x 2 tries
    first = run_kind("sentiment", rows, llm_invalid_max_tries=3)
    assert first.invalid == 3
    invalid = stored(db_url, AnnotationKind.sentiment)
    assert {(r.status, r.tries) for r in invalid.values()} == {(AnnotationStatus.invalid, 1)}

    second = run_kind("sentiment", rows, llm_invalid_max_tries=3)  # the sandbox answers well now
    assert second.done == 3
    fixed = stored(db_url, AnnotationKind.sentiment)
    assert {v: r.id for v, r in fixed.items()} == {v: r.id for v, r in invalid.items()}
    assert {(r.status, r.tries) for r in fixed.values()} == {(AnnotationStatus.ok, 2)}
    assert all(r.error is None for r in fixed.values())


def test_invalid_is_final_once_it_had_its_tries(rows, db_url, sandbox_env):
    serve(sandbox_env, answer('{"label": "ecstatic", "confidence": 2}'), times=12)
    run_kind("sentiment", rows, llm_invalid_max_tries=2)
    assert run_kind("sentiment", rows, llm_invalid_max_tries=2).invalid == 3
    before = sandbox_env.state.counters["llm_requests"]
    third = run_kind("sentiment", rows, llm_invalid_max_tries=2)
    assert third.done == third.invalid == 0 and third.skipped_taken == 4
    assert sandbox_env.state.counters["llm_requests"] == before  # nothing asked again
    final = stored(db_url, AnnotationKind.sentiment)
    assert {(r.status, r.tries) for r in final.values()} == {(AnnotationStatus.invalid, 2)}


def test_an_answer_over_its_limit_is_never_stored(rows, db_url, sandbox_env):
    huge = '{"summary": "' + "spam " * 40_000 + '"}'  # 200 kB for a 400-token summary
    serve(sandbox_env, answer(huge, completion_tokens=10), times=3)
    result = run_kind("summary", rows)
    assert result.invalid == 3
    rows_ = stored(db_url, AnnotationKind.summary)
    assert all(r.value is None and "not stored" in r.error for r in rows_.values())
    assert all(len(r.error) < 500 for r in rows_.values())


def test_a_404_model_stops_the_batch_at_the_first_answer(rows, db_url, sandbox_env):
    missing = {"error": {"message": "model not found", "type": None, "code": "model_not_found"}}
    serve(sandbox_env, missing, times=10, status=404)
    with pytest.raises(LlmUnavailable, match="HTTP 404"):
        run_kind("description", rows, llm_concurrency=1)
    assert sandbox_env.state.counters["llm_requests"] == 1  # not once per video
    assert stored(db_url, AnnotationKind.description) == {}


def test_the_spend_of_a_kind_that_stopped_still_counts(rows, db_url, sandbox_env):
    from gettok.flows.enrich import enrich_campaign

    settings = get_settings(
        llm_sentiment_model="gpt-4o-mini",  # the sandbox does not serve it: HTTP 404
        llm_prices={"sandbox-vision": (100.0, 400.0), "gpt-4o-mini": (0.15, 0.6)},
    )
    with pytest.raises(LlmUnavailable) as stopped:
        enrich_campaign(
            rows.campaign, settings, kinds=["summary", "sentiment"], budget_usd=50.0, frames=False
        )
    summaries = stored(db_url, AnnotationKind.summary)
    spent = sum(r.cost_usd for r in summaries.values())
    assert len(summaries) == 3 and spent > 0
    assert stopped.value.llm_spent_usd == pytest.approx(spent)
    assert any("LLM spend before the stop" in note for note in stopped.value.__notes__)
