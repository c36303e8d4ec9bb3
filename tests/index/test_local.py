"""rag.index.local: the index directory's round trip, checks, and crash-safe swap."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import texts_for
from rag.errors import IndexStateError
from rag.index import lexical
from rag.index import generations
from rag.index import local as store
from rag.index.store import Manifest, file_fingerprint
from rag.ingest.chunk import ChunkSettings, chunk_document
from rag.ingest.load import list_files, parse, read_text
from rag.ingest.sentences import split_sentences


def leftovers(parent: Path, name: str = "index") -> list[str]:
    """Temporary or displaced index directories left next to `parent/name` (not the build lock file, which stays)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}.") and p.name != f".{name}.lock")


def toy_passages(toy_docs):
    docs = [parse(path.relative_to(toy_docs).as_posix(), read_text(path)) for path in list_files(toy_docs)]
    return [p for d in docs for p in chunk_document(d)]


def sentence_vectors(fake, passages):
    return fake.encode([p.text[s:e] for p in passages for s, e in split_sentences(p.text)])


def save_small(index_dir: Path, fake, passages, model: str = "fake-hash"):
    vectors = fake.encode([p.context() for p in passages])
    manifest = Manifest(model=model, dim=fake.dim, chunk_size=1000, chunk_overlap=150, docs="docs",
                        files={"a.txt": {"sha256": "0" * 64, "bytes": 1}})
    return store.save(index_dir, manifest, passages, vectors, sentence_vectors(fake, passages), texts_for(passages)).manifest, vectors


def test_save_load_round_trip(tmp_path, toy_docs, fake_embedder):
    passages = toy_passages(toy_docs)
    written, vectors = save_small(tmp_path / "index", fake_embedder, passages)
    loaded = store.load(tmp_path / "index")
    assert loaded.manifest == written
    assert [replace(p, score=0.0) for p in loaded.passages] == passages
    np.testing.assert_array_equal(loaded.vectors(), vectors)
    assert loaded.dense.ntotal == len(passages) and loaded.dense.d == fake_embedder.dim
    # the BM25 part answers queries like a fresh one
    np.testing.assert_allclose(lexical.scores(loaded.bm25, "cats purr"),
                               lexical.scores(lexical.build([p.context() for p in passages]), "cats purr"))
    assert leftovers(tmp_path) == []


def test_manifest_contents(toy_index, toy_docs):
    raw = json.loads((toy_index / store.MANIFEST).read_text(encoding="utf-8"))
    assert raw["model"] == "fake-hash" and raw["dim"] == 64
    assert (raw["chunk_size"], raw["chunk_overlap"]) == (ChunkSettings().chunk_size, ChunkSettings().chunk_overlap)
    assert raw["format_version"] == store.FORMAT_VERSION
    assert sorted(raw["files"]) == sorted(["cat.txt", "dog.txt", "animals/bird.txt", "fish.md", "report_2021.txt",
                                           "report_2022.txt"])
    assert raw["files"]["cat.txt"] == file_fingerprint(toy_docs / "cat.txt")
    assert raw["files"]["cat.txt"]["bytes"] == len((toy_docs / "cat.txt").read_bytes())
    assert set(raw["versions"]) >= {"faiss-cpu", "sentence-transformers", "bm25s", "langchain-text-splitters"}
    assert raw["versions"]["faiss-cpu"]
    assert {store.PASSAGES, store.DENSE} <= set(raw["checksums"])
    assert any(name.startswith(store.BM25 + "/") for name in raw["checksums"])
    for name, digest in raw["checksums"].items():
        assert store._sha256(toy_index / name) == digest
    assert raw["passages"] == len((toy_index / store.PASSAGES).read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("name", [store.PASSAGES, store.DENSE])
def test_corrupted_file_is_named(toy_index, name):
    path = toy_index / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexStateError, match=name.replace(".", r"\.")) as info:
        store.load(toy_index)
    assert "\n" not in str(info.value)


