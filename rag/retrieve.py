"""`Retriever`: find the passages that answer a question, best first.

Modes: "dense" (FAISS inner product over normalised embeddings), "bm25" (bm25s), and "hybrid"
(the default: reciprocal rank fusion of the dense ranking, the BM25 ranking and a ranking by each
passage's most similar sentence, plus small bonuses for passages of a year the question names
("in the 2021 Bluebook") and for passages that mention the question's names). BM25 and the name
bonus also match other names for what the documents name (`rag.aliases`: "ASEM" for "Asia-Europe
Meeting", "Finnish" for "Finland"). Filters by document and by year. The model and the index are
loaded once and reused by every call. Does not build indexes or compose answers.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import numpy as np

from rag import lexical, store
from rag.aliases import Aliases
from rag.embed import Embedder, query_embedder
from rag.errors import IndexStateError, RagError
from rag.question import mentions, names, stem_prefix, words
from rag.types import Passage

MODES = ("hybrid", "dense", "bm25")
RRF_K = 60
SENTENCE_RANKING = True
NAME_BONUS = 0.5 / (RRF_K + 1)  # for a passage that mentions every name in the question
YEAR_BONUS = 0.5 / (RRF_K + 1)  # half of one first place in one ranking
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")


def rrf(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: each id scores sum(1 / (k + rank)) over the rankings it is in (rank from 1)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, i in enumerate(ranking, 1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (k + rank)
    return fused


class Retriever:
    """Searches one loaded index; safe to share between threads."""

    def __init__(self, index: store.StoredIndex, embedder: Embedder | None = None):
        import faiss

        faiss.omp_set_num_threads(1)  # one thread is faster than two for a single query here
        self.index = index
        self.passages = index.passages
        self._embedder = embedder
        if embedder is not None:
            self._check(embedder)
        self._position = {(p.doc, p.start, p.end): i for i, p in enumerate(self.passages)}
        self._queries: dict[str, np.ndarray] = {}  # a small cache: the answerer re-uses the query vector
        self._lock, self._load_lock = threading.Lock(), threading.Lock()
        self._prefixes: list[frozenset[str] | None] = [None] * len(self.passages)  # filled on demand
        if index.sentences is not None:
            rows = index.sentence_rows
            self._has_sentences = rows[1:] > rows[:-1]
            self._sentence_starts = rows[:-1][self._has_sentences]
        self.docs = tuple(sorted({p.doc for p in self.passages}))
        self.years = {p.doc: p.year for p in self.passages}
        self._doc_ids = np.array([p.doc for p in self.passages], dtype=object)
        self._year_ids = np.array([p.year or 0 for p in self.passages])

    @classmethod
    def load(cls, index_dir: str | Path = "index", *, embedder: Embedder | None = None,
             check_sources: bool = True) -> Retriever:
        """Load and check an index; with `check_sources`, refuse one whose source files changed since
        it was built (IndexStateError names them; `rag.build_index` brings it up to date)."""
        index = store.load(index_dir)
        if check_sources:
            changed = store.stale_files(index.manifest)
            if changed:
                raise IndexStateError(
                    f"index at {str(index_dir)!r} is stale: {len(changed)} file(s) changed in {index.manifest.docs} "
                    f"since it was built ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}); "
                    f"run `rag index` to update it")
        return cls(index, embedder)

    def _check(self, embedder: Embedder) -> None:
        m = self.index.manifest
        if embedder.dim != m.dim:
            raise IndexStateError(
                f"index at {str(self.index.path)!r} has dimension {m.dim} (model {m.model!r}) but the embedder "
                f"{embedder.name!r} gives {embedder.dim}; rebuild the index with that model")
        if embedder.name != m.model:
            raise IndexStateError(
                f"index at {str(self.index.path)!r} was built with model {m.model!r}, not {embedder.name!r}; "
                f"rebuild it with --model {embedder.name}")

    @property
    def embedder(self) -> Embedder:
        """The query embedder, loaded on first use (once, even when two threads ask at once)."""
        if self._embedder is None:
            with self._load_lock:
                if self._embedder is None:
                    embedder = query_embedder(self.index.manifest.model)
                    self._check(embedder)
                    self._embedder = embedder
        return self._embedder

    def _mask(self, doc: str | None, year: int | None) -> np.ndarray | None:
        if doc is None and year is None:
            return None
        mask = np.ones(len(self.passages), dtype=bool)
        if doc is not None:
            matches = [d for d in self.docs if d == doc or Path(d).name == doc or Path(d).stem == doc]
            if not matches:
                raise RagError(f"no document {doc!r} in the index (it has {len(self.docs)}: {', '.join(self.docs[:5])}"
                               f"{', ...' if len(self.docs) > 5 else ''})")
            mask &= np.isin(self._doc_ids, matches)
        if year is not None:
            mask &= self._year_ids == year
        return mask

    @cached_property
    def aliases(self) -> Aliases:
        """Other names for what the documents name ("ASEM", "Finnish"), found on first use (`rag.aliases`)."""
        texts: dict[str, list[str]] = {}
        for p in self.passages:
            texts.setdefault(p.doc, []).append(p.text)
        return Aliases.from_texts("\n".join(parts) for parts in texts.values())

    def embed_query(self, question: str) -> np.ndarray:
        """The question's (1, dim) vector, cached for the last few questions."""
        vector = self._queries.get(question)
        if vector is None:
            vector = self.embedder.encode([question])
            with self._lock:
                if len(self._queries) >= 256:
                    self._queries.clear()
                self._queries[question] = vector
        return vector

    def clear_cache(self) -> None:
        """Forget cached question vectors (so a benchmark measures encoding too)."""
        with self._lock:
            self._queries.clear()

    def sentence_vectors(self, passage: Passage) -> np.ndarray | None:
        """Vectors of the passage's sentences (split_sentences order), if the index has them."""
        i = self._position.get((passage.doc, passage.start, passage.end))
        return None if i is None else self.index.passage_sentences(i)

    def _dense(self, question: str, n: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        import faiss

        vector = self.embed_query(question)
        params = None
        if mask is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.flatnonzero(mask).astype(np.int64)))
        scores, ids = self.index.dense.search(vector, n, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _best_sentence(self, question: str, n: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        """Passages ranked by their single most similar sentence (finer than the passage vector)."""
        # einsum, not `@`: numpy's BLAS threads would spin against torch's on two cores (3x slower searches)
        sims = np.einsum("ij,j->i", self.index.sentences, self.embed_query(question)[0])
        best = np.full(len(self.passages), -1.0, dtype=np.float32)
        best[self._has_sentences] = np.maximum.reduceat(sims, self._sentence_starts)
        if mask is not None:
            best = np.where(mask, best, -1.0)
        top = np.argpartition(-best, min(n, len(best)) - 1)[:n]
        top = top[np.lexsort((top, -best[top]))]
        return [(int(i), float(best[i])) for i in top if best[i] > -1.0]

    def _bm25(self, question: str, n: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        # abbreviations only: adding "Germany" to a query about a "German ruler" made SQuAD's BM25 worse
        scores = lexical.scores(self.index.bm25, self.aliases.expand(question, long_forms=False, countries=False))
        if mask is not None:
            scores = np.where(mask, scores, -1.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.lexsort((top, -scores[top]))]  # by score, ties by index order: deterministic
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    def _mentions_all(self, i: int, needed: list[list[str]]) -> float:
        """Share of the question's names that passage i (with its headings) mentions; the same test as
        `rag.question.mentions`, on a cached set of word prefixes."""
        prefixes = self._prefixes[i]
        if prefixes is None:
            tokens = words(self.aliases.expand(self.passages[i].context()))
            prefixes = self._prefixes[i] = frozenset(t[:j] for t in tokens for j in range(1, 6))
        return sum(all(stem_prefix(w) in prefixes for w in name) for name in needed) / len(needed)

    def name_share(self, passage: Passage, needed: list[list[str]]) -> float:
        """Share of the question's names (`rag.question.names`) that `passage` mentions (1.0 if none)."""
        if not needed:
            return 1.0
        i = self._position.get((passage.doc, passage.start, passage.end))
        if i is None:
            context = words(self.aliases.expand(passage.context()))
            return sum(mentions(n, context) for n in needed) / len(needed)
        return self._mentions_all(i, needed)

    def named_years(self, question: str) -> set[int]:
        """Years named in the question that are the year of some document in the index."""
        known = {y for y in self.years.values() if y}
        return {int(y) for y in _YEAR.findall(question)} & known

    def search(self, question: str, k: int = 5, mode: str = "hybrid", doc: str | None = None,
               year: int | None = None) -> list[Passage]:
        """The `k` best passages for `question`, best first, each with its `score`."""
        if mode not in MODES:
            raise RagError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if not isinstance(k, int) or k < 1:
            raise RagError(f"k of {k!r} must be a positive whole number")
        question = (question or "").strip()
        if not question or not self.passages:
            return []
        mask = self._mask(doc, year)
        pool = min(len(self.passages), max(50, 4 * k))
        if mode == "dense":
            scored = self._dense(question, pool, mask)
        elif mode == "bm25":
            scored = self._bm25(question, pool, mask)
        else:
            rankings = [[i for i, _ in self._dense(question, pool, mask)],
                        [i for i, _ in self._bm25(question, pool, mask)]]
            if SENTENCE_RANKING and self.index.sentences is not None:
                rankings.append([i for i, _ in self._best_sentence(question, pool, mask)])
            scored = list(rrf(rankings).items())
        years = self.named_years(question) if year is None else set()
        if years and mode == "hybrid":
            scored = [(i, s + YEAR_BONUS * (self._year_ids[i] in years)) for i, s in scored]
        needed = [n for _, n in names(self.aliases.expand(question))]  # "Finnish": "Finland"; "EU": "European Union"
        if needed and mode == "hybrid" and NAME_BONUS:
            scored = [(i, s + NAME_BONUS * self._mentions_all(i, needed)) for i, s in scored]
        scored.sort(key=lambda t: (-t[1], t[0]))
        return [replace(self.passages[i], score=round(s, 6)) for i, s in scored[:k]]
