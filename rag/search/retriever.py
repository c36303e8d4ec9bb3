"""`Retriever`: find the passages that answer a question, best first.

Modes: "dense" (nearest passage vectors), "bm25", and "hybrid" (the default: reciprocal rank fusion
of the dense ranking, the BM25 ranking and a ranking by each passage's most similar sentence, plus
small bonuses for passages of a year the question names ("in the 2021 Bluebook") and for passages
that mention the question's names). BM25 and the name bonus also match other names for what the
documents name (`rag.search.aliases`: "ASEM" for "Asia-Europe Meeting", "Finnish" for "Finland").
Filters by document and by year. A hybrid search encodes the question on the thread that asks
(encoding beside BM25 on another thread was slower on 2 cores: the encoder keeps every core busy).
Searches any `Index` (`rag.index.store`); the model and the index are loaded once and reused by every call. It is the `Searcher` the answerer asks for passages,
sentence vectors, term statistics and source text. Does not build indexes or compose answers.
"""

from __future__ import annotations

import heapq
import threading
from itertools import groupby
from operator import attrgetter
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.index.embed import Embedder, query_embedder
from rag.index.lexical import TermStats
from rag.index.factory import open_store
from rag.index.store import Index, Store, check_encoder, check_fresh, source_file
from rag.query import make_query, matching_docs
from rag.search.aliases import Aliases
from rag.search.names import PassageNames, needed_names
from rag.search.rank import NAME_BONUS, YEAR_BONUS, rrf
from rag.settings import DEFAULT_INDEX, DEFAULT_K, DEFAULT_MODE, YEAR
from rag.types import Passage, Query

