"""`MilvusIndex`: one generation of a Milvus index, loaded (the `Index` protocol).

Read once at load: the manifest, the documents list and every passage's fields without vectors
(what the retriever's filters, aliases and name bonus read anyway). Asked of Milvus per question:
dense search over the passage vectors; BM25 through Milvus's own BM25 function (the query analysed
as `rag.index.lexical` analyses it; scores divided by k1 + 1, which bm25s leaves out, so they are
bm25s's); and, above `HELD_SENTENCES` sentences, the best-sentence ranking: a top-L sentence search
grouped by passage here (once it holds n passages they are exactly the n whose best sentence is
nearest; L grows until then; the retriever's BM25 `candidates` are not needed). Up to that many,
the sentence vectors are read from Milvus once, on the first question, and ranked here as the local
exact index ranks them: a search over every sentence costs Milvus Lite (pure Python) 60-150 ms on
SQuAD-dev's 10,796 sentences, a scan here a fraction of a millisecond. Document and year filters are scalar filters. Equal
scores rank as locally: the earlier passage first (the dense ranking: the later one, FAISS's
order), so a small index gives the local index's rankings. Read when first asked and kept:
documents' texts (a query per document, the last 64 kept), term statistics, sentence vectors (a
query per passage, or per block of passages when they are read in order, as a build does; held
ones are sliced from the matrix).
Does not write; a failed call is one `RagError` line (`rag.index.milvus.client.failing`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from rag.index import ann, lexical
from rag.index.milvus import schema
from rag.index.milvus.client import Location, failing
from rag.index.store import Manifest
from rag.types import Passage

MAX_LIMIT = 16384  # the most hits or rows one Milvus search or query returns
BLOCK_SENTENCES = 8192  # sentence rows a block read (passages read in order) fetches at most
TIE_MARGIN = 10  # extra hits asked for, so ties at the n-th place go to the earlier passage
HELD_SENTENCES = 50_000  # up to this many sentence vectors are read once and ranked here (77 MB at dim 384)
QUERY_TIMEOUT = 60.0  # seconds for one search or query (a server that stops answering is an error, not a hang)


@dataclass
class MilvusIndex:
    where: Location
    client: object = field(repr=False)
    name: str  # the generation's passages collection
    manifest: Manifest
    passages: Sequence[Passage]
    docs: list[str]
    sentence_counts: np.ndarray = field(repr=False)
    _doc_ids: np.ndarray = field(repr=False)
    _years: np.ndarray = field(repr=False)
    _texts: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _block: tuple = field(default=(-1, -1, {}), repr=False)  # (first, end, passage -> vectors)
    _last: int = field(default=-2, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def location(self) -> str:
        return self.where.uri

    @cached_property
    def _positions(self) -> dict:
        return {(p.doc, p.start, p.end): i for i, p in enumerate(self.passages)}

    @cached_property
    def _numbers(self) -> dict:
        return {doc: i for i, doc in enumerate(self.docs)}

    def documents(self) -> Sequence[str]:
        return self.docs

    def passage_columns(self) -> tuple[np.ndarray, np.ndarray]:
        return self._doc_ids, self._years

    def position(self, doc: str, start: int, end: int) -> int | None:
        return self._positions.get((doc, start, end))

    def vectors(self) -> np.ndarray:
        out = np.zeros((len(self.passages), self.manifest.dim), np.float32)
        for row in self._iterate(self.name, "", ["id", "vector"], "reading the passage vectors"):
            out[int(row["id"])] = row["vector"]
        return out

    def passage_sentences(self, i: int) -> np.ndarray | None:
        if not 0 <= i < len(self.passages):
            raise IndexError(f"passage {i} of {len(self.passages)}")
        if self.sentence_counts.sum() <= HELD_SENTENCES:
            matrix, rows = self._sentences[0], self._rows
            return matrix[rows[i]:rows[i + 1]]
        with self._lock:
            first, end, block = self._block
            sequential, self._last = i == self._last + 1, i
        if first <= i < end:
            return block[i]
        if sequential:  # a pass over the passages in order: read ahead
            end = i + 1
            total = int(self.sentence_counts[i])
            while end < len(self.passages) and total + self.sentence_counts[end] <= BLOCK_SENTENCES:
                total += int(self.sentence_counts[end])
                end += 1
        else:
            end = i + 1
        block = self._read_sentences(i, end)
        with self._lock:
            self._block = (i, end, block)
        return block[i]

    def _read_sentences(self, first: int, end: int) -> dict[int, np.ndarray]:
        total = int(self.sentence_counts[first:end].sum())
        out = {i: np.zeros((int(self.sentence_counts[i]), self.manifest.dim), np.float32) for i in range(first, end)}
        if total:
            with failing(self.where, f"reading the sentence vectors of passages {first}-{end - 1}"):
                rows = self.client.query(schema.sentences_name(self.name), filter=f"passage >= {first} and passage < {end}",
                                         output_fields=["passage", "number", "vector"], limit=min(MAX_LIMIT, total),
                                         timeout=QUERY_TIMEOUT)
            for row in rows:
                out[int(row["passage"])][int(row["number"])] = row["vector"]
        return out

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        where = self._filter(allowed, "id")
        if where is None:
            return []
        hits = self._search(self.name, "vector", vector, n, where, ["id"], "dense search")
        # equal scores in FAISS's order (the later passage first), as the local index ranks them
        return sorted(((int(h["id"]), float(h["distance"])) for h in hits), key=lambda t: (-t[1], -t[0]))[:n]

    def lexical_search(self, text: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        where = self._filter(allowed, "id")
        tokens = lexical.tokenize([text])[0]
        if where is None or not tokens:
            return []
        hits = self._search(self.name, "sparse", " ".join(tokens), n + TIE_MARGIN, where, ["id"], "BM25 search")
        # Milvus scores idf * tf * (k1 + 1) / (tf + k1 * norm); bm25s leaves out the (k1 + 1)
        scored = [(int(h["id"]), abs(float(h["distance"])) / (schema.BM25_K1 + 1)) for h in hits]
        return [(i, s) for i, s in _best(scored, n) if s > 0]

    def lexical_scores(self, text: str) -> np.ndarray:
        out = np.zeros(len(self.passages), np.float32)
        for i, s in self.lexical_search(text, min(MAX_LIMIT - TIE_MARGIN, len(self.passages)), None):
            out[i] = s
        return out

    def sentence_scores(self, vector: np.ndarray) -> np.ndarray | None:
        out = np.full(len(self.passages), -1.0, np.float32)
        for i, s in self.sentence_search(vector, len(self.passages), None):
            out[i] = s
        return out

    def sentence_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None,
                        candidates: Sequence[int] = ()) -> list[tuple[int, float]]:
        if self.sentence_counts.sum() <= HELD_SENTENCES:  # held here: as the local exact index ranks them
            matrix, starts, has = self._sentences
            sims = np.einsum("ij,j->i", matrix, np.asarray(vector, dtype=np.float32).reshape(-1))
            best = np.full(len(self.passages), -1.0, dtype=np.float32)
            if len(starts):
                best[has] = np.maximum.reduceat(sims, starts)
            return [(int(i), float(best[i])) for i in ann.best(best, n, allowed, floor=-1.0)]
        where = self._filter(allowed, "passage")
        counts = self.sentence_counts if allowed is None else self.sentence_counts[allowed]
        total, wanted = min(int(counts.sum()), MAX_LIMIT), min(n, int(np.count_nonzero(counts)))
        if where is None or not total:
            return []
        limit = min(total, max(64, 2 * (n + TIE_MARGIN)))
        while True:
            hits = self._search(schema.sentences_name(self.name), "vector", vector, limit, where, ["passage"],
                                "best-sentence search")
            best: dict[int, float] = {}
            for h in hits:
                i, s = int(h["entity"]["passage"]), float(h["distance"])
                best[i] = max(best.get(i, s), s)
            if len(best) >= wanted + TIE_MARGIN or limit >= total:
                return _best(list(best.items()), n)
            limit = min(total, limit * 4)

    @cached_property
    def _rows(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sentence_counts)]).astype(np.int64)

    @cached_property
    def _sentences(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every sentence vector (read once, in one pass), where each passage's start, which passages have any."""
        matrix = np.zeros((int(self.sentence_counts.sum()), self.manifest.dim), np.float32)
        for row in self._iterate(schema.sentences_name(self.name), "", ["id", "vector"], "reading the sentence vectors"):
            matrix[int(row["id"])] = row["vector"]
        has = self.sentence_counts > 0
        return matrix, np.concatenate([[0], np.cumsum(self.sentence_counts)[:-1]])[has].astype(np.int64), has

    def saved_aliases(self) -> tuple | None:
        return None  # not kept in Milvus yet: the retriever finds them from the passages on first use

    def document_text(self, doc: str) -> str | None:
        number = self._numbers.get(doc) if isinstance(doc, str) else None
        if number is None:
            return None
        with self._lock:
            if doc in self._texts:
                self._texts.move_to_end(doc)
                return self._texts[doc]
        with failing(self.where, f"reading the text of {doc!r}"):
            rows = self.client.query(schema.meta_name(self.name), filter=f'name == "text" and key == {number}',
                                     output_fields=["key", "part", "data"], limit=MAX_LIMIT, timeout=QUERY_TIMEOUT)
        text = schema.joined(rows).get(number)
        with self._lock:
            self._texts[doc] = text
            while len(self._texts) > 64:
                self._texts.popitem(last=False)
        return text

    def term_stats(self) -> lexical.TermStats:
        return self._term_stats

    @cached_property
    def _term_stats(self) -> lexical.TermStats:
        rows = list(self._iterate(schema.meta_name(self.name), 'name == "terms"', ["key", "part", "data"],
                                  "reading the term statistics"))
        stats = json.loads(schema.joined(rows)[0])
        return lexical.TermStats(int(stats["n"]), stats["ids"], np.asarray(stats["indptr"], dtype=np.int64))

    def _filter(self, allowed: np.ndarray | None, key: str) -> str | None:
        """The scalar filter that admits exactly the `allowed` passages ("" for all, None for none): the
        documents and years under the mask (the retriever's masks are such a conjunction), else their ids."""
        if allowed is None:
            return ""
        if not allowed.any():
            return None
        if allowed.all():
            return ""
        docs, years = np.unique(self._doc_ids[allowed]), np.unique(self._years[allowed])
        if np.array_equal(np.isin(self._doc_ids, docs) & np.isin(self._years, years), allowed):
            parts = [] if np.isin(self._doc_ids, docs).all() else [f"doc_no in {docs.tolist()}"]
            parts += [] if np.isin(self._years, years).all() else [f"year in {years.tolist()}"]
            return " and ".join(parts)
        return f"{key} in {np.flatnonzero(allowed).tolist()}"

    def _search(self, name: str, field_name: str, query, limit: int, where: str, output: list[str], what: str):
        params = {"metric_type": "BM25"} if field_name == "sparse" else {"metric_type": "IP"}
        if field_name != "sparse" and schema.approximate(len(self.passages)):
            params["params"] = {"ef": max(schema.HNSW_EF, limit)}
        data = query if isinstance(query, str) else np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        with failing(self.where, what):
            return self.client.search(name, data=[data], anns_field=field_name, limit=max(1, min(limit, MAX_LIMIT)),
                                      filter=where, output_fields=output, search_params=params,
                                      timeout=QUERY_TIMEOUT)[0]

    def _iterate(self, name: str, where: str, output: list[str], what: str):
        return iterate(self.client, self.where, name, where, output, what)


def iterate(client, location: Location, name: str, where: str, output: list[str], what: str):
    """Every row of collection `name` matching `where` (its `output` fields), read in batches."""
    with failing(location, what):
        found = client.query_iterator(name, batch_size=1000, filter=where, output_fields=output, timeout=QUERY_TIMEOUT)
        try:
            while rows := found.next():
                yield from rows
        finally:
            found.close()


def _best(scored: list[tuple[int, float]], n: int) -> list[tuple[int, float]]:
    """The n best, by score then position."""
    return sorted(scored, key=lambda t: (-t[1], t[0]))[:n]
