"""BM25 over passage texts with bm25s: tokenising (English stop words, Snowball stemming), indexing,
scoring one query against every passage, and the term statistics (document frequencies, vocabulary)
that the answerer weighs question terms with. Saved as bm25s's own `.npy`/`.json` files (no pickle).
The only module that knows bm25s's internals.

Does not fuse with dense scores or filter; `rag.search` does that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np


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
    import bm25s

    model = bm25s.BM25()
    model.index(tokenize(texts), show_progress=False)
    return model


def save(model, folder: Path) -> None:
    model.save(str(folder), show_progress=False)


def load(folder: Path):
    import bm25s

    return bm25s.BM25.load(str(folder), show_progress=False)


def scores(model, question: str) -> np.ndarray:
    """BM25 score of every indexed passage for `question` (zeros when no query term is known)."""
    tokens = tokenize([question])[0]
    if not tokens:
        return np.zeros(model.scores["num_docs"], dtype=np.float32)
    return np.asarray(model.get_scores(tokens), dtype=np.float32)


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
