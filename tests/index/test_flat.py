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
    assert best[i] == pytest.approx(1.0, abs=0.01)  # that sentence is in passage i (int8-stored vectors)
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
    return {p.relative_to(toy_index).as_posix(): p.read_bytes() for p in toy_index.rglob("*") if p.is_file()}


def decode(toy_index, manifest=None, **changed):
    files = {**saved_bytes(toy_index), **{getattr(local, name): data for name, data in changed.items()}}
    return LocalIndex.decode(toy_index, manifest or local.read_manifest(toy_index), files)


def test_decode_gives_what_load_gives(toy_index, index):
    made = decode(toy_index)
    assert made.passages == index.passages and made.manifest == index.manifest
    np.testing.assert_array_equal(made.vectors(), index.vectors())
    np.testing.assert_array_equal(made.sentence_vectors.matrix, index.sentence_vectors.matrix)
    np.testing.assert_array_equal(made.lexical_scores("cats purr"), index.lexical_scores("cats purr"))


def test_decode_refuses_texts_that_do_not_hold_the_passages(toy_index):
    files = saved_bytes(toy_index)
    changed = files[local.TEXTS].replace(b'"text": "', b'"text": "X', 1)  # every span of that document moves
    with pytest.raises(IndexStateError, match="do not match the documents' texts"):
        decode(toy_index, TEXTS=changed, TEXT_OFFSETS=npy(text_offsets(changed)))
    with pytest.raises(IndexStateError, match="could not be read"):
        decode(toy_index, TEXTS=b"")
    with pytest.raises(IndexStateError, match="do not match the documents' texts"):  # same length, not JSON
        decode(toy_index, TEXTS=b"not json\n" + files[local.TEXTS][9:])


def npy(array) -> bytes:
    import io

    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def text_offsets(data: bytes) -> np.ndarray:
    lines = data.split(b"\n")[:-1]
    return np.concatenate([[0], np.cumsum([len(line) + 1 for line in lines])]).astype(np.int64)


def test_decode_names_what_does_not_match(toy_index):
    files = saved_bytes(toy_index)
    table = np.load(toy_index / local.PASSAGE_TABLE)
    with pytest.raises(IndexStateError, match=r"inconsistent: \d+ passages, \d+ vectors"):
        decode(toy_index, PASSAGE_TABLE=npy(table[1:]))
    with pytest.raises(IndexStateError, match="dimension 64, manifest says 32"):
        decode(toy_index, replace(local.read_manifest(toy_index), dim=32))
    with pytest.raises(IndexStateError, match="sentence vectors do not match"):
        decode(toy_index, SENTENCE_ROWS=npy(np.load(toy_index / local.SENTENCE_ROWS)[1:]))
    with pytest.raises(IndexStateError, match="could not be read"):
        decode(toy_index, SENTENCES=files[local.SENTENCE_ROWS])  # 1-d: not sentence vectors
    with pytest.raises(IndexStateError, match="could not be read") as info:
        decode(toy_index, DENSE=b"garbage")
    assert "\n" not in str(info.value)
    with pytest.raises(IndexStateError, match="lists no passage_table.npy"):
        LocalIndex.decode(toy_index, local.read_manifest(toy_index),
                          {k: v for k, v in files.items() if k != local.PASSAGE_TABLE})


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
