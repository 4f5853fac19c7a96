"""Local classifiers instead of the LLM: zero-shot sentiment and the NLI summary check.

No NLI model can be downloaded here, so the engines run on a tiny NLI-shaped BERT with random
weights (built below, saved like any downloaded model): the machinery is real (loading by name,
label mapping, softmax confidences, claims, rows and provenance), the labels are not meaningful.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from gettok import db
from gettok.clients.llm_budget import Budget
from gettok.models.schema import Annotation, AnnotationKind
from gettok.settings import get_settings
from gettok.tasks.annotate.campaign import annotate_campaign
from gettok.tasks.annotate.cost import estimate_enrich
from gettok.tasks.annotate.local_models import LocalModelUnavailable, NliSummaryCheck
from gettok.tasks.report.analyses.embeddings import resolve
from tests.enrich_rows import TRANSCRIPTS, add_videos, point_at_sandbox

LABELS = {0: "CONTRADICTION", 1: "ENTAILMENT", 2: "NEUTRAL"}  # as NLI models name them


@pytest.fixture(scope="module")
def tiny_nli(tmp_path_factory) -> Path:
    """A 3-label sequence classifier with random weights and a real (MiniLM) tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-nli")
    tokenizer = AutoTokenizer.from_pretrained(resolve("all-MiniLM-L6-v2"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def rows_of(url: str, kind: AnnotationKind) -> dict[int, Annotation]:
    with db.session_scope(url) as session:
        return {
            a.video_id: a
            for a in session.scalars(select(Annotation).where(Annotation.kind == kind))
        }


def test_zero_shot_sentiment_recorded_with_provenance(
    db_url, sandbox_env, monkeypatch, tmp_path, tiny_nli
):
    point_at_sandbox(
        monkeypatch,
        db_url,
        tmp_path,
        GETTOK_SENTIMENT_ENGINE="zero-shot",
        GETTOK_SENTIMENT_ZERO_SHOT_MODEL=str(tiny_nli),
    )
    fixture = add_videos(db_url, tmp_path, count=4, frames_per_video=0)
    settings = get_settings()
    assert [k.kind for k in estimate_enrich(db_url, settings, fixture.campaign).kinds] == [
        "description",
        "stance",
        "summary",
        "summary_check",
    ]  # no LLM cost for sentiment

    results = annotate_campaign(fixture.campaign, settings, Budget(1.0), kinds=["sentiment"])
    assert [(r.kind, r.done) for r in results] == [("sentiment", 3)]  # one transcript is empty
    assert sandbox_env.state.counters["llm_requests"] == 0
    rows = rows_of(db_url, AnnotationKind.sentiment)
    weights = hashlib.sha256((tiny_nli / "model.safetensors").read_bytes()).hexdigest()
    for row in rows.values():
        assert row.model == str(tiny_nli) and row.prompt_id == "zero-shot-classification"
        assert row.settings["hypothesis_template"] == "The sentiment of this text is {}."
        assert row.settings["labels"] == ["positive", "negative", "neutral"]
        assert row.settings["weights_sha256"] == weights
        assert row.settings["inputs"]["transcript_id"] is not None
        value = row.value
        assert value["label"] in ("positive", "negative", "neutral")
        assert 1 / 3 - 1e-4 <= value["confidence"] <= 1  # the best of three (4 decimals)
        assert value["low_confidence"] == (value["confidence"] < settings.sentiment_low_confidence)
        assert row.cost_usd == 0 and not row.is_sandbox
    again = annotate_campaign(fixture.campaign, settings, Budget(1.0), kinds=["sentiment"])
    assert again[0].done == 0  # pending by model and settings hash, as the LLM's rows


def test_nli_summary_check_labels_follow_the_model(db_url, monkeypatch, tmp_path, tiny_nli):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    point_at_sandbox(
        monkeypatch,
        db_url,
        tmp_path,
        GETTOK_SUMMARY_CHECK_ENGINE="nli",
        GETTOK_SUMMARY_CHECK_NLI_MODEL=str(tiny_nli),
    )
    fixture = add_videos(db_url, tmp_path, count=3, frames_per_video=0)
    summaries = {v: f"summary {n}: {TRANSCRIPTS[n][:20]}" for n, v in enumerate(fixture.video_ids)}
    with db.session_scope(db_url) as session:
        for video_id, text in summaries.items():
            session.add(
                Annotation(
                    video_id=video_id,
                    kind=AnnotationKind.summary,
                    value={"summary": text},
                    model="m",
                    prompt_id="summary-v2",
                    prompt_hash="h",
                )
            )
    settings = get_settings()
    results = annotate_campaign(fixture.campaign, settings, Budget(1.0), kinds=["summary_check"])
    assert [(r.kind, r.done) for r in results] == [("summary_check", 3)]

    # What the model itself says, computed apart: softmax of its logits, named by its config.
    tokenizer = AutoTokenizer.from_pretrained(tiny_nli)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_nli).eval()
    names = {"ENTAILMENT": "entailed", "NEUTRAL": "neutral", "CONTRADICTION": "contradicted"}
    checks = rows_of(db_url, AnnotationKind.summary_check)
    for n, video_id in enumerate(fixture.video_ids):
        inputs = tokenizer(TRANSCRIPTS[n], summaries[video_id], return_tensors="pt")
        with torch.no_grad():
            probabilities = model(**inputs).logits.softmax(-1)[0]
        best = int(probabilities.argmax())
        check = checks[video_id]
        assert check.value["label"] == names[LABELS[best]]
        assert check.value["confidence"] == pytest.approx(float(probabilities[best]), abs=1e-3)
        assert check.prompt_id == "nli-cross-encoder" and check.model == str(tiny_nli)
        assert check.settings["inputs"]["summary_annotation_id"] is not None


def test_a_model_that_is_not_nli_is_refused_by_name():
    with pytest.raises(LocalModelUnavailable, match="not an NLI model"):
        NliSummaryCheck(resolve("all-MiniLM-L6-v2")).classify([("a", "b")])
