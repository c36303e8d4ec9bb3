"""BM25 over passage texts with bm25s: tokenising (English stop words, Snowball stemming), indexing,
scoring one query against every passage (`scores`) or finding the best ones (`search`: the same
scores, summed over the query terms' postings only, which a million passages need), and the term
statistics (document frequencies, vocabulary) that the answerer weighs question terms with. Saved as
bm25s's own `.npy`/`.json` files (no pickle), read back from a folder or from those files' bytes or
memory maps (the arrays are viewed, not copied). The only module that knows bm25s's internals.

bm25s (and scipy, which it imports: 0.1 s of every cold start) is imported to build and save only.
Questions are tokenised here as bm25s tokenises (its token pattern, its English stop words, PyStemmer)
and scored from the saved postings (`Postings`), with the same float32 sums bm25s's `get_scores` makes.

The vocabulary is numbered in sorted term order (bm25s numbers it in set order, which follows
PYTHONHASHSEED), so the same passages always give byte-identical files; every score is the same
as bm25s's own numbering gives (a term's column number enters no score).

Does not fuse with dense scores or filter; `rag.search` does that.
"""

from __future__ import annotations

import json
import math
import re
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


# bm25s's English stop words (bm25s.stopwords.STOPWORDS_EN) and token pattern, which every index was built with
STOPWORDS = frozenset(("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
                       "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
                       "they", "this", "to", "was", "will", "with"))
TOKEN = re.compile(r"(?u)\b\w\w+\b")


def stem(word: str) -> str | None:
    """The indexed form of one lower-case word, or None for a stop word (never indexed)."""
    return None if word in STOPWORDS else _stemmer().stemWord(word)


def tokenize(texts: list[str]) -> list[list[str]]:
    """Each text's terms as bm25s.tokenize(lower=True, stopwords="en", stemmer=PyStemmer's English)
    gives them: lower-cased words of two or more word characters, stop words dropped, stemmed."""
    stemmer = _stemmer()
    return [stemmer.stemWords([w for w in TOKEN.findall(text.lower()) if w not in STOPWORDS]) for text in texts]


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
_VOCAB, _PARAMS = "vocab.index.json", "params.index.json"
_NONOCCURRENCE = ("bm25l", "bm25+")  # bm25s's methods that score passages without a term too: never built here


@dataclass(frozen=True)
class Postings:
    """A BM25 model as questions use it: bm25s's per-term postings (CSC: term j's passages are
    indices[indptr[j]:indptr[j + 1]], their scores the same rows of data) and its vocabulary."""

    vocab: dict  # term -> column
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    n: int  # passages


def postings(model) -> Postings:
    """The postings of a bm25s model that `build` made or `load` read (a method of bm25s that scores
    passages without the term too, BM25L or BM25+, is refused: `build` never makes one)."""
    if model.method in _NONOCCURRENCE:
        raise ValueError(f"BM25 method {model.method!r} is not read here (the index is built with 'lucene')")
    return Postings(model.vocab_dict, model.scores["data"], model.scores["indices"], model.scores["indptr"],
                    int(model.scores["num_docs"]))


def from_files(files: Mapping[str, object]) -> Postings:
    """The postings whose saved files (file name -> bytes or a memory map) are `files`: what `load`
    reads from a folder holding them, made from files already opened (and checked) rather than by
    opening them again, without bm25s; the arrays view the given bytes. ValueError for a BM25 method
    other than bm25s's default ('lucene') or its relatives that need no scores of absent terms."""
    params = json.loads(files[_PARAMS][:])
    if params.get("method", "lucene") in _NONOCCURRENCE:
        raise ValueError(f"BM25 method {params['method']!r} is not read here (the index is built with 'lucene')")
    arrays = {key: npy_array(files[name]) for key, name in _ARRAYS.items()}
    return Postings(json.loads(files[_VOCAB][:]), arrays["data"], arrays["indices"], arrays["indptr"],
                    int(params["num_docs"]))


def _postings_of(model) -> Postings:
    return model if isinstance(model, Postings) else postings(model)


def _summed(p: Postings, question: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Every passage's BM25 score for `question` (float32, term by term in query order, a repeated
    term counted again: bm25s's `get_scores`) and the spans of the query terms' postings."""
    total = np.zeros(p.n, dtype=np.float32)
    terms = [p.vocab[t] for t in tokenize([question])[0] if t in p.vocab]
    spans = [(int(p.indptr[t]), int(p.indptr[t + 1])) for t in terms]
    for a, b in spans:
        total[p.indices[a:b]] += p.data[a:b]  # a term's postings name each passage once: as np.add.at
    return total, spans


def scores(model, question: str) -> np.ndarray:
    """BM25 score of every indexed passage for `question` (zeros when no query term is known);
    `model` is `Postings` or a bm25s model from `build` or `load`."""
    return _summed(_postings_of(model), question)[0]


def search(model, question: str, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The `n` best (passage, BM25 score) pairs scoring above 0, by score then position, only among
    `allowed` passages if given: exactly the top of `scores` (the same float32 sums), found among the
    query terms' postings, so it costs what they hold."""
    p = _postings_of(model)
    total, spans = _summed(p, question)
    if sum(b - a for a, b in spans) * 8 < len(total):  # few postings: their passages, not a scan of all
        found = _best_posted([p.indices[a:b] for a, b in spans], total, n, allowed)
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
    """The statistics of a built or loaded BM25 model (`Postings` or bm25s's)."""
    p = _postings_of(model)
    return TermStats(p.n, p.vocab, p.indptr)
