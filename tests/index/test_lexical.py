"""rag.index.lexical: tokenising (stop words, stemming), BM25 scores, and the term statistics the
answerer weighs question terms with."""

from __future__ import annotations

import json
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


# ---- the vocabulary is numbered in sorted order (same files whatever PYTHONHASHSEED), scores unchanged ----

def seed_texts() -> list[str]:
    """Every passage context of the seeds: a real vocabulary of a few thousand terms."""
    from conftest import SEEDS
    from rag.ingest.chunk import chunk_document
    from rag.ingest.load import list_files, parse, read_text

    return [p.context() for path in list_files(SEEDS)
            for p in chunk_document(parse(path.name, read_text(path)))]


def queries() -> list[str]:
    from conftest import ROOT

    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "qa.jsonl").read_text("utf-8").splitlines()]
    return questions + ["the and of", "unicorn zebra", "Ukraine Ukraine Ukraine support", "ASEAN 2021 summit", ""]


def test_vocabulary_is_numbered_in_sorted_order():
    model = lexical.build(TEXTS)
    terms = [t for t in model.vocab_dict if t]
    assert terms == sorted(terms) and list(model.vocab_dict.values()) == list(range(len(terms) + 1))
    assert list(model.vocab_dict)[-1] == ""  # bm25s's empty-query token, last, as bm25s adds it


def test_scores_are_those_of_bm25s_own_numbering():
    """The same score for every passage and query as a bm25s model built from the same tokens by bm25s itself
    (which numbers the vocabulary in set order): renumbering the columns changes no score, not even a bit."""
    import bm25s

    texts = seed_texts()
    ours = lexical.build(texts)
    theirs = bm25s.BM25()
    theirs.index(lexical.tokenize(texts), show_progress=False)
    assert set(ours.vocab_dict) == set(theirs.vocab_dict) and ours.scores["num_docs"] == theirs.scores["num_docs"]
    for question in queries():
        tokens = lexical.tokenize([question])[0]
        expected = (np.asarray(theirs.get_scores(tokens), dtype=np.float32) if tokens
                    else np.zeros(len(texts), np.float32))
        np.testing.assert_array_equal(lexical.scores(ours, question), expected, err_msg=question)
    mine, bm25s_own = lexical.term_stats(ours), lexical.term_stats(theirs)
    assert all(mine.df(t) == bm25s_own.df(t) for t in bm25s_own.vocabulary if t)


def test_same_texts_same_files(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        lexical.save(lexical.build(TEXTS[::-1] + TEXTS), tmp_path / name)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files and [(tmp_path / "a" / f).read_bytes() for f in files] == [(tmp_path / "b" / f).read_bytes() for f in files]
    assert json.loads((tmp_path / "a" / "vocab.index.json").read_text("utf-8")) == lexical.build(TEXTS).vocab_dict


def test_from_files_is_what_load_reads(tmp_path):
    lexical.save(lexical.build(seed_texts()), tmp_path)
    loaded = lexical.postings(lexical.load(tmp_path))
    made = lexical.from_files({p.name: p.read_bytes() for p in tmp_path.iterdir()})
    assert isinstance(made, lexical.Postings) and made.n == loaded.n
    assert made.vocab == loaded.vocab and list(made.vocab) == list(loaded.vocab)
    for key in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(made, key), getattr(loaded, key))
    for question in queries():
        np.testing.assert_array_equal(lexical.scores(made, question), lexical.scores(loaded, question))


def test_tokenize_is_bm25s_tokenize():
    """Questions are tokenised without bm25s, exactly as bm25s tokenised the passages of every index."""
    import bm25s
    from bm25s.stopwords import STOPWORDS_EN

    assert lexical.STOPWORDS == frozenset(STOPWORDS_EN)
    texts = seed_texts() + queries() + ["Naïve café's co-operation, 3D printers & e-mail_addresses: ÉTÉ 2021!",
                                        "a I x 1 22 __ _a b_ Ünïcödé ǅ ﬁnance", "", "   ", "THE The the"]
    theirs = bm25s.tokenize(texts, lower=True, stopwords="en", stemmer=lexical._stemmer(), return_ids=False,
                            show_progress=False)
    assert lexical.tokenize(texts) == [list(t) for t in theirs]


def test_reading_an_index_and_scoring_questions_imports_no_bm25s(tmp_path):
    import subprocess
    import sys

    lexical.save(lexical.build(TEXTS), tmp_path)
    code = (f"import sys, pathlib; from rag.index import lexical; folder = pathlib.Path({str(tmp_path)!r}); "
            "p = lexical.from_files({f.name: f.read_bytes() for f in folder.iterdir()}); "
            "print(lexical.search(p, 'cats purr', 2), lexical.stem('cats'), 'bm25s' in sys.modules, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split()[-3:] == ["cat", "False", "False"] and out.stdout.startswith("[(0, ")


def test_a_bm25_method_that_scores_absent_terms_is_refused(tmp_path):
    lexical.save(lexical.build(TEXTS), tmp_path)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    params = json.loads(files["params.index.json"])
    files["params.index.json"] = json.dumps({**params, "method": "bm25l"}).encode()
    with pytest.raises(ValueError, match="BM25 method 'bm25l' is not read here"):
        lexical.from_files(files)


def test_passages_of_stop_words_only_give_zero_scores(tmp_path):
    """bm25s fails on an empty vocabulary; the model of such passages scores every query 0."""
    model = lexical.build(["The and of.", "To be or not to be."])
    lexical.save(model, tmp_path)
    made = lexical.from_files({p.name: p.read_bytes() for p in tmp_path.iterdir()})
    for m in (model, made):
        np.testing.assert_array_equal(lexical.scores(m, "cats purr"), np.zeros(2, np.float32))
        assert lexical.term_stats(m).df("cat") == 0 and lexical.term_stats(m).n == 2


@pytest.mark.parametrize("seed", range(20))
def test_the_best_posted_passages_include_the_top_n_ties_too(seed):
    """`_best_posted` keeps every passage of the postings that could be in the top n, ties included."""
    rng = np.random.default_rng(seed)
    total = np.zeros(300, dtype=np.float32)
    postings = [np.unique(rng.integers(0, 300, size=rng.integers(1, 80))) for _ in range(rng.integers(1, 5))]
    for p in postings:
        total[p] += rng.choice([0.5, 1.0, 1.5], size=len(p)).astype(np.float32)  # many ties
    allowed = rng.random(300) < 0.7 if seed % 2 else None
    n = int(rng.integers(1, 30))
    found = lexical._best_posted(postings, total, n, allowed)
    every = np.unique(np.concatenate(postings))
    if allowed is not None:
        every = every[allowed[every]]
    assert set(found) <= set(every)
    top, expected = found[lexical.best(total[found], n)], every[lexical.best(total[every], n)]
    assert total[top].tolist() == total[expected].tolist()  # which of those tied with the last make it is arbitrary
    last = total[expected[-1]]
    assert {i for i in top if total[i] > last} == {i for i in expected if total[i] > last}
    assert {i for i in every if total[i] >= last} <= set(found)
