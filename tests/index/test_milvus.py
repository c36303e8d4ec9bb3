"""rag.index.milvus: the index in Milvus (a Milvus Lite server in its own process, and a Milvus Lite
file) gives the same passages, vectors, texts and search results as the local index, updates
incrementally, survives an interrupted save, refuses what is not its own, and fails in one line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import rag.index.milvus.index
import rag.index.milvus.schema
from conftest import ROOT, FakeEmbedder, write_files
from milvus_server import free_port, milvus_server
from rag.errors import IndexStateError, RagError
from rag.index.build import build_index
from rag.index.factory import open_store
from rag.index.milvus import MilvusStore
from rag.index.milvus.client import parse
from rag.search.retriever import Retriever

QUESTIONS = ["cats purr", "revenue growth exports", "bird nests", "what do goldfish eat", "annual report 2022"]
FILTERS = [{}, {"year": 2021}, {"year": 2022}, {"doc": "cat.txt"}, {"doc": "report_2021.txt", "year": 2021}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with milvus_server(tmp_path_factory.mktemp("milvus") / "data") as running:
        yield running


@pytest.fixture
def collection(request) -> str:
    return "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60].strip("_")


def assert_same(local: Retriever, other: Retriever) -> None:
    """Same passages, vectors, sentence vectors, texts, term statistics and search results."""
    a, b = local.index, other.index
    assert tuple(b.passages) == tuple(a.passages) and list(b.documents()) == list(a.documents())
    for x, y in zip(a.passage_columns(), b.passage_columns()):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(b.vectors(), a.vectors())
    for i in range(len(a.passages)):
        np.testing.assert_array_equal(b.passage_sentences(i), a.passage_sentences(i))
    assert all(b.document_text(d) == a.document_text(d) for d in a.documents())
    sa, sb = a.term_stats(), b.term_stats()
    assert (sb.n, sb.ids) == (sa.n, sa.ids) and np.array_equal(sb.indptr, sa.indptr)
    assert b.manifest.files == a.manifest.files and (b.manifest.model, b.manifest.dim) == (a.manifest.model, a.manifest.dim)
    for q in QUESTIONS:
        np.testing.assert_allclose(b.lexical_scores(q), a.lexical_scores(q), rtol=1e-5)
        vector = local.embed_query(q)[0]
        np.testing.assert_allclose(b.sentence_scores(vector), a.sentence_scores(vector), atol=1e-6)
        for mode in ("dense", "bm25", "hybrid"):
            for f in FILTERS:
                got = [(p.id, p.score) for p in other.search(q, k=5, mode=mode, **f)]
                want = [(p.id, p.score) for p in local.search(q, k=5, mode=mode, **f)]
                assert [i for i, _ in got] == [i for i, _ in want], (q, mode, f)
                np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("uri, address, name", [
    ("milvus://127.0.0.1:19530/docs", "http://127.0.0.1:19530", "docs"),
    ("milvus://milvus.example.org:443/my_rag/", "http://milvus.example.org:443", "my_rag"),
    ("milvus:index.db", None, "rag"),
    ("milvus:/tmp/x/index.db/seeds", "/tmp/x/index.db", "seeds"),
])
def test_uris(uri, address, name):
    where = parse(uri)
    assert (where.collection, where.uri, where.local) == (name, uri, not uri.startswith("milvus://"))
    assert where.address == address if address else where.address.endswith("index.db")


@pytest.mark.parametrize("uri", ["milvus:", "milvus://host/docs", "milvus://host:port/docs", "milvus://h:99999/x",
                                 "milvus://h:1/", "milvus://h:1/a-b", "milvus://h:1/a__g1", "milvus:index",
                                 "milvus:/.db", "milvus://h:1/a/b"])
def test_malformed_uri_is_one_line(uri):
    with pytest.raises(RagError, match="malformed Milvus URI") as caught:
        open_store(uri)
    assert uri in str(caught.value) and "\n" not in str(caught.value)


def test_lock_file_per_collection_on_this_machine(tmp_path):
    a, b = MilvusStore("milvus://127.0.0.1:1/a"), MilvusStore("milvus://127.0.0.1:1/b")
    assert a.lock_path == MilvusStore("milvus://127.0.0.1:1/a").lock_path != b.lock_path
    assert a.lock_path.parent.name == "locks"


@pytest.mark.parametrize("held", [True, False], ids=["sentences-held", "sentences-searched-in-milvus"])
def test_same_as_local(server, toy_docs, tmp_path, collection, held, monkeypatch):
    if not held:
        monkeypatch.setattr(rag.index.milvus.index, "HELD_SENTENCES", 0)
    embedder = FakeEmbedder()
    build_index(toy_docs, tmp_path / "index", embedder=embedder)
    summary = build_index(toy_docs, store=server.uri(collection), embedder=embedder)
    assert summary.passages == summary.embedded > 0 and summary.index_dir == server.uri(collection)
    assert_same(Retriever.load(tmp_path / "index", embedder=embedder),
                Retriever.load(store=server.uri(collection), embedder=embedder))


def test_incremental_rebuild(server, toy_docs, tmp_path, collection):
    uri = server.uri(collection)
    build_index(toy_docs, store=uri, embedder=FakeEmbedder())
    build_index(toy_docs, tmp_path / "index", embedder=FakeEmbedder())
    first = Retriever.load(store=uri, embedder=FakeEmbedder())  # a reader of the first generation
    again = FakeEmbedder()
    unchanged = build_index(toy_docs, store=uri, embedder=again)
    assert not unchanged.wrote and again.texts_embedded == 0
    (toy_docs / "cat.txt").write_text("The Cat\n\nCats nap in warm sunny windows all afternoon.\n", encoding="utf-8")
    (toy_docs / "dog.txt").unlink()
    write_files(toy_docs, {"owl.txt": "The Owl\n\nOwls hoot softly in the dark forest.\n"})
    local, milvus = FakeEmbedder(), FakeEmbedder()
    expected = build_index(toy_docs, tmp_path / "index", embedder=local)
    summary = build_index(toy_docs, store=uri, embedder=milvus)
    assert (summary.added, summary.changed, summary.removed) == (1, 1, 1) == (expected.added, expected.changed, expected.removed)
    assert sorted(milvus.texts) == sorted(local.texts) and milvus.texts  # only the changed and new files' texts
    assert not any("Dogs" in t or "Birds" in t for t in milvus.texts)
    retriever = Retriever.load(store=uri, embedder=FakeEmbedder())
    assert_same(Retriever.load(tmp_path / "index", embedder=FakeEmbedder()), retriever)
    assert "dog.txt" not in retriever.docs and "owl.txt" in retriever.docs
    assert not any(p.doc == "dog.txt" for p in retriever.passages)
    assert retriever.search("owls hoot", k=1)[0].doc == "owl.txt"
    names = lambda: [n for n in MilvusStore(uri).client.list_collections() if n.startswith(collection + "__")]
    assert len(names()) == 6  # this generation, and the one it replaced, kept for readers that still hold it
    assert first.search("cats purr", k=1)[0].doc == "cat.txt"  # such a reader keeps answering
    write_files(toy_docs, {"hen.txt": "The Hen\n\nHens lay eggs in the straw.\n"})
    build_index(toy_docs, store=uri, embedder=FakeEmbedder())
    assert len(names()) == 6  # the first generation is gone now, the second kept
    assert Retriever.load(store=uri, embedder=FakeEmbedder()).search("hens lay eggs", k=1)[0].doc == "hen.txt"


def test_interrupted_save_leaves_previous_generation(server, toy_docs, collection, monkeypatch):
    uri = server.uri(collection)
    build_index(toy_docs, store=uri, embedder=FakeEmbedder())
    before = Retriever.load(store=uri, embedder=FakeEmbedder()).passages
    calls = []

    def dies(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:  # passages written, then the build dies
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = rag.index.milvus.schema.insert
    monkeypatch.setattr(rag.index.milvus.schema, "insert", dies)
    (toy_docs / "cat.txt").write_text("The Cat\n\nCats nap all afternoon.\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        build_index(toy_docs, store=uri, embedder=FakeEmbedder())
    monkeypatch.setattr(rag.index.milvus.schema, "insert", real)
    store = MilvusStore(uri)
    assert len([n for n in store.client.list_collections() if n.startswith(collection + "__")]) > 3  # leftovers
    old = Retriever.load(store=uri, embedder=FakeEmbedder(), check_sources=False)
    assert old.passages == before and old.search("cats purr", k=1)[0].doc == "cat.txt"
    summary = build_index(toy_docs, store=uri, embedder=FakeEmbedder())
    assert summary.changed == 1  # the leftovers dropped; the new generation and the one it replaced kept
    assert len([n for n in store.client.list_collections() if n.startswith(collection + "__")]) == 6
    assert "nap" in Retriever.load(store=uri, embedder=FakeEmbedder()).search("cats", k=1)[0].text


def test_mismatches_refused_in_one_line(server, toy_docs, collection):
    uri = server.uri(collection)
    build_index(toy_docs, store=uri, embedder=FakeEmbedder())
    with pytest.raises(IndexStateError, match="dimension 64") as caught:
        Retriever.load(store=uri, embedder=FakeEmbedder(dim=32))
    assert "\n" not in str(caught.value)
    rebuilt = build_index(toy_docs, store=uri, embedder=FakeEmbedder("other-model"))
    assert "model changed" in rebuilt.rebuilt_because


def test_foreign_collection_is_not_replaced(server, toy_docs, collection):
    from pymilvus import MilvusClient

    client = MilvusClient(uri=server.address)
    client.create_collection(collection, dimension=8)
    client.insert(collection, [{"id": 1, "vector": [0.1] * 8}])
    for action in (lambda: Retriever.load(store=server.uri(collection)),
                   lambda: build_index(toy_docs, store=server.uri(collection), embedder=FakeEmbedder())):
        with pytest.raises(IndexStateError, match="is not a rag index") as caught:
            action()
        assert "\n" not in str(caught.value)
    assert client.query(collection, filter="id >= 0", output_fields=["id"])[0]["id"] == 1


def test_no_index_yet(server):
    with pytest.raises(IndexStateError, match="no index at"):
        Retriever.load(store=server.uri("t_nothing_here"))


def test_unreachable_server_is_one_quiet_line(toy_docs, capfd):
    uri = f"milvus://127.0.0.1:{free_port()}/docs"
    with pytest.raises(RagError, match="connecting failed") as caught:
        Retriever.load(store=uri)
    assert uri in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(RagError):
        build_index(toy_docs, store=uri, embedder=FakeEmbedder())
    assert capfd.readouterr().err == ""
    done = subprocess.run([sys.executable, "-m", "rag.serve.cli", "search", "cats", "--store", uri],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and done.stderr.startswith("rag: error: Milvus at")


def test_server_killed_mid_session_is_one_line(toy_docs, tmp_path):
    with milvus_server(tmp_path / "data") as own:
        build_index(toy_docs, store=own.uri(), embedder=FakeEmbedder())
        retriever = Retriever.load(store=own.uri(), embedder=FakeEmbedder())
        assert retriever.search("cats purr", k=1)[0].doc == "cat.txt"
        own.kill()
        for mode in ("dense", "bm25", "hybrid"):
            with pytest.raises(RagError, match="failed") as caught:
                retriever.search("dogs bark", k=3, mode=mode)
            assert own.uri() in str(caught.value) and "\n" not in str(caught.value)


def test_milvus_lite_file(toy_docs, tmp_path):
    embedder = FakeEmbedder()
    build_index(toy_docs, tmp_path / "index", embedder=embedder)
    uri = f"milvus:{tmp_path / 'lite.db'}/toy"
    build_index(toy_docs, store=uri, embedder=embedder)
    assert not build_index(toy_docs, store=uri, embedder=embedder).wrote
    assert_same(Retriever.load(tmp_path / "index", embedder=embedder), Retriever.load(store=uri, embedder=embedder))
