"""An index built for size, forced on a small corpus with tiny thresholds: the approximate dense index
(HNSW, IVF), passages and texts read lazily, every file memory-mapped; each gives what the small-index
path gives (the same passages, texts, rankings up to the approximation), is byte-identical from one
build to the next, and a corrupted mapped file is refused with one line naming it."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

from conftest import FakeEmbedder, write_files
from rag.errors import IndexStateError
from rag.index import ann, flat, generations, lexical
from rag.index import local as store
from rag.index.build import build_index
from rag.index.records import PassageRecords
from rag.search.rank import top
from rag.search.retriever import Retriever

WORDS = ("harbour ferry canal lock barge quay tide pier crane cargo river bridge tunnel market square tower "
         "castle church garden museum station railway engine signal timber copper wool grain salt fish").split()
QUESTIONS = ["Which ferry crosses the canal?", "copper and timber cargo", "museum garden tower", "grain market",
             "Where is the railway station?", "salt fish wool"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Twenty documents of twelve paragraphs of two or three sentences (240 passages)."""
    rng = random.Random(7)
    files = {}
    for d in range(20):
        paragraphs = [" ".join(" ".join(rng.choices(WORDS, k=rng.randint(6, 12))).capitalize() + "."
                               for _ in range(rng.randint(2, 3))) for _ in range(12)]
        files[f"town{d:02d}.txt"] = f"Town {d} in {1990 + d}\n\n" + "\n\n".join(paragraphs) + "\n"
    return write_files(tmp_path_factory.mktemp("towns") / "docs", files)


def build(corpus, index, monkeypatch, *, ann_threshold=None, approximate="ivf", eager=None, map_bytes=None):
    if ann_threshold is not None:
        monkeypatch.setattr(ann, "ANN_THRESHOLD", ann_threshold)
    real = ann.kind_for
    monkeypatch.setattr(ann, "kind_for", lambda n, threshold=None, approx="ivf": real(n, threshold, approximate))
    if eager is not None:
        monkeypatch.setattr(flat, "EAGER_PASSAGES", eager)
    if map_bytes is not None:
        monkeypatch.setattr(generations, "MAP_BYTES", map_bytes)
    build_index(corpus, index, embedder=FakeEmbedder())
    return store.load(index)