def test_appended_garbage_is_detected(toy_index):
    with open(toy_index / store.PASSAGES, "a", encoding="utf-8") as f:
        f.write("{not json\n")
    with pytest.raises(IndexStateError, match="passages.jsonl"):
        store.load(toy_index)


def test_missing_file_is_named(toy_index):
    (toy_index / store.DENSE).unlink()
    with pytest.raises(IndexStateError, match="missing dense.faiss"):
        store.load(toy_index)


def test_other_format_version_names_both_versions(toy_index):
    path = toy_index / store.MANIFEST
    raw = json.loads(path.read_text(encoding="utf-8"))
    old = store.FORMAT_VERSION - 1
    raw["format_version"] = old
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(IndexStateError) as info:
        store.load(toy_index)
    message = str(info.value)
    assert f"format version {old}" in message and str(store.FORMAT_VERSION) in message
    assert "rebuild" in message


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"format_version": %d}'])
def test_corrupted_manifest(toy_index, content):
    if "%d" in content:
        content = content % store.FORMAT_VERSION  # right version, missing fields
    (toy_index / store.MANIFEST).write_text(content, encoding="utf-8")
    with pytest.raises(IndexStateError, match="manifest.json"):
        store.load(toy_index)


def test_missing_index_message(tmp_path):
    with pytest.raises(IndexStateError) as info:
        store.load(tmp_path / "nope")
    message = str(info.value)
    assert "no index at" in message and "nope" in message and "rag index" in message


def test_mismatched_vectors_refused(tmp_path, toy_docs, fake_embedder):
    passages = toy_passages(toy_docs)
    manifest = Manifest(model="fake-hash", dim=64, chunk_size=1000, chunk_overlap=150, docs="d")
    with pytest.raises(IndexStateError, match="passages but"):
        store.save(tmp_path / "index", manifest, passages, np.zeros((1, 64), np.float32),
                   sentence_vectors(fake_embedder, passages), texts_for(passages))
    assert not (tmp_path / "index").exists() and leftovers(tmp_path) == []


def test_save_replaces_previous_index(tmp_path, toy_docs, fake_embedder):
    passages = toy_passages(toy_docs)
    save_small(tmp_path / "index", fake_embedder, passages)
    save_small(tmp_path / "index", fake_embedder, passages[:3])
    assert len(store.load(tmp_path / "index").passages) == 3
    assert leftovers(tmp_path) == []


def crash_in(monkeypatch, target, attribute):
    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(target, attribute, boom)


@pytest.mark.parametrize("where", ["faiss.write_index", "lexical.save"])
def test_crash_during_save_keeps_previous_index(tmp_path, toy_docs, fake_embedder, monkeypatch, where):
    import faiss

    passages = toy_passages(toy_docs)
    save_small(tmp_path / "index", fake_embedder, passages)
    before = {p.name: p.read_bytes() for p in (tmp_path / "index").iterdir() if p.is_file()}
    crash_in(monkeypatch, faiss if where.startswith("faiss") else lexical, where.split(".")[1])
    with pytest.raises(OSError, match="simulated"):
        save_small(tmp_path / "index", fake_embedder, passages[:2])
    monkeypatch.undo()
    assert leftovers(tmp_path) == []
    assert {p.name: p.read_bytes() for p in (tmp_path / "index").iterdir() if p.is_file()} == before
    assert len(store.load(tmp_path / "index").passages) == len(passages)


