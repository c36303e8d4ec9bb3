"""rag.index.flat.LocalIndex: the `Index` protocol over an index loaded in memory (dense search with
and without a filter, best-sentence similarities, BM25 scores, term statistics)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.index import local
from rag.ingest.sentences import split_sentences


@pytest.fixture
def index(toy_index):
    return local.load(toy_index)


def test_dense_search_finds_a_passage_by_its_own_vector(index):
    vectors = index.vectors()
    for i in (0, len(index.passages) - 1):
        (top, score), *_ = index.dense_search(vectors[i], 3, None)
        assert top == i and score == pytest.approx(1.0, abs=1e-5)


def test_dense_search_keeps_to_the_allowed_passages(index):
    allowed = np.zeros(len(index.passages), dtype=bool)
    allowed[[1, 3]] = True
    hits = index.dense_search(index.vectors()[0], 10, allowed)
    assert sorted(i for i, _ in hits) == [1, 3]


def test_sentence_scores_take_each_passage_best_sentence(index, fake_embedder):
    i = next(j for j, p in enumerate(index.passages) if p.doc == "dog.txt")
    p = index.passages[i]
    s, e = split_sentences(p.text)[-1]
    best = index.sentence_scores(fake_embedder.encode([p.text[s:e]])[0])
    assert best.shape == (len(index.passages),)
    assert best[i] == pytest.approx(1.0, abs=1e-5)  # that sentence is in passage i
    rows = index.passage_sentences(i)
    assert rows.shape == (len(split_sentences(p.text)), index.manifest.dim)


def test_lexical_scores_and_term_stats(index):
    scores = index.lexical_scores("cats purr")
    assert scores.shape == (len(index.passages),)
    assert index.passages[int(np.argmax(scores))].doc == "cat.txt"
    stats = index.term_stats()
    assert stats.n == len(index.passages) and stats.df("cat") >= 1
