"""Topics and the clusters map: reproducible for a seed, and separating texts that share no words
(two vocabularies: football and elections), by TF-IDF and by a sentence-transformers model."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
from sklearn.cluster import HDBSCAN
from sqlalchemy import select

from gettok.db import session_scope
from gettok.models.campaign import ReportOptions
from gettok.models.schema import Transcript, Video
from gettok.tasks.report.analyses.clusters import (
    NOISE_CLUSTER,
    cluster_map,
    embed,
    exact_neighbours,
    layout,
)
from gettok.tasks.report.analyses.ngrams import stop_words
from gettok.tasks.report.analyses.section import AnalysisContext
from gettok.tasks.report.analyses.topics import topics_section
from gettok.tasks.report.analyses.topics_model import NO_TOPIC, fit_topics
from tests.dataset_for_outputs import build_dataset

FOOTBALL = "fútbol gol equipo partido estadio liga árbitro delantero".split()
ELECTIONS = "elecciones voto congreso candidato urna campaña jurado padrón".split()
FOOTBALL_EN = "football goal team match stadium league referee striker".split()
ELECTIONS_EN = "election vote parliament candidate ballot campaign polling voters".split()


def documents(vocabularies, per_group: int, seed: int = 4) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts, groups = [], []
    for i in range(per_group * len(vocabularies)):
        group = i % len(vocabularies)
        texts.append(" ".join(rng.choices(vocabularies[group], k=6)))
        groups.append(group)
    return texts, groups


def assert_separates(assigned: list[int], groups: list[int]) -> None:
    by_group = {
        g: {t for t, h in zip(assigned, groups, strict=True) if h == g} for g in set(groups)
    }
    assert all(len(topics) == 1 for topics in by_group.values()), by_group
    assert len(set().union(*by_group.values())) == len(by_group)


def test_nmf_topics_are_seeded_and_separate_vocabularies():
    texts, groups = documents([FOOTBALL, ELECTIONS], 30)
    stop = stop_words("es")
    first = fit_topics(texts, 2, seed=3, stop=stop)
    again = fit_topics(texts, 2, seed=3, stop=stop)
    assigned = first.assign(texts)
    assert assigned == again.assign(texts) and first.words == again.words
    assert_separates(assigned, groups)
    for topic in set(assigned):
        vocabulary = FOOTBALL if groups[assigned.index(topic)] == 0 else ELECTIONS
        assert set(first.words[topic]) <= set(vocabulary)
    assert first.assign(["", "el de la"]) == [NO_TOPIC, NO_TOPIC]  # no counted word
    assert first.provenance() | {"fit_videos": 60} == {
        "engine": "nmf-tfidf",
        "model": None,
        "seed": 3,
        "topics": 2,
        "fit_videos": 60,
        "max_features": 5000,
        "min_df": 2,
        "sublinear_tf": True,
    }


def test_embedding_topics_by_model_name_separate_vocabularies():
    texts, groups = documents([FOOTBALL_EN, ELECTIONS_EN], 20)
    model = fit_topics(texts, 2, seed=0, stop=stop_words("en"), model_name="all-MiniLM-L6-v2")
    assert model.engine == "embeddings-kmeans" and model.model_name == "all-MiniLM-L6-v2"
    assigned = model.assign(texts)
    assert_separates(assigned, groups)
    assert assigned == fit_topics(
        texts, 2, seed=0, stop=stop_words("en"), model_name="all-MiniLM-L6-v2"
    ).assign(texts)


@pytest.fixture
def two_topic_campaign(db_url):
    """A campaign whose transcripts speak of football or of elections, group known per video."""
    data = build_dataset(db_url, days=4, per_day=14, seed=6)
    rng = random.Random(1)
    groups = {}
    with session_scope(db_url) as session:
        for n, video in enumerate(data.videos):
            group = n % 2
            words = rng.choices([FOOTBALL, ELECTIONS][group], k=8)
            session.get(Video, video.id).video_description = " ".join(words[:3])
            session.get(Video, video.id).voice_to_text = None
            found = session.scalars(select(Transcript).where(Transcript.video_id == video.id))
            for transcript in found:
                transcript.text = " ".join(words)
            if video.whisper is None:  # the caption stands in
                session.get(Video, video.id).video_description = " ".join(words)
            groups[video.id] = group
    return data.campaign, groups


def test_topics_section_assigns_every_video_the_same_way_twice(
    db_url, tmp_path, two_topic_campaign
):
    campaign, groups = two_topic_campaign
    options = ReportOptions(topics=2, seed=5)
    runs = []
    for name in ("one", "two"):
        out = tmp_path / name
        out.mkdir()
        ctx = AnalysisContext(db_url, campaign, out, options, language="es")
        section = topics_section(ctx)
        with (out / "topic_assignments.csv").open(encoding="utf-8") as f:
            runs.append({int(r["video_id"]): int(r["topic"]) for r in csv.DictReader(f)})
        assert [p.name for p in section.figures] == ["topics.png", "topics_over_time.png"]
    assert runs[0] == runs[1] and set(runs[0]) == set(groups)
    ids = sorted(groups)
    assert_separates([runs[0][i] for i in ids], [groups[i] for i in ids])
    assert section.provenance["engine"] == "nmf-tfidf" and section.provenance["seed"] == 5


def test_cluster_map_is_seeded_and_clusters_do_not_mix_vocabularies(
    db_url, tmp_path, two_topic_campaign
):
    campaign, groups = two_topic_campaign
    ctx = AnalysisContext(db_url, campaign, tmp_path, ReportOptions(seed=2), language="es")
    first, again = cluster_map(ctx), cluster_map(ctx)
    assert first.video_ids == again.video_ids == sorted(groups)
    np.testing.assert_array_equal(first.xy, again.xy)
    assert first.clusters == again.clusters
    members: dict[int, set[int]] = {}
    for video_id, cluster in zip(first.video_ids, first.clusters, strict=True):
        if cluster != NOISE_CLUSTER:
            members.setdefault(cluster, set()).add(groups[video_id])
    assert len(members) >= 2 and all(len(g) == 1 for g in members.values()), members
    for cluster, terms in first.terms.items():
        vocabulary = FOOTBALL if members[cluster] == {0} else ELECTIONS
        assert terms and set(terms) <= set(vocabulary)
    assert first.provenance["embeddings"].startswith("tfidf+svd")


def test_a_map_above_umaps_exact_search_takes_exact_neighbours_and_separates_vocabularies():
    texts, groups = documents([FOOTBALL, ELECTIONS], per_group=2_100)  # 4,200 > 4,096
    vectors, _ = embed(texts, None, seed=3, stop=set())
    indices, distances, _ = exact_neighbours(vectors, 15)  # what UMAP gets, not its NN-descent
    assert (
        indices is not None
        and indices.shape == (4_200, 15)
        and (distances[:, 0] <= distances[:, 1]).all()
    )
    assert all(groups[j] == groups[i] for i, row in enumerate(indices) for j in row)
    xy = layout(vectors, 15, seed=3)
    clusters = HDBSCAN(min_cluster_size=len(texts) // 50, copy=True).fit_predict(xy).tolist()
    members: dict[int, set[int]] = {}
    for group, cluster in zip(groups, clusters, strict=True):
        if cluster != NOISE_CLUSTER:
            members.setdefault(cluster, set()).add(group)
    assert len(members) >= 2 and all(len(g) == 1 for g in members.values()), members