def test_crash_during_swap_is_recovered(tmp_path, toy_docs, fake_embedder, monkeypatch):
    """A crash between moving the old index away and moving the new one in: the old one comes back."""
    passages = toy_passages(toy_docs)
    save_small(tmp_path / "index", fake_embedder, passages)
    real_replace, calls = os.replace, []

    def replace_then_crash(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # moving the new index into place
            raise OSError("power cut (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_crash)
    with pytest.raises(OSError, match="simulated"):
        save_small(tmp_path / "index", fake_embedder, passages[:2])
    monkeypatch.undo()
    assert calls[0][0] == "index" and calls[0][1] == ".index.old"
    assert not (tmp_path / "index").exists()
    assert [n for n in leftovers(tmp_path) if ".tmp-" in n] == []  # the half-written new index is gone
    loaded = store.load(tmp_path / "index")  # _recover puts the previous index back
    assert len(loaded.passages) == len(passages)
    assert (tmp_path / "index").is_dir() and leftovers(tmp_path) == []


def test_recover_index_renamed_away(tmp_path, toy_docs, fake_embedder):
    passages = toy_passages(toy_docs)
    save_small(tmp_path / "index", fake_embedder, passages)
    os.replace(tmp_path / "index", tmp_path / ".index.old")
    manifest = store.read_manifest(tmp_path / "index")
    assert manifest.passages == len(passages)
    assert (tmp_path / "index" / store.MANIFEST).exists()
    assert leftovers(tmp_path) == []
    assert len(store.load(tmp_path / "index").passages) == len(passages)


def test_recover_before_save(tmp_path, toy_docs, fake_embedder):
    """A save after an interrupted swap first restores the old index, then replaces it cleanly."""
    passages = toy_passages(toy_docs)
    save_small(tmp_path / "index", fake_embedder, passages)
    os.replace(tmp_path / "index", tmp_path / ".index.old")
    save_small(tmp_path / "index", fake_embedder, passages[:1])
    assert len(store.load(tmp_path / "index").passages) == 1
    assert leftovers(tmp_path) == []


def test_recover_picks_the_index_the_crash_displaced(tmp_path, toy_docs, fake_embedder, monkeypatch):
    passages = toy_passages(toy_docs)
    # the current index (all passages) ...
    save_small(tmp_path / "index", fake_embedder, passages)
    # ... next to a stale displaced index from an earlier save whose clean-up never ran (1 passage)
    save_small(tmp_path / "stale", fake_embedder, passages[:1])
    os.replace(tmp_path / "stale", tmp_path / ".index.old")
    assert len(store.load(tmp_path / "index").passages) == len(passages)
    # ... is moved away by a save that then crashes before the new one is moved in
    real_replace, calls = os.replace, []

    def replace_then_crash(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("power cut (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_crash)
    with pytest.raises(OSError):
        save_small(tmp_path / "index", fake_embedder, passages[:2])
    monkeypatch.undo()
    assert len(store.load(tmp_path / "index").passages) == len(passages)


def test_a_reader_waits_for_a_build_mid_swap_instead_of_undoing_it(tmp_path, toy_docs, fake_embedder):
    """Between a build's two renames the index directory is missing; a reader must not put the old one back
    (the build's second rename would then fail) but wait for the new one."""
    import threading

    from filelock import FileLock

    passages = toy_passages(toy_docs)
    save_small(tmp_path / "index", fake_embedder, passages)
    save_small(tmp_path / "new", fake_embedder, passages[:1])
    with FileLock(store.lock_path(tmp_path / "index")):  # a build holds the lock ...
        os.replace(tmp_path / "index", tmp_path / ".index.old")  # ... and has moved the old index away
        result = {}
        reader = threading.Thread(target=lambda: result.update(m=store.read_manifest(tmp_path / "index")))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive() and (tmp_path / ".index.old").exists()  # waiting, nothing undone
        os.replace(tmp_path / "new", tmp_path / "index")  # the build's second rename succeeds
        reader.join(5)
    assert result["m"].passages == 1  # the reader sees the new index


def test_a_reader_gives_up_waiting_with_the_usual_message(tmp_path, toy_docs, fake_embedder, monkeypatch):
    from filelock import FileLock

    save_small(tmp_path / "index", fake_embedder, toy_passages(toy_docs))
    monkeypatch.setattr(generations, "SWAP_WAIT", 0.1)
    with FileLock(store.lock_path(tmp_path / "index")):
        os.replace(tmp_path / "index", tmp_path / ".index.old")
        with pytest.raises(IndexStateError, match="no index at"):
            store.read_manifest(tmp_path / "index")
        assert (tmp_path / ".index.old").is_dir()  # left for the build (or a later reader) to settle
    assert len(store.load(tmp_path / "index").passages) == len(toy_passages(toy_docs))  # lock free: recovered
