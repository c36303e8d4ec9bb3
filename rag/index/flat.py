"""`LocalIndex`: an index held in memory (the `Index` protocol): FAISS flat inner-product search over
the passage vectors, exact sentence similarities with numpy, BM25 scores with bm25s.

Everything is exact and runs on one thread (FAISS's OpenMP and numpy's BLAS threads would spin
against torch's on small machines). `LocalIndex.decode` makes one from the bytes of its saved files
and checks them against each other and the manifest. Does not read or write files (`rag.index.local`
does), rank or fuse (`rag.search` does).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.errors import IndexStateError
from rag.index import lexical
from rag.index.store import Manifest
from rag.types import Passage


@dataclass(frozen=True)
class LocalIndex:
    path: Path
    manifest: Manifest
    passages: tuple[Passage, ...]
    dense: object = field(repr=False)  # faiss.Index
    bm25: object = field(repr=False)  # bm25s.BM25
    sentences: np.ndarray | None = field(default=None, repr=False)  # (n_sentences, dim)
    sentence_rows: np.ndarray | None = field(default=None, repr=False)  # passage i owns rows [r[i], r[i+1])
    texts: Mapping[str, str] = field(default_factory=dict, repr=False)  # doc -> the text its spans index into

    def __post_init__(self) -> None:
        import faiss

        faiss.omp_set_num_threads(1)  # one thread is faster than two for a single query here

    @classmethod
    def decode(cls, path: Path, manifest: Manifest, passages: bytes, dense: bytes, bm25: Mapping[str, bytes],
               sentences: bytes | None = None, sentence_rows: bytes | None = None,
               texts: bytes = b"") -> LocalIndex:
        """The index saved as these bytes (passages.jsonl, a FAISS index, bm25s's files by name, the
        sentence vectors' and rows' .npy files, and texts.jsonl), checked against each other and
        `manifest`; IndexStateError names what is wrong."""
        import faiss

        try:
            lines = passages.decode("utf-8").split("\n")  # not splitlines: a text may hold U+2028
            rows = tuple(Passage.from_json(json.loads(line)) for line in (lines[:-1] if lines[-1] == "" else lines))
            docs = {}
            for line in texts.decode("utf-8").split("\n"):
                if line:
                    row = json.loads(line)
                    docs[row["doc"]] = row["text"]
            index = faiss.deserialize_index(np.frombuffer(dense, dtype=np.uint8))
            model = lexical.from_files(bm25)
            vectors = starts = None
            if sentences is not None:
                vectors = np.load(io.BytesIO(sentences), allow_pickle=False)
                starts = np.load(io.BytesIO(sentence_rows), allow_pickle=False)
        except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
            raise IndexStateError(f"index at {str(path)!r} could not be read: {str(exc).splitlines()[0]}") from None
        if index.ntotal != len(rows) or len(rows) != manifest.passages:
            raise IndexStateError(f"index at {str(path)!r} is inconsistent: {len(rows)} passages, {index.ntotal} "
                                  f"vectors, manifest says {manifest.passages}")
        if index.d != manifest.dim:
            raise IndexStateError(f"index at {str(path)!r} has vectors of dimension {index.d}, "
                                  f"manifest says {manifest.dim}")
        if vectors is not None and (len(starts) != len(rows) + 1 or starts[-1] != len(vectors)
                                    or vectors.shape[1:] != (manifest.dim,)):
            raise IndexStateError(f"index at {str(path)!r} is inconsistent: sentence vectors do not match the passages")
        if any(docs.get(p.doc, "")[p.start:p.end] != p.text for p in rows):
            raise IndexStateError(f"index at {str(path)!r} is inconsistent: passages do not match the documents' texts")
        return cls(path, manifest, rows, index, model, vectors, starts, docs)

    @property
    def location(self) -> str:
        return str(self.path)

    def passage_sentences(self, i: int) -> np.ndarray | None:
        if self.sentences is None:
            return None
        return self.sentences[self.sentence_rows[i]:self.sentence_rows[i + 1]]

    def vectors(self) -> np.ndarray:
        if not self.dense.ntotal:
            return np.zeros((0, self.manifest.dim), np.float32)
        return self.dense.reconstruct_n(0, self.dense.ntotal)

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        import faiss

        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.flatnonzero(allowed).astype(np.int64)))
        scores, ids = self.dense.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), n, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    @cached_property
    def _sentence_owners(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self.sentence_rows
        has = rows[1:] > rows[:-1]
        return has, rows[:-1][has]

    def sentence_scores(self, vector: np.ndarray) -> np.ndarray | None:
        if self.sentences is None:
            return None
        has, starts = self._sentence_owners
        # einsum, not `@`: numpy's BLAS threads would spin against torch's on two cores (3x slower searches)
        sims = np.einsum("ij,j->i", self.sentences, np.asarray(vector, dtype=np.float32).reshape(-1))
        best = np.full(len(self.passages), -1.0, dtype=np.float32)
        if len(starts):
            best[has] = np.maximum.reduceat(sims, starts)
        return best

    def document_text(self, doc: str) -> str | None:
        return self.texts.get(doc)

    def lexical_scores(self, text: str) -> np.ndarray:
        return lexical.scores(self.bm25, text)

    def term_stats(self) -> lexical.TermStats:
        return lexical.term_stats(self.bm25)