class Retriever:
    """Searches one loaded index; safe to share between threads."""

    def __init__(self, index: Index, embedder: Embedder | None = None):
        self.index = index
        self.passages = index.passages
        self._embedder = embedder
        if embedder is not None:
            self._check(embedder)
        self._queries: dict[str, np.ndarray] = {}  # a small cache: the answerer re-uses the query vector
        self._lock, self._load_lock = threading.Lock(), threading.Lock()
        # filters read the index's columns (a document's number, a year per passage), not the passages
        names = index.documents()
        self._doc_ids, self._year_ids = index.passage_columns()
        numbers, from_end = np.unique(self._doc_ids[::-1], return_index=True)
        last = len(self._doc_ids) - 1 - from_end  # each document's last passage (whose year counts)
        years = {names[d]: int(self._year_ids[i]) or None for d, i in zip(numbers.tolist(), last.tolist())}
        self.docs = tuple(sorted(years))
        self.years = {doc: years[doc] for doc in self.docs}
        self._numbers = {doc: i for i, doc in enumerate(names)}
        self._known_years = {y for y in self.years.values() if y}

    @classmethod
    def load(cls, index_dir: str | Path = DEFAULT_INDEX, *, embedder: Embedder | None = None,
             check_sources: bool = True, store: str | Store | None = None) -> Retriever:
        """Load and check an index; with `check_sources`, refuse one whose source files changed since
        it was built (IndexStateError names them; `rag.build_index` brings it up to date). `store`, when
        given, is where the index is instead of `index_dir` (a directory, a Milvus URI or a `Store`)."""
        index = open_store(store if store is not None else index_dir).load()
        if check_sources:
            check_fresh(index)
        return cls(index, embedder)

    def _check(self, embedder: Embedder) -> None:
        check_encoder(self.index, embedder.name, embedder.dim)

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

    @cached_property
    def aliases(self) -> Aliases:
        """Other names for what the documents name ("ASEM", "Finnish"): as the index saved them, else
        found on first use (reading every passage: about a minute for a million)."""
        saved = self.index.saved_aliases()
        if saved is not None:
            return Aliases(saved)
        if len(self.docs) == 1 + int(np.count_nonzero(np.diff(self._doc_ids))):  # each document's passages together
            return Aliases.from_texts("\n".join(p.text for p in group)
                                      for _, group in groupby(self.passages, key=attrgetter("doc")))
        texts: dict[str, list[str]] = {}
        for p in self.passages:
            texts.setdefault(p.doc, []).append(p.text)
        return Aliases.from_texts("\n".join(parts) for parts in texts.values())

    def first_passages(self) -> list[Passage]:
        """Each document's first passage, documents in index order (what a list of the documents with
        their titles needs, without reading every passage of a big index)."""
        return [self.passages[i] for i in self._firsts.tolist()]

    @cached_property
    def _firsts(self) -> np.ndarray:
        return np.sort(np.unique(self._doc_ids, return_index=True)[1])

    @cached_property
    def _names(self) -> PassageNames:
        return PassageNames(self.passages, self.aliases.expand)

    @cached_property
    def term_stats(self) -> TermStats:
        return self.index.term_stats()

    def document_text(self, doc: str) -> str | None:
        """The text document `doc` was indexed from, as stored in the index (for a PDF, Word file or web
        page its extracted text; for `.txt`/`.md` the file's own): passages and citations index into
        it. None for a document not in the index."""
        return self.index.document_text(doc)

    def source_file(self, doc: str) -> Path | None:
        """The original file of document `doc` in the folders the index was built from, or None (not a
        document of the index, gone, or outside its folder)."""
        return source_file(self.index.manifest, doc)

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
        i = self.index.position(passage.doc, passage.start, passage.end)
        return None if i is None else self.index.passage_sentences(i)

    def name_share(self, passage: Passage, needed: list[list[str]]) -> float:
        """Share of the question's names (`needed_names`) that `passage` mentions (1.0 if none)."""
        return self._names.share(self.index.position(passage.doc, passage.start, passage.end), needed, passage)

    def named_years(self, question: str) -> set[int]:
        """Years named in the question that are the year of some document in the index."""
        return {int(y) for y in YEAR.findall(question)} & self._known_years

    def search(self, question: str, k: int = DEFAULT_K, mode: str = DEFAULT_MODE, doc: str | None = None,
               year: int | None = None) -> list[Passage]:
        """The `k` best passages for `question`, best first, each with its `score`; InputError for a
        question or setting that cannot be used (`rag.query`)."""
        return self.retrieve(make_query(question, k=k, mode=mode, doc=doc, year=year, docs=self.docs,
                                        years=self._known_years))

    def retrieve(self, query: Query) -> list[Passage]:
        """The passages for a checked `query`."""
        if not self.passages:
            return []
        mask = self._mask(query.doc, query.year)
        pool = min(len(self.passages), max(50, 4 * query.k))
        if query.mode == "dense":
            scored = self._dense(query.text, pool, mask)
        elif query.mode == "bm25":
            scored = self._bm25(query.text, pool, mask)
        else:
            lexical = [i for i, _ in self._bm25(query.text, pool, mask)]
            rankings = [[i for i, _ in self._dense(query.text, pool, mask)], lexical,
                        [i for i, _ in self._best_sentence(query.text, pool, mask, lexical)]]
            scored = list(rrf(rankings).items())
            years = self.named_years(query.text) if query.year is None else set()
            if years:
                scored = [(i, s + YEAR_BONUS * (self._year_ids[i] in years)) for i, s in scored]
            needed = needed_names(self.aliases.expand(query.text))  # "Finnish": "Finland"; "EU": "European Union"
            if needed:
                scored = self._with_names(scored, needed, query.k)
        scored.sort(key=lambda t: (-t[1], t[0]))
        return [replace(self.passages[i], score=round(s, 6)) for i, s in scored[:query.k]]

    def _with_names(self, scored: list[tuple[int, float]], needed: list[list[str]], k: int) -> list[tuple[int, float]]:
        """`scored` with the name bonus added to each passage that could make the top `k` with it: best
        first, until a score plus the whole bonus stays below the k-th (the rest are left as they are),
        so the top k is the same as with every passage's names read, at a fraction of the reading."""
        ranked = sorted(scored, key=lambda t: (-t[1], t[0]))
        kept: list[tuple[float, int]] = []  # the k best so far, the worst first: (score, -position)
        for n, (i, s) in enumerate(ranked):
            if len(kept) == k and s + NAME_BONUS < kept[0][0]:
                break  # neither this passage nor any after it can make the top k
            ranked[n] = (i, s + NAME_BONUS * self._names.share(i, needed))
            (heapq.heappush if len(kept) < k else heapq.heappushpop)(kept, (ranked[n][1], -i))
        return ranked

    def _mask(self, doc: str | None, year: int | None) -> np.ndarray | None:
        if doc is None and year is None:
            return None
        mask = np.ones(len(self.passages), dtype=bool)
        if doc is not None:
            mask &= np.isin(self._doc_ids, [self._numbers[d] for d in matching_docs(doc, self.docs)])
        if year is not None:
            mask &= self._year_ids == year
        return mask

    def _dense(self, question: str, n: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        return self.index.dense_search(self.embed_query(question)[0], n, mask)

    def _best_sentence(self, question: str, n: int, mask: np.ndarray | None,
                       lexical: list[int] = ()) -> list[tuple[int, float]]:
        """Passages ranked by their single most similar sentence (finer than the passage vector); a big
        index looks among the nearest passages and the BM25 ranking's."""
        return self.index.sentence_search(self.embed_query(question)[0], n, mask, lexical)

    def _bm25(self, question: str, n: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        # abbreviations only: adding "Germany" to a query about a "German ruler" made SQuAD's BM25 worse
        return self.index.lexical_search(self.aliases.expand(question, long_forms=False, countries=False), n, mask)
