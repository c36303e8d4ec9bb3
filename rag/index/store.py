"""Where an index lives, as two small protocols, and what every kind of store records.

`Store` is a place an index is saved to and loaded from (today the local index directory,
`rag.index.local`; a server-backed store implements the same methods); `Index` is a loaded index as
the retriever reads it: passages in index order, dense search, BM25 scores, sentence vectors and
term statistics. `Manifest` is what a store records about an index (model, dimension, chunk settings,
the documents folder and a fingerprint of every source file), so that a mismatch or a stale index is
detected. `rag.index.factory.open_store` picks the implementation for a location. Does not chunk,
embed or rank.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.index.lexical import TermStats
from rag.types import Passage

FORMAT_VERSION = 3


@dataclass(frozen=True)
class Manifest:
    model: str
    dim: int
    chunk_size: int
    chunk_overlap: int
    docs: str  # the documents folder the index was built from, as given
    files: dict = field(default_factory=dict)  # doc -> {"sha256": ..., "bytes": ...}
    passages: int = 0
    checksums: dict = field(default_factory=dict)  # file in the index dir -> sha256
    versions: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


class Index(Protocol):
    """A loaded index, read-only and safe to share between threads."""

    manifest: Manifest
    passages: Sequence[Passage]

    def vectors(self) -> np.ndarray:
        """Every passage's vector, in passage order."""

    def passage_sentences(self, i: int) -> np.ndarray | None:
        """The vectors of passage i's sentences (`split_sentences` order), or None when not stored."""

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """The `n` passages (index, inner product) nearest `vector`, only among `allowed` ones if given."""

    def sentence_scores(self, vector: np.ndarray) -> np.ndarray | None:
        """Per passage, the inner product of `vector` with its most similar sentence (-1 without one)."""

    def lexical_scores(self, text: str) -> np.ndarray:
        """The BM25 score of every passage for `text`."""

    def term_stats(self) -> TermStats:
        """Document frequencies of the BM25 terms."""


class Store(Protocol):
    """Where an index is saved and loaded; builds of one store take turns through `lock_path`."""

    location: str
    lock_path: Path

    def exists(self) -> bool: ...

    def read_manifest(self) -> Manifest:
        """The manifest alone, cheaply (no checksums); IndexStateError when there is no index."""

    def check_replaceable(self) -> None:
        """IndexStateError unless a save may replace whatever is at the location."""

    def load(self) -> Index:
        """The checked index; IndexStateError names the first thing wrong."""

    def save(self, manifest: Manifest, passages: Sequence[Passage], vectors: np.ndarray,
             sentences: np.ndarray) -> Index:
        """Replace the index at the location whole (readers see the old one or the new one)."""


def file_fingerprint(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def stale_files(manifest: Manifest) -> list[str]:
    """Source files added, changed or removed since the index was built ([] if its folder is gone)."""
    from rag.ingest.load import list_files

    docs = Path(manifest.docs)
    if not docs.is_dir():
        return []
    current = {p.relative_to(docs).as_posix(): p for p in list_files(docs)}
    return [d for d in sorted(set(current) | set(manifest.files))
            if d not in current or d not in manifest.files or file_fingerprint(current[d]) != manifest.files[d]]