@pytest.fixture(scope="module")
def small(corpus, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        return build(corpus, tmp_path_factory.mktemp("small") / "index", mp)


@pytest.fixture(scope="module")
def big(corpus, tmp_path_factory):
    """The same corpus as an approximate, lazy, memory-mapped index."""
    with pytest.MonkeyPatch.context() as mp:
        return build(corpus, tmp_path_factory.mktemp("big") / "index", mp, ann_threshold=10, eager=10, map_bytes=1)


def test_the_small_index_is_exact_and_in_memory(small):
    assert not small.approximate and isinstance(small.passages, tuple) and small.sentence_vectors.matrix is not None


def test_lazy_passages_and_texts_equal_the_eager_ones(small, big):
    assert big.approximate and isinstance(big.passages, PassageRecords) and big.sentence_vectors.matrix is None
    assert len(big.passages) == len(small.passages) == 240
    assert tuple(big.passages) == small.passages
    assert [big.passages[i] for i in (0, 17, -1)] == [small.passages[i] for i in (0, 17, -1)]
    assert big.passages[3:6] == list(small.passages[3:6])
    with pytest.raises(IndexError):
        big.passages[240]
    for doc in big.documents():
        assert big.document_text(doc) == small.document_text(doc)
    assert big.document_text("nowhere.txt") is None
    for i, p in enumerate(small.passages):
        assert big.position(p.doc, p.start, p.end) == small.position(p.doc, p.start, p.end) == i
    assert big.position(p.doc, p.start, p.end + 1) is None and big.position("nowhere.txt", 0, 1) is None
    np.testing.assert_array_equal(big.passage_columns()[0], small.passage_columns()[0])


def test_mapped_sentence_vectors_score_as_the_decoded_ones(small, big):
    vector = FakeEmbedder().encode(["ferry canal harbour"])[0]
    np.testing.assert_allclose(big.sentence_scores(vector), small.sentence_scores(vector), atol=1e-6)
    for i in (0, 100, 239):
        np.testing.assert_allclose(big.passage_sentences(i), small.passage_sentences(i), atol=1e-7)


def test_the_approximate_index_ranks_as_the_exact_one(small, big):
    fake = FakeEmbedder()
    for q in QUESTIONS:
        v = fake.encode([q])[0]
        exact, near = small.dense_search(v, 10, None), big.dense_search(v, 10, None)
        # 240 vectors: every list is probed, and float16 storage orders near-ties its own way
        np.testing.assert_allclose([s for _, s in near], [s for _, s in exact], atol=1e-3)
        assert len({i for i, _ in near} & {i for i, _ in exact}) >= 8
        assert [i for i, _ in big.sentence_search(v, 10, None)] == [i for i, _ in small.sentence_search(v, 10, None)]
        assert big.lexical_search(q, 10, None) == small.lexical_search(q, 10, None)


def test_a_retriever_over_the_big_index_answers_as_over_the_small_one(small, big):
    """BM25 ranks alike; dense and hybrid alike but for near-ties that float16 vectors order otherwise."""
    fake = FakeEmbedder()
    exact, near = Retriever(small, fake), Retriever(big, fake)
    assert near.docs == exact.docs and near.years == exact.years
    shared = []
    for q in QUESTIONS:
        assert [p.id for p in near.search(q, k=5, mode="bm25")] == [p.id for p in exact.search(q, k=5, mode="bm25")]
        for mode in ("hybrid", "dense"):
            found = [{p.id for p in r.search(q, k=5, mode=mode)} for r in (near, exact)]
            shared.append(len(found[0] & found[1]))
        assert {p.doc for p in near.search(q, k=3, doc="town03.txt")} == {"town03.txt"}
        assert {p.doc for p in near.search(q, k=3, year=1995)} == {"town05.txt"}
    assert sum(shared) >= 0.8 * 5 * len(shared), shared


@pytest.mark.parametrize("approximate", ["hnsw", "ivf"])
def test_approximate_builds_are_byte_identical(corpus, tmp_path, monkeypatch, approximate):
    one = build(corpus, tmp_path / "one", monkeypatch, ann_threshold=10, approximate=approximate)
    two = build(corpus, tmp_path / "two", monkeypatch, ann_threshold=10, approximate=approximate)
    assert ann.kind_of(one.dense) == ann.kind_of(two.dense) == approximate
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert one.dense_search(one.vectors()[5], 1, None)[0][0] == 5


def test_an_incremental_build_of_a_big_index_equals_a_fresh_one(corpus, tmp_path, monkeypatch):
    fresh = build(corpus, tmp_path / "fresh", monkeypatch, ann_threshold=10, eager=10)
    (corpus / "town99.txt").write_text("Town 99\n\nA new ferry and a new canal lock.\n", encoding="utf-8")
    try:
        build_index(corpus, tmp_path / "fresh", embedder=FakeEmbedder())  # adds one file to the big index
        build_index(corpus, tmp_path / "again", embedder=FakeEmbedder())  # the whole corpus at once
    finally:
        (corpus / "town99.txt").unlink()
    assert len(store.load(tmp_path / "fresh").passages) == len(fresh.passages) + 1
    for name in store.read_manifest(tmp_path / "again").checksums:
        assert (tmp_path / "fresh" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


@pytest.mark.parametrize("name", [store.SENTENCES, store.DENSE, store.PASSAGES, f"{store.BM25}/data.csc.index.npy"])
def test_a_corrupted_mapped_file_is_refused_naming_it(big, tmp_path, monkeypatch, name):
    monkeypatch.setattr(generations, "MAP_BYTES", 1)  # every file mapped
    index = shutil.copytree(big.path, tmp_path / "index")
    assert len(store.load(index).passages) == 240
    data = bytearray((index / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (index / name).write_bytes(bytes(data))
    with pytest.raises(IndexStateError, match=f"corrupted: {name} does not match its checksum") as info:
        store.load(index)
    assert "\n" not in str(info.value)


def test_lexical_search_is_the_top_of_the_scores(small):
    """The same scores and passages as the top of every score, but which of the passages tied with the
    last one makes the cut (an arbitrary pick either way)."""
    mask = np.arange(len(small.passages)) % 3 == 0
    for q in QUESTIONS + ["ferry ferry ferry", "the and of", "unknownword"]:
        for allowed in (None, mask):
            expected = top(small.lexical_scores(q), 50, allowed, floor=0.0)
            found = lexical.search(small.bm25, q, 50, allowed)
            assert [s for _, s in found] == [s for _, s in expected]
            last = expected[-1][1] if expected else 0.0
            assert {i for i, s in found if s > last} == {i for i, s in expected if s > last}
            assert small.lexical_search(q, 50, allowed) == expected


def test_the_name_bonus_read_for_the_contenders_only_gives_the_same_top(small, monkeypatch):
    """The retriever reads the names of the passages that could make the top k with the bonus only;
    the ranking is the one every passage's bonus gives."""
    from rag.search.rank import NAME_BONUS

    retriever = Retriever(small, FakeEmbedder())
    read = []
    real_share = retriever._names.share
    monkeypatch.setattr(retriever._names, "share", lambda i, needed, p=None: read.append(i) or real_share(i, needed, p))
    for q in ["Which Ferry crosses the Canal at the Harbour?", "Copper Cargo from the Railway Station",
              "Museum Garden and Castle Tower", "Town 7 Grain Market"]:
        for k in (1, 5, 20):
            read.clear()
            found = retriever.search(q, k=k)
            full = monkeypatch.context()
            with full as m:
                m.setattr(retriever, "_with_names", lambda scored, needed, k: [
                    (i, s + NAME_BONUS * real_share(i, needed)) for i, s in scored])
                assert [(p.id, p.score) for p in retriever.search(q, k=k)] == [(p.id, p.score) for p in found]
            assert read and len(read) < 60, len(read)  # of about 150 fused passages


def test_an_ivf_search_splits_its_probes_between_threads_and_finds_the_same(big, monkeypatch):
    import faiss

    from rag.index import cpu

    assert ann.kind_of(big.dense) == "ivf" and faiss.extract_index_ivf(big.dense).parallel_mode == 1
    fake = FakeEmbedder()
    vectors = fake.encode(QUESTIONS)
    monkeypatch.setattr(cpu, "_threads", None)  # a question may use every core
    both = [big.dense_search(v, 10, None) for v in vectors]
    before = faiss.omp_get_max_threads()
    monkeypatch.setattr(cpu, "_threads", 1)  # the web app: one thread a question
    assert [big.dense_search(v, 10, None) for v in vectors] == both
    assert faiss.omp_get_max_threads() == before  # the calling thread's setting is put back
