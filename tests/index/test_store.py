"""rag.index.store and rag.index.factory: what every store records (fingerprints, staleness) and how a
location becomes a store."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from rag.errors import IndexStateError
from rag.index.factory import open_store
from rag.index.local import LocalStore
from rag.index.store import (
    UNREADABLE,
    Manifest,
    bytes_fingerprint,
    file_fingerprint,
    readable_fingerprint,
    stale_files,
)
from rag.settings import MAX_FILE_BYTES


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


# ---- files the build skipped: unchanged while their fingerprint matches ----

def with_skipped(docs, name: str, data: bytes, reason: str = "not valid UTF-8") -> Manifest:
    """`manifest_of(docs)` after writing `name`, recorded as skipped (not among the files indexed)."""
    (docs / name).write_bytes(data)
    manifest = manifest_of(docs)
    skipped = {name: {**manifest.files.pop(name), "reason": reason}}
    return replace(manifest, skipped=skipped)


def test_an_unchanged_skipped_file_is_not_stale(toy_docs):
    manifest = with_skipped(toy_docs, "latin1.txt", "Caf\xe9\n".encode("latin-1"))
    assert "latin1.txt" not in manifest.files and stale_files(manifest) == []


@pytest.mark.parametrize("change", ["edit", "same size", "delete"])
def test_a_changed_or_removed_skipped_file_is_stale(toy_docs, change):
    manifest = with_skipped(toy_docs, "latin1.txt", "Caf\xe9\n".encode("latin-1"))
    path = toy_docs / "latin1.txt"
    if change == "edit":
        path.write_bytes("Caf\xe9 noir\n".encode("latin-1"))
    elif change == "same size":
        path.write_bytes("Caf\xe8\n".encode("latin-1"))  # same bytes count: only the hash tells
    else:
        path.unlink()
    assert stale_files(manifest) == ["latin1.txt"]


def test_a_skipped_file_that_could_not_be_read_is_unchanged_while_it_cannot(toy_docs, monkeypatch):
    import rag.index.store

    (toy_docs / "locked.txt").write_text("Locked\n\nSecret.\n", encoding="utf-8")
    manifest = replace(manifest_of(toy_docs), skipped={"locked.txt": {**UNREADABLE, "reason": "could not be read"}})
    manifest.files.pop("locked.txt")
    real = rag.index.store.file_fingerprint

    def refuse(path):
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(rag.index.store, "file_fingerprint", refuse)
    assert stale_files(manifest) == []
    monkeypatch.setattr(rag.index.store, "file_fingerprint", real)  # readable again: changed
    assert stale_files(manifest) == ["locked.txt"]


def test_fingerprints_of_a_file_and_of_its_bytes_agree(tmp_path):
    data = bytes(range(256)) * 9000  # over the 1 MiB a read takes
    (tmp_path / "big.txt").write_bytes(data)
    assert file_fingerprint(tmp_path / "big.txt") == bytes_fingerprint(data) == {
        "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert readable_fingerprint(tmp_path / "gone.txt") == UNREADABLE


def test_old_manifests_without_skipped_files_still_load(toy_index):
    path = toy_index / "manifest.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["skipped"] == {} and raw["max_file_bytes"] == MAX_FILE_BYTES
    del raw["skipped"], raw["max_file_bytes"]
    path.write_text(json.dumps(raw), encoding="utf-8")
    manifest = open_store(toy_index).load().manifest
    assert manifest.skipped == {} and manifest.max_file_bytes is None and stale_files(manifest) == []
