"""The clusters map: a seeded sample of videos placed in 2-D by UMAP from their text embeddings
(transcript + description + caption), clustered by HDBSCAN, coloured by cluster and by stance,
each cluster named by its top terms.

Embeddings come from a sentence-transformers model by name (`[report] embedding_model`), else
from TF-IDF reduced by truncated SVD; everything is seeded by `[report] seed`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from gettok.db import session_scope
from gettok.models.schema import AnnotationKind
from gettok.tasks.report.analyses import queries
from gettok.tasks.report.analyses.ngrams import NOISE
from gettok.tasks.report.analyses.topics_model import class_top_words, fit_tfidf

NOISE_CLUSTER = -1  # HDBSCAN's label for points in no cluster
MIN_MAP_VIDEOS = 10  # fewer make no neighbourhoods for UMAP nor clusters for HDBSCAN
SVD_DIMENSIONS = 50
UMAP_EXACT_BELOW = 4_096  # UMAP computes every distance for fewer points
EXACT_NEIGHBOURS_UP_TO = 20_000


def epochs(points: int) -> int | None:
    """UMAP's optimisation epochs: 200 from 4,096 points, what UMAP itself takes above 10,000
    (5,000 points: 21 s against 54 s with its 500, 2 busy cores); below, UMAP's own choice."""
    return 200 if points >= UMAP_EXACT_BELOW else None


@dataclass
class ClusterMap:
    video_ids: list[int]
    xy: np.ndarray  # (n, 2)
    clusters: list[int]
    stances: list[str]
    terms: dict[int, list[str]]
    provenance: dict


def video_text(speech: str, description: str, caption_text: str) -> str:
    return " ".join(t for t in (speech, description, NOISE.sub(" ", caption_text)) if t.strip())


def sample_texts(ctx) -> tuple[list[int], list[str], list[str]]:
    """Ids, texts and stance labels of a seeded sample of `map_videos` videos with any text."""
    opts = ctx.options
    with session_scope(ctx.url) as session:
        sample = queries.seeded_sample(
            session,
            ctx.campaign,
            opts.map_videos,
            opts.seed,
            keep=lambda r: bool(r[2].strip() or r[3].strip()),
        )
        ids = [r[0] for r in sample]
        described = queries.latest_labels(session, AnnotationKind.description, ids)
        stance = queries.latest_labels(session, AnnotationKind.stance, ids)
    texts = [
        video_text(s, (described.get(v) or {}).get("description", ""), c) for v, _, s, c in sample
    ]
    labels = [str((stance.get(v) or {}).get("label") or "(none)") for v in ids]
    return ids, texts, labels


def embed(texts: list[str], model_name: str | None, seed: int, stop) -> tuple[np.ndarray, dict]:
    if model_name:
        from gettok.tasks.report.analyses.embeddings import encode

        return encode(model_name, texts), {"embeddings": model_name}
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    _, tfidf = fit_tfidf(texts, stop)
    if tfidf is None:
        return np.zeros((len(texts), 2), dtype=np.float32), {"embeddings": "none (no words)"}
    if tfidf.shape[1] <= 2:  # one or two words in all: they are the coordinates
        dense = np.zeros((len(texts), 2), dtype=np.float32)
        dense[:, : tfidf.shape[1]] = tfidf.toarray()
        return dense, {"embeddings": "tfidf"}
    dims = min(SVD_DIMENSIONS, tfidf.shape[1] - 1, len(texts) - 1)
    reduced = TruncatedSVD(n_components=dims, random_state=seed).fit_transform(tfidf)
    return normalize(reduced), {"embeddings": f"tfidf+svd{dims}"}


def exact_neighbours(
    vectors: np.ndarray, k: int
) -> tuple[np.ndarray | None, np.ndarray | None, None]:
    """Every point's `k` nearest by cosine distance (itself included) and their distances, for
    UMAP's graph; (None, None, None) where UMAP's own search is used.

    UMAP finds them exactly below 4,096 points and by NN-descent above, whose numba code compiles
    in every new process: 5,000 random 50-dimensional points took UMAP 133 s that way and 33 s
    with this search (2 busy cores). Up to EXACT_NEIGHBOURS_UP_TO points (400M distances)."""
    if not UMAP_EXACT_BELOW <= len(vectors) <= EXACT_NEIGHBOURS_UP_TO:
        return None, None, None
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(vectors)
    distances, indices = search.kneighbors(vectors)
    return indices, distances.astype(np.float32), None


def layout(vectors: np.ndarray, neighbours: int, seed: int) -> np.ndarray:
    """The points placed in 2-D by UMAP (cosine, seeded, one thread: the same map every run)."""
    from umap import UMAP

    with warnings.catch_warnings():  # the map never places new points (UMAP's transform)
        warnings.filterwarnings("ignore", message="precomputed_knn.2. .knn_search_index.")
        return UMAP(
            n_components=2,
            n_neighbors=neighbours,
            min_dist=0.1,
            metric="cosine",
            random_state=seed,
            n_jobs=1,
            n_epochs=epochs(len(vectors)),
            precomputed_knn=exact_neighbours(vectors, neighbours),
        ).fit_transform(vectors)


def cluster_map(ctx) -> ClusterMap | None:
    """The map of the sampled videos, or None with fewer than `MIN_MAP_VIDEOS` of text."""
    from sklearn.cluster import HDBSCAN

    ids, texts, stances = sample_texts(ctx)
    if len(ids) < MIN_MAP_VIDEOS:
        return None
    seed, stop = ctx.options.seed, ctx.stop_words()
    vectors, how = embed(texts, ctx.options.embedding_model, seed, stop)
    neighbours = min(15, len(ids) - 1)
    xy = layout(vectors, neighbours, seed)
    min_size = max(5, len(ids) // 50)
    clusters = HDBSCAN(min_cluster_size=min_size, copy=True).fit_predict(xy)
    found = sorted(set(clusters.tolist()) - {NOISE_CLUSTER})
    terms: dict[int, list[str]] = {}
    vectorizer, tfidf = fit_tfidf(texts, stop)
    if found and vectorizer is not None:
        index = {c: i for i, c in enumerate(found)}
        relabelled = [index.get(c, len(found)) for c in clusters.tolist()]
        words = class_top_words(tfidf, relabelled, len(found), vectorizer.get_feature_names_out())
        terms = {c: words[index[c]] for c in found}
    provenance = how | {
        "map": "umap",
        "n_neighbors": neighbours,
        "min_dist": 0.1,
        "metric": "cosine",
        "neighbours": "nn-descent" if len(ids) > EXACT_NEIGHBOURS_UP_TO else "exact",
        "n_epochs": epochs(len(ids)) or "umap default",
        "clustering": "hdbscan",
        "min_cluster_size": min_size,
        "seed": seed,
        "videos": len(ids),
        "stop_words": ", ".join(ctx.stop_languages_used()),
    }
    return ClusterMap(ids, xy, clusters.tolist(), stances, terms, provenance)
