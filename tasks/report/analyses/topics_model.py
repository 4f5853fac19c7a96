"""The topic model of the report: scikit-learn NMF on TF-IDF (default), or a sentence-transformers
model's embeddings clustered by k-means; fitted on a seeded sample, then applied to every video.

Either way a topic is named by its top words (for embeddings: class-based TF-IDF of its videos).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import NMF
from sklearn.feature_extraction.text import TfidfVectorizer

TOP_WORDS = 10
MAX_FEATURES = 5000
NO_TOPIC = -1  # a video without a single counted word


@dataclass
class TopicModel:
    engine: str  # "nmf-tfidf" or "embeddings-kmeans"
    seed: int
    vectorizer: TfidfVectorizer
    words: list[list[str]]  # top words per topic
    nmf: NMF | None = None
    centroids: np.ndarray | None = None
    model_name: str | None = None
    settings: dict = field(default_factory=dict)

    def assign(self, texts: list[str]) -> list[int]:
        """The topic of each text (NO_TOPIC when it has no counted word)."""
        tfidf = self.vectorizer.transform(texts)
        empty = np.asarray(tfidf.getnnz(axis=1) == 0)
        if self.nmf is not None:
            topics = self.nmf.transform(tfidf).argmax(axis=1)
        else:
            from gettok.tasks.report.analyses.embeddings import encode

            topics = (encode(self.model_name, texts) @ self.centroids.T).argmax(axis=1)
        return [NO_TOPIC if e else int(t) for t, e in zip(topics, empty, strict=True)]

    def provenance(self) -> dict:
        return {"engine": self.engine, "model": self.model_name, "seed": self.seed} | self.settings


TOKEN = r"(?u)\b[^\W\d_]{2,}\b"


def vectorizer_for(texts: list[str], stop: frozenset[str], prune: bool = True) -> TfidfVectorizer:
    """TF-IDF over words of two letters or more; with `prune` (and 50 texts or more), words in
    one text only or in over 95% of them are left out."""
    # A stop word such as "ain't" also stops the tokens it splits into ("ain"), as tokenised.
    pieces = {piece for word in stop for piece in re.findall(TOKEN, word)}
    prune = prune and len(texts) >= 50
    return TfidfVectorizer(
        stop_words=sorted(stop | pieces),
        token_pattern=TOKEN,
        max_features=MAX_FEATURES,
        min_df=2 if prune else 1,
        max_df=0.95 if prune else 1.0,
        sublinear_tf=True,
    )


def fit_tfidf(texts: list[str], stop: frozenset[str]):
    """(vectorizer, matrix), pruned when that leaves words, else unpruned; None, None when the
    texts hold no word at all."""
    for prune in (True, False):
        vectorizer = vectorizer_for(texts, stop, prune)
        try:
            return vectorizer, vectorizer.fit_transform(texts)
        except ValueError:  # no word left: every word too rare, too common or a stop word
            continue
    return None, None


def fit_topics(
    texts: list[str], k: int, seed: int, stop: frozenset[str], model_name: str | None = None
) -> TopicModel | None:
    """A model of (at most) `k` topics, or None when the texts hold too few words."""
    vectorizer, tfidf = fit_tfidf(texts, stop)
    if vectorizer is None:
        return None
    k = min(k, tfidf.shape[0], tfidf.shape[1])
    if k < 2:
        return None
    vocabulary = vectorizer.get_feature_names_out()
    settings = {
        "topics": k,
        "fit_videos": len(texts),
        "max_features": MAX_FEATURES,
        "min_df": vectorizer.min_df,
        "sublinear_tf": True,
    }
    if model_name is None:
        nmf = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=500)
        nmf.fit(tfidf)
        words = [_top(vocabulary, row) for row in nmf.components_]
        return TopicModel("nmf-tfidf", seed, vectorizer, words, nmf=nmf, settings=settings)
    from gettok.tasks.report.analyses.embeddings import encode

    vectors = encode(model_name, texts)
    kmeans = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(vectors)
    centroids = kmeans.cluster_centers_ / np.linalg.norm(kmeans.cluster_centers_, axis=1)[:, None]
    words = class_top_words(tfidf, kmeans.labels_, k, vocabulary)
    return TopicModel(
        "embeddings-kmeans",
        seed,
        vectorizer,
        words,
        centroids=centroids,
        model_name=model_name,
        settings=settings,
    )


def class_top_words(tfidf, labels, k: int, vocabulary) -> list[list[str]]:
    """Top words of each class: its summed TF-IDF, weighted by how rare the word is across classes
    (class-based TF-IDF, as BERTopic names its topics)."""
    sums = np.vstack(
        [np.asarray(tfidf[np.asarray(labels) == c].sum(axis=0)).ravel() for c in range(k)]
    )
    spread = np.log(1 + k / (1 + (sums > 0).sum(axis=0)))
    return [_top(vocabulary, row * spread) for row in sums]


def _top(vocabulary, weights) -> list[str]:
    order = np.argsort(-weights, kind="stable")[:TOP_WORDS]
    return [str(vocabulary[i]) for i in order if weights[i] > 0]
