"""rag.index.store and rag.index.factory: what every store records (fingerprints, staleness) and how a
location becomes a store."""

from __future__ import annotations

import pytest

from rag.errors import IndexStateError
from rag.index.factory import open_store
from rag.index.local import LocalStore
from rag.index.store import Manifest, file_fingerprint, stale_files


def manifest_of(docs) -> Manifest:
    files = {p.relative_to(docs).as_posix(): file_fingerprint(p) for p in sorted(docs.rglob("*.txt"))}
    files.update({p.relative_to(docs).as_posix(): file_fingerprint(p) for p in sorted(docs.rglob("*.md"))})
    return Manifest(model="m", dim=4, chunk_size=1000, chunk_overlap=320, docs=str(docs), files=files)


def test_file_fingerprint(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"abc")
    assert file_fingerprint(path) == {
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "bytes": 3}


def test_stale_files_names_changed_added_and_removed(toy_docs):
    manifest = manifest_of(toy_docs)
    assert stale_files(manifest) == []
    (toy_docs / "cat.txt").write_text("Cats\n\nNow they sleep all day.\n", encoding="utf-8")
    (toy_docs / "new.txt").write_text("New\n\nA new file.\n", encoding="utf-8")
    (toy_docs / "dog.txt").unlink()
    assert stale_files(manifest) == ["cat.txt", "dog.txt", "new.txt"]


def test_stale_files_of_a_missing_folder_is_nothing(tmp_path):
    assert stale_files(Manifest(model="m", dim=4, chunk_size=1000, chunk_overlap=320, docs=str(tmp_path / "gone"))) == []


def test_open_store_gives_the_local_directory(tmp_path):
    store = open_store(tmp_path / "index")
    assert isinstance(store, LocalStore) and store.location == str(tmp_path / "index")
    assert store.lock_path == tmp_path / ".index.lock"
    assert not store.exists()
    with pytest.raises(IndexStateError, match="no index at"):
        store.read_manifest()


def test_a_store_reads_the_manifest_without_loading(toy_index):
    store = open_store(toy_index)
    assert store.exists() and store.read_manifest().model == "fake-hash"
    assert len(store.load().passages) == store.read_manifest().passages
