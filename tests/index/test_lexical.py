"""rag.index.lexical: tokenising (stop words, stemming), BM25 scores, and the term statistics the
answerer weighs question terms with."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag.index import lexical

TEXTS = ["Cats purr and chase mice.", "Dogs bark at cats.", "Fish swim in the pond."]


def test_tokenize_drops_stop_words_and_stems():
    assert lexical.tokenize(["The cats and the dogs chasing mice"]) == [["cat", "dog", "chase", "mice"]]
    assert lexical.stem("the") is None and lexical.stem("running") == "run"


def test_scores_rank_the_matching_passage_first():
    model = lexical.build(TEXTS)
    scores = lexical.scores(model, "cats purr mice")
    assert scores.shape == (3,) and int(np.argmax(scores)) == 0
    assert scores[2] == 0.0  # no shared term
    assert not lexical.scores(model, "the and of").any()  # stop words only: zeros, no error


def test_term_stats_count_passages_per_term():
    stats = lexical.term_stats(lexical.build(TEXTS))
    assert stats.n == 3
    assert (stats.df("cat"), stats.df("fish"), stats.df("unicorn")) == (2, 1, 0)
    assert set(stats.vocabulary) >= {"cat", "purr", "dog", "fish", "pond"}


@pytest.mark.parametrize("term, df", [("cat", 2), ("fish", 1), ("unicorn", 0)])
def test_idf_is_bm25s_smoothed_form(term, df):
    stats = lexical.term_stats(lexical.build(TEXTS))
    assert stats.idf(term) == pytest.approx(math.log(1 + (3 - df + 0.5) / (df + 0.5)))
    assert stats.idf("unicorn") > stats.idf("fish") > stats.idf("cat")  # rarer weighs more
