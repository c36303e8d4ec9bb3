"""`LocalIndex`: a loaded local index (the `Index` protocol): FAISS search over the passage vectors
(exact, or approximate for big corpora: `rag.index.ann`), sentence similarities from the compact
sentence vectors (`rag.index.compact`), BM25 with bm25s (`rag.index.lexical`), passages and
documents' texts from their files (`rag.index.records`).

A small index (up to `EAGER_PASSAGES` passages) holds its passages as a tuple, each checked against
its document's text at load; a bigger one leaves passages and texts in their files (read at an
offset) and BM25's arrays in theirs (memory-mapped), and decodes what a question touches (its
per-passage text check is the save's; the checksums vouch for the bytes). An exact index decodes its
sentence vectors to float32 at load and scans them all for every question; an approximate one
leaves them in their file and scores only the sentences of the `SENTENCE_POOL` passages nearest the
question and of the candidates it is given (the retriever gives its BM25 ranking's): on
bench_scale's corpus that finds 0.83 of the exact top 10 at 100k passages and 0.62 at a million. Everything runs on one thread (FAISS's OpenMP and numpy's BLAS threads would spin against
torch's on small machines). `LocalIndex.decode` makes one from its saved files' contents and checks
them against each other and the manifest. Does not read or write files (`rag.index.local` does),
rank or fuse (`rag.search` does).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.errors import IndexStateError
from rag.index import alias_groups, ann, lexical
from rag.index.compact import SentenceVectors
from rag.index.generations import (
    ALIASES, BM25, DENSE, DOCUMENTS, MANIFEST, PASSAGE_TABLE, PASSAGES, SENTENCE_ROWS, SENTENCE_SCALES, SENTENCES, TEXT_OFFSETS,
    TEXTS,
)
from rag.index.records import DOC, END, START, YEAR, DocumentTexts, NpyRows, PassageRecords, npy_array
from rag.index.store import Manifest
from rag.types import Passage

EAGER_PASSAGES = 20_000  # up to this many passages, an index is held in memory whole
SENTENCE_POOL = 500  # an approximate index ranks the sentences of this many nearest passages (and candidates)
_FILES = (PASSAGES, PASSAGE_TABLE, DENSE, SENTENCES, SENTENCE_SCALES, SENTENCE_ROWS, TEXTS, TEXT_OFFSETS, DOCUMENTS)


@dataclass(frozen=True)
class LocalIndex:
    path: Path
    manifest: Manifest
    passages: Sequence[Passage]  # a tuple (small index) or `PassageRecords`
    dense: object = field(repr=False)  # faiss.Index
    bm25: lexical.Postings = field(repr=False)
    sentence_vectors: SentenceVectors = field(repr=False)
    texts: DocumentTexts = field(repr=False)  # doc -> the text its spans index into
    records: PassageRecords = field(repr=False)
    groups: tuple | None = field(default=None, repr=False)  # other names, found when saved; None: an older index

    _recent: dict = field(default_factory=dict, repr=False, compare=False)  # vector -> `_near`, a few
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        import faiss

        faiss.omp_set_num_threads(1)  # one thread is faster than two for a single query here

    @classmethod
    def decode(cls, path: Path, manifest: Manifest, files: Mapping[str, object]) -> LocalIndex:
        """The index saved as these files (name -> bytes or a read-only memory map, as
        `rag.index.generations.read_generation` gives them), checked against each other and
        `manifest`; IndexStateError names what is wrong."""
        where = f"index at {str(path)!r}"
        missing = [name for name in _FILES if name not in files]
        if missing:
            raise IndexStateError(f"{where} could not be read: {MANIFEST} lists no {missing[0]}")
        try:
            table = npy_array(files[PASSAGE_TABLE])
            docs = json.loads(files[DOCUMENTS][:])
            texts = DocumentTexts(files[TEXTS], docs, npy_array(files[TEXT_OFFSETS]))
            records = PassageRecords(files[PASSAGES], table)
            eager = len(table) <= EAGER_PASSAGES
            passages = tuple(records) if eager else records
            dense = ann.prepare(_read_faiss(files[DENSE]))
            model = lexical.from_files({name.split("/", 1)[1]: data for name, data in files.items()
                                        if name.startswith(BM25 + "/")})
            codes, scales = NpyRows(files[SENTENCES]), npy_array(files[SENTENCE_SCALES])
            rows = npy_array(files[SENTENCE_ROWS])
            _check_shapes(table, texts, codes, scales)
            sentences = SentenceVectors(codes, scales, rows, in_memory=ann.kind_of(dense) == "flat")  # exact: scans all
            groups = alias_groups.from_json(json.loads(files[ALIASES][:])) if ALIASES in files else None
        except (ValueError, KeyError, TypeError, RuntimeError, OSError, IndexError) as exc:
            raise IndexStateError(f"{where} could not be read: {str(exc).splitlines()[0]}") from None
        if dense.ntotal != len(table) or len(table) != manifest.passages:
            raise IndexStateError(f"{where} is inconsistent: {len(table)} passages, {dense.ntotal} "
                                  f"vectors, manifest says {manifest.passages}")
        if dense.d != manifest.dim:
            raise IndexStateError(f"{where} has vectors of dimension {dense.d}, manifest says {manifest.dim}")
        if len(rows) != len(table) + 1 or rows[-1] != len(codes) or codes.shape[1] != manifest.dim:
            raise IndexStateError(f"{where} is inconsistent: sentence vectors do not match the passages")
        if eager and not _spans_match(passages, table, texts):
            raise IndexStateError(f"{where} is inconsistent: passages do not match the documents' texts")
        return cls(path, manifest, passages, dense, model, sentences, texts, records, groups)

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def approximate(self) -> bool:
        """Whether dense search (and the best-sentence ranking) is approximate."""
        return ann.kind_of(self.dense) != "flat"

    def documents(self) -> Sequence[str]:
        return self.texts.docs

    def passage_columns(self) -> tuple[np.ndarray, np.ndarray]:
        return self._columns

    @cached_property
    def _columns(self) -> tuple[np.ndarray, np.ndarray]:
        table = self.records.table
        return np.ascontiguousarray(table[:, DOC]), np.ascontiguousarray(table[:, YEAR])

    def position(self, doc: str, start: int, end: int) -> int | None:
        number = self.texts.number(doc)
        return None if number is None else self.records.position(number, start, end)

    def passage_sentences(self, i: int) -> np.ndarray | None:
        return self.sentence_vectors.of(i)

    def vectors(self) -> np.ndarray:
        if not self.dense.ntotal:
            return np.zeros((0, self.manifest.dim), np.float32)
        return self.dense.reconstruct_n(0, self.dense.ntotal)

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        if not self.approximate or n > SENTENCE_POOL:
            return ann.search(self.dense, vector, n, allowed)
        return self._near(vector, allowed)[:n]

    def _near(self, vector: np.ndarray, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """The `SENTENCE_POOL` passages nearest `vector` in the approximate index: one graph search serves
        the dense ranking (its first n) and the best-sentence candidates; the last few are kept."""
        if allowed is not None:
            return ann.search(self.dense, vector, SENTENCE_POOL, allowed)
        key = np.asarray(vector, dtype=np.float32).tobytes()
        with self._lock:
            found = self._recent.get(key)
        if found is None:
            found = ann.search(self.dense, vector, SENTENCE_POOL, None)
            with self._lock:
                while len(self._recent) >= 8:
                    self._recent.pop(next(iter(self._recent)))
                self._recent[key] = found
        return found

    def sentence_scores(self, vector: np.ndarray) -> np.ndarray | None:
        return self.sentence_vectors.best(vector)

    def sentence_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None,
                        candidates: Sequence[int] = ()) -> list[tuple[int, float]]:
        if not self.approximate:
            scores = self.sentence_vectors.best(vector)
            return [(int(i), float(scores[i])) for i in ann.best(scores, n, allowed, floor=-1.0)]
        near = {i for i, _ in (self._near(vector, allowed) if n <= SENTENCE_POOL else
                               ann.search(self.dense, vector, n, allowed))}
        near.update(i for i in candidates if allowed is None or allowed[i])
        near = np.sort(np.fromiter(near, dtype=np.int64, count=len(near)))
        scores = self.sentence_vectors.best_of(vector, near)
        return [(int(near[j]), float(scores[j])) for j in ann.best(scores, n, floor=-1.0)]

    def saved_aliases(self) -> tuple | None:
        return self.groups

    def document_text(self, doc: str) -> str | None:
        return self.texts.get(doc)

    def lexical_scores(self, text: str) -> np.ndarray:
        return lexical.scores(self.bm25, text)

    def lexical_search(self, text: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        if not self.approximate:  # every score, as a small index always ranked them
            scores = lexical.scores(self.bm25, text)
            return [(int(i), float(scores[i])) for i in ann.best(scores, n, allowed, floor=0.0)]
        return lexical.search(self.bm25, text, n, allowed)

    def term_stats(self) -> lexical.TermStats:
        return lexical.term_stats(self.bm25)


def _check_shapes(table, texts: DocumentTexts, codes, scales) -> None:
    """ValueError unless the tables fit each other and their files."""
    if table.ndim != 2 or table.shape[1] != 5 or scales.shape != codes.shape[:1]:
        raise ValueError(f"tables of the wrong shape (passages {table.shape}, sentences {codes.shape}, "
                         f"scales {scales.shape})")
    if len(texts.offsets) != len(texts.docs) + 1 or texts.offsets[-1] != len(texts.data):
        raise ValueError(f"{len(texts.offsets)} text offsets for {len(texts.docs)} documents")
    if len(table) and (table[:, DOC].min() < 0 or table[:, DOC].max() >= len(texts.docs)):
        raise ValueError("a passage of no document")


def _spans_match(passages: Sequence[Passage], table: np.ndarray, texts: DocumentTexts) -> bool:
    """Whether every passage is the span of its document's text that it and the table say."""
    try:
        return all(texts[texts.docs[d]][s:e] == p.text
                   and (texts.docs[d], s, e, y) == (p.doc, p.start, p.end, p.year or 0)
                   for p, (d, s, e, y) in zip(passages, table[:, [DOC, START, END, YEAR]].tolist()))
    except (ValueError, KeyError, IndexError):  # a line of the texts that is not the document it should be
        return False


def _read_faiss(data):
    """The FAISS index saved as `data`: its bytes, or an open file read through in steps (so a big
    index is never held twice)."""
    import faiss

    if isinstance(data, (bytes, bytearray)):
        return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    done = 0

    def read(n: int) -> bytes:
        nonlocal done
        chunk = data[done:done + n]
        done += len(chunk)
        return chunk

    return faiss.read_index(faiss.PyCallbackIOReader(read, 1 << 22))
