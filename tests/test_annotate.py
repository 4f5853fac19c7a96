"""Annotation kinds end to end: prerequisite rows in the database, the sandbox over HTTP, the rows
written with their provenance, reruns that ask nothing, and faults kept to their video."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import select

from gettok import db
from gettok.clients.llm import LlmClient
from gettok.clients.llm_budget import Budget
from gettok.models.schema import Annotation, AnnotationKind, AnnotationStatus, Frame
from gettok.settings import get_settings
from gettok.tasks.annotate.annotator import REQUESTED_KINDS, annotate_videos, plan_for
from gettok.tasks.annotate.prompts import load_prompt
from tests.enrich_rows import add_videos, make_campaign, point_at_sandbox


@pytest.fixture
def rows(db_url, sandbox_env, monkeypatch, tmp_path):
    point_at_sandbox(monkeypatch, db_url, tmp_path / "media")
    return add_videos(db_url, tmp_path / "media", count=4)


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


def annotations(url: str, kind: AnnotationKind) -> dict[int, Annotation]:
    with db.session_scope(url) as session:
        found = session.scalars(select(Annotation).where(Annotation.kind == kind)).all()
    return {a.video_id: a for a in found}


def test_every_kind_stored_with_provenance_and_rerun_asks_nothing(rows, db_url, sandbox_env):
    results = {kind: run_kind(kind, rows) for kind in REQUESTED_KINDS}
    requests = sandbox_env.state.counters["llm_requests"]
    assert {k: r.done for k, r in results.items()} == {
        "description": 4,
        "stance": 4,
        "sentiment": 3,
        "summary": 3,  # one transcript is empty
        "summary_check": 3,  # one per summary
    }
    assert requests == sum(r.attempts for r in results.values()) == 17

    descriptions = annotations(db_url, AnnotationKind.description)
    onscreen = annotations(db_url, AnnotationKind.onscreen_text)
    assert set(descriptions) == set(onscreen) == set(rows.video_ids)
    first = descriptions[rows.video_ids[0]]
    assert first.value["description"].startswith("[sandbox] 2 frame(s) of 72x128 px")
    assert onscreen[rows.video_ids[0]].value == {
        "onscreen_text": "[sandbox] on-screen text not read: the sandbox does no OCR"
    }
    # One request, one bill: the on-screen text row shares the description's request.
    assert onscreen[rows.video_ids[0]].cost_usd == 0
    assert onscreen[rows.video_ids[0]].prompt_hash == first.prompt_hash
    assert sum(a.cost_usd for a in descriptions.values()) == pytest.approx(
        results["description"].cost_usd
    )

    stance = annotations(db_url, AnnotationKind.stance)
    assert [stance[i].value["label"] for i in rows.video_ids] == [
        "support",
        "no support",
        "neutral",
        "neutral",
    ]
    with db.session_scope(db_url) as session:
        middle_frames = {
            f.video_id: f.id for f in session.scalars(select(Frame).where(Frame.frame_index == 300))
        }
    one = stance[rows.video_ids[0]]
    assert one.frame_id == middle_frames[rows.video_ids[0]]  # of frames 0 and 300: the later
    assert one.settings["inputs"]["description_annotation_id"] == first.id
    assert one.settings["target"] == "Pedro Castillo as President of Peru"
    assert one.settings["labels"] == ["support", "no support", "neutral"]

    for kind in AnnotationKind.stance, AnnotationKind.sentiment, AnnotationKind.summary:
        for row in annotations(db_url, kind).values():
            assert row.status is AnnotationStatus.ok and row.is_sandbox
            assert row.model == "sandbox-vision" and row.prompt_id == load_prompt(kind.value).name
            assert len(row.prompt_hash) == 32 and row.temperature == 0.0
            assert row.input_tokens > 0 and row.output_tokens > 0 and row.latency_ms > 0
            assert row.cost_usd == pytest.approx(
                (row.input_tokens * 100 + row.output_tokens * 400) / 1e6
            )
            assert row.created_at.tzinfo is not None
            assert row.settings["served_model"] == "sandbox-vision"
            assert row.settings["server"] == sandbox_env.base_url + "/v1"
            has_text = row.video_id != rows.video_ids[3]  # the music-only video
            assert (row.settings["inputs"]["transcript_id"] is not None) == has_text

    sentiment = annotations(db_url, AnnotationKind.sentiment)
    assert [sentiment[i].value["label"] for i in rows.video_ids[:3]] == [
        "positive",
        "negative",
        "neutral",
    ]
    for row in sentiment.values():  # flagged exactly below the configured threshold
        assert row.value["low_confidence"] == (row.value["confidence"] < 0.6)
    assert sentiment[rows.video_ids[2]].value["low_confidence"] is True

    summary = annotations(db_url, AnnotationKind.summary)[rows.video_ids[2]]
    assert summary.value["summary"].startswith("[sandbox] the speaker says: Hoy vamos a cocinar")

    # The judge read the transcript and the summary it checks (the sandbox's summary quotes the
    # transcript's words: entailed), and the row names the summary it checked.
    summaries = annotations(db_url, AnnotationKind.summary)
    checks = annotations(db_url, AnnotationKind.summary_check)
    assert set(checks) == set(summaries)
    for video_id, check in checks.items():
        assert check.value["label"] == "entailed" and check.value["confidence"] == 0.9
        assert check.settings["inputs"]["summary_annotation_id"] == summaries[video_id].id
        assert check.prompt_id == "summary_check-v1"

    again = {kind: run_kind(kind, rows) for kind in REQUESTED_KINDS}
    assert sandbox_env.state.counters["llm_requests"] == requests  # nothing asked again
    assert all(r.done == 0 and r.skipped_taken == 4 for r in again.values())


def test_faults_stay_with_their_video_and_failures_are_retried(rows, db_url, sandbox_env):
    url = db_url
    # A frame file gone: that video is counted, the others are described.
    with db.session_scope(url) as session:
        gone = session.scalars(select(Frame).where(Frame.video_id == rows.video_ids[1])).first()
    (rows.media_dir / gone.path).unlink()
    described = run_kind("description", rows)
    assert (described.done, described.missing_input) == (3, 1)

    sandbox_env.state.update_config({"llm": {"error_500": 1.0}})
    failed = run_kind("summary", rows, llm_max_attempts=2)
    assert (failed.done, failed.failed) == (0, 3)
    failed_rows = annotations(url, AnnotationKind.summary)
    assert {r.status for r in failed_rows.values()} == {AnnotationStatus.failed}
    assert all("HTTP 500" in r.error for r in failed_rows.values())

    sandbox_env.state.update_config({"llm": {"error_500": 0.0}})
    retried = run_kind("summary", rows)
    assert retried.done == 3
    fixed = annotations(url, AnnotationKind.summary)
    assert {v: r.id for v, r in fixed.items()} == {v: r.id for v, r in failed_rows.items()}
    assert {r.status for r in fixed.values()} == {AnnotationStatus.ok}
    assert all(r.error is None for r in fixed.values())

    sandbox_env.state.update_config({"llm": {"refusal": 1.0}})
    refused = run_kind("sentiment", rows)
    assert refused.refused == 3
    sandbox_env.state.update_config({"llm": {"refusal": 0.0}})
    before = sandbox_env.state.counters["llm_requests"]
    assert run_kind("sentiment", rows).done == 0  # a refusal is an answer: not asked again
    assert sandbox_env.state.counters["llm_requests"] == before


def test_invalid_json_is_corrected_and_stored(rows, db_url, sandbox_env):
    sandbox_env.state.update_config({"llm": {"invalid_json": 1.0}})
    result = run_kind("sentiment", rows)
    assert result.done == 3 and result.attempts == 6
    rows_ = annotations(db_url, AnnotationKind.sentiment)
    assert all(r.settings["attempts"] == 2 for r in rows_.values())


def test_prompt_hash_covers_template_schema_and_campaign_values(settings_env):
    settings = get_settings()
    peru = plan_for("stance", make_campaign(), settings)
    assert plan_for("stance", make_campaign(), settings).prompt_hash == peru.prompt_hash
    other_target = make_campaign(stance={"target": "Dina Boluarte"})
    assert plan_for("stance", other_target, settings).prompt_hash != peru.prompt_hash
    other_labels = make_campaign(
        stance={"target": peru.fixed["target"], "labels": ["for", "against", "neutral"]}
    )
    assert plan_for("stance", other_labels, settings).prompt_hash != peru.prompt_hash
    edited = dataclasses.replace(peru.prompt, user=peru.prompt.user + " Be brief.")
    assert edited.hash({"type": "object"}) != peru.prompt.hash({"type": "object"})
    assert plan_for("stance", make_campaign(stance=None), settings) is None
    assert plan_for("summary", make_campaign(), get_settings(llm_summary_model="gpt-4o")).model == (
        "gpt-4o"
    )


def test_secrets_never_reach_the_rows(rows, db_url, sandbox_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-4f9a2c")
    run_kind("summary", rows)
    run_kind("sentiment", rows, llm_max_attempts=1)
    with db.session_scope(db_url) as session:
        dumped = json.dumps(
            [(a.value, a.settings, a.error) for a in session.scalars(select(Annotation))]
        )
    assert "sk-test-secret" not in dumped


def test_a_transcript_flagged_empty_never_reaches_the_prompts(db_url, tmp_path):
    from sqlalchemy import update

    from gettok import db
    from gettok.models.schema import Transcript
    from gettok.tasks.annotate.annotator import load_inputs
    from tests.enrich_rows import add_videos

    fixture = add_videos(db_url, tmp_path / "media", count=2)
    hallucinated, spoken = fixture.video_ids
    with db.session_scope(db_url) as session:
        session.execute(
            update(Transcript)
            .where(Transcript.video_id == hallucinated)
            .values(text="Thank you.", is_empty=True)
        )
    with db.session_scope(db_url) as session:
        inputs = load_inputs(session, [hallucinated, spoken])
    assert not inputs[hallucinated].transcript
    assert inputs[spoken].transcript


def test_summary_check_reads_the_summary_it_judges(rows, db_url, sandbox_env):
    """The sandbox judge as a keyword NLI: a negation the transcript lacks contradicts it, claims
    it does not hold are neutral, its own words are entailed; the row names the summary."""
    summaries = {
        rows.video_ids[0]: "Viva Pedro Castillo, fuerza presidente.",
        rows.video_ids[1]: "Castillo no es corrupto.",
        rows.video_ids[2]: "Una receta de ceviche con pescado y arroz.",
    }
    with db.session_scope(db_url) as session:
        for video_id, text in summaries.items():
            session.add(
                Annotation(
                    video_id=video_id,
                    kind=AnnotationKind.summary,
                    value={"summary": text},
                    model="other",
                    prompt_id="summary-v2",
                    prompt_hash="s",
                )
            )
    result = run_kind("summary_check", rows)
    assert result.done == 3  # the music-only video has no transcript: nothing to check
    checks = annotations(db_url, AnnotationKind.summary_check)
    summary_ids = {a.video_id: a.id for a in annotations(db_url, AnnotationKind.summary).values()}
    assert {v: checks[v].value["label"] for v in summaries} == {
        rows.video_ids[0]: "entailed",
        rows.video_ids[1]: "contradicted",
        rows.video_ids[2]: "neutral",
    }
    for video_id in summaries:
        assert checks[video_id].settings["inputs"]["summary_annotation_id"] == summary_ids[video_id]
    request = json.dumps(sandbox_env.state.last_llm_request, ensure_ascii=False)
    assert "entail" in request and "summary" in request
