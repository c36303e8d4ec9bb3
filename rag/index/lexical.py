"""BM25 over passage texts with bm25s: tokenising (English stop words, Snowball stemming), indexing,
scoring one query against every passage (`scores`) or finding the best ones (`search`: the same
scores, summed over the query terms' postings only, which a million passages need), and the term
statistics (document frequencies, vocabulary) that the answerer weighs question terms with. Saved as
bm25s's own `.npy`/`.json` files (no pickle), read back from a folder or from those files' bytes or
memory maps (the arrays are viewed, not copied). The only module that knows bm25s's internals.

The vocabulary is numbered in sorted term order (bm25s numbers it in set order, which follows
PYTHONHASHSEED), so the same passages always give byte-identical files; every score is the same
as bm25s's own numbering gives (a term's column number enters no score).

Does not fuse with dense scores or filter; `rag.search` does that.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.index.ann import best
from rag.index.records import npy_array


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def stem(word: str) -> str | None:
    """The indexed form of one lower-case word, or None for a stop word (never indexed)."""
    return None if word in _stopwords() else _stemmer().stemWord(word)


def tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, lower=True, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)


def build(texts: list[str]):
    """The BM25 model of `texts` (bm25s's defaults), its vocabulary numbered in sorted order."""
    import bm25s

    corpus = tokenize(texts)
    vocab = {term: i for i, term in enumerate(sorted({t for doc in corpus for t in doc}))} or {"": 0}
    model = bm25s.BM25()
    # bm25s appends its empty-query token "" after these, as it does when given the tokens themselves
    # (given none, bm25s would fail on an empty vocabulary: passages of stop words only, or none)
    with np.errstate(invalid="ignore", divide="ignore"):  # bm25s's 0/0 when no passage has a term
        model.index(([[vocab[t] for t in doc] for doc in corpus], vocab), show_progress=False)
    return model


def save(model, folder: Path) -> None:
    model.save(str(folder), show_progress=False)


def load(folder: Path):
    import bm25s

    return bm25s.BM25.load(str(folder), show_progress=False)


_ARRAYS = {"data": "data.csc.index.npy", "indices": "indices.csc.index.npy", "indptr": "indptr.csc.index.npy"}
_VOCAB, _PARAMS, _NONOCCURRENCE = "vocab.index.json", "params.index.json", "nonoccurrence_array.index.npy"


def from_files(files: Mapping[str, object]):
    """The model whose saved files (file name -> bytes or a memory map) are `files`: what `load` makes
    of a folder holding them, built from files already opened (and checked) rather than by opening the
    files again; the arrays view the given bytes."""
    import bm25s

    params = json.loads(files[_PARAMS][:])
    version, num_docs = params.pop("version", None), params.pop("num_docs", None)
    model = bm25s.BM25(**params)
    model.vocab_dict = json.loads(files[_VOCAB][:])
    model._original_version = version
    model.unique_token_ids_set = set(model.vocab_dict.values())
    model.scores = {key: npy_array(files[name]) for key, name in _ARRAYS.items()} | {"num_docs": num_docs}
    needs = model.method in model.methods_requiring_nonoccurrence
    model.nonoccurrence_array = npy_array(files[_NONOCCURRENCE]) if needs else None
    return model


def scores(model, question: str) -> np.ndarray:
    """BM25 score of every indexed passage for `question` (zeros when no query term is known)."""
    tokens = tokenize([question])[0]
    if not tokens:
        return np.zeros(model.scores["num_docs"], dtype=np.float32)
    return np.asarray(model.get_scores(tokens), dtype=np.float32)


def search(model, question: str, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The `n` best (passage, BM25 score) pairs scoring above 0, by score then position, only among
    `allowed` passages if given: exactly the top of `scores` (the same float32 sums, term by term in
    query order), but summed over the query terms' postings, so it costs what they hold."""
    if model.nonoccurrence_array is not None:  # every passage scores something: no shortcut
        total = scores(model, question)
        return [(int(i), float(total[i])) for i in best(total, n, allowed, floor=0.0)]
    tokens = tokenize([question])[0]
    data, indices, indptr = model.scores["data"], model.scores["indices"], model.scores["indptr"]
    total = np.zeros(model.scores["num_docs"], dtype=np.float32)
    terms = [model.vocab_dict[t] for t in tokens if t in model.vocab_dict]
    spans = [(int(indptr[t]), int(indptr[t + 1])) for t in terms]
    for a, b in spans:
        total[indices[a:b]] += data[a:b]  # a term's postings name each passage once: as np.add.at
    if sum(b - a for a, b in spans) * 8 < len(total):  # few postings: their passages, not a scan of all
        found = _best_posted([indices[a:b] for a, b in spans], total, n, allowed)
    else:
        found = np.flatnonzero(total)
        if allowed is not None:
            found = found[allowed[found]]
    found = found[best(total[found], n, floor=0.0)]
    return [(int(i), float(total[i])) for i in found]


def _best_posted(postings: list[np.ndarray], total: np.ndarray, n: int, allowed: np.ndarray | None) -> np.ndarray:
    """The passages among `postings` that can be among the `n` best by `total` (all those scoring at
    least the n-th best, ties included), without sorting every posting: a passage is in at most
    len(postings) of them, so the n * len(postings) best entries name at least n passages, and every
    passage scoring at least the least of those entries is kept."""
    found = np.concatenate(postings or [np.zeros(0, np.int64)])
    if allowed is not None:
        found = found[allowed[found]]
    m = n * len(postings)
    if len(found) > m:
        scores = total[found]
        least = np.partition(scores, len(scores) - m)[len(scores) - m]
        found = found[scores >= least]
    return np.unique(found)


@dataclass(frozen=True)
class TermStats:
    """Document frequencies of the indexed terms (stemmed, stop words dropped) over `n` passages."""

    n: int
    ids: dict  # term -> column of bm25s's sparse matrix
    indptr: np.ndarray  # column j's passages are indptr[j]:indptr[j + 1]

    def df(self, term: str) -> int:
        """How many passages hold `term`."""
        j = self.ids.get(term)
        return 0 if j is None else int(self.indptr[j + 1] - self.indptr[j])

    def idf(self, term: str) -> float:
        df = self.df(term)
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    @property
    def vocabulary(self) -> list[str]:
        return list(self.ids)


def term_stats(model) -> TermStats:
    """The statistics of a built or loaded BM25 model."""
    return TermStats(int(model.scores["num_docs"]), model.vocab_dict, model.scores["indptr"])
