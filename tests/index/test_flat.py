"""rag.index.flat.LocalIndex: the `Index` protocol over an index loaded in memory (dense search with
and without a filter, best-sentence similarities, BM25 scores, term statistics)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import texts_for
from rag.errors import IndexStateError
from rag.index import local
from rag.index.flat import LocalIndex
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


# ---- LocalIndex.decode: an index from its saved files' bytes, checked against each other and the manifest ----

def saved_bytes(toy_index):
    files = {p.relative_to(toy_index).as_posix(): p.read_bytes() for p in toy_index.rglob("*") if p.is_file()}
    bm25 = {name.split("/", 1)[1]: data for name, data in files.items() if name.startswith("bm25/")}
    return files, bm25


def decode(toy_index, manifest=None, **changed):
    files, bm25 = saved_bytes(toy_index)
    parts = {"passages": files[local.PASSAGES], "dense": files[local.DENSE], "bm25": bm25,
             "sentences": files[local.SENTENCES], "sentence_rows": files[local.SENTENCE_ROWS],
             "texts": files[local.TEXTS], **changed}
    return LocalIndex.decode(toy_index, manifest or local.read_manifest(toy_index), **parts)


def test_decode_gives_what_load_gives(toy_index, index):
    made = decode(toy_index)
    assert made.passages == index.passages and made.manifest == index.manifest
    np.testing.assert_array_equal(made.vectors(), index.vectors())
    np.testing.assert_array_equal(made.sentences, index.sentences)
    np.testing.assert_array_equal(made.lexical_scores("cats purr"), index.lexical_scores("cats purr"))


def test_decode_refuses_texts_that_do_not_hold_the_passages(toy_index):
    files, _ = saved_bytes(toy_index)
    first = files[local.TEXTS].split(b"\n", 1)[0]
    with pytest.raises(IndexStateError, match="do not match the documents' texts"):
        decode(toy_index, texts=files[local.TEXTS].replace(first, first.replace(b"a", b"b")))
    with pytest.raises(IndexStateError, match="do not match the documents' texts"):
        decode(toy_index, texts=b"")
    with pytest.raises(IndexStateError, match="could not be read"):
        decode(toy_index, texts=b"not json\n")


def test_decode_names_what_does_not_match(toy_index):
    files, _ = saved_bytes(toy_index)
    one_less = b"".join(files[local.PASSAGES].splitlines(keepends=True)[1:])
    with pytest.raises(IndexStateError, match=r"inconsistent: \d+ passages, \d+ vectors"):
        decode(toy_index, passages=one_less)
    with pytest.raises(IndexStateError, match="dimension 64, manifest says 32"):
        decode(toy_index, replace(local.read_manifest(toy_index), dim=32))
    with pytest.raises(IndexStateError, match="sentence vectors do not match"):
        decode(toy_index, sentences=files[local.SENTENCE_ROWS])
    with pytest.raises(IndexStateError, match="could not be read") as info:
        decode(toy_index, dense=b"garbage")
    assert "\n" not in str(info.value)


def test_texts_with_unicode_line_separators_round_trip(tmp_path, fake_embedder):
    """passages.jsonl is split on "\\n" only: JSON leaves U+2028, U+2029 and U+0085 unescaped in a text."""
    from rag.index.store import Manifest
    from rag.types import Passage

    texts = ["First\u2028line and\u2029more.", "Next\x85line.", "Plain text here."]
    passages = [Passage(doc="a.txt", start=i * 40, end=i * 40 + len(t), text=t, heading=(), title="", year=None,
                        kind="paragraph", line=i + 1) for i, t in enumerate(texts)]
    sentences = fake_embedder.encode([p.text[s:e] for p in passages for s, e in split_sentences(p.text)])
    manifest = Manifest(model="fake-hash", dim=64, chunk_size=1000, chunk_overlap=150, docs="d")
    local.save(tmp_path / "index", manifest, passages, fake_embedder.encode(texts), sentences, texts_for(passages))
    assert [p.text for p in local.load(tmp_path / "index").passages] == texts
