"""rag.index.build.build_index: first build, incremental updates, rebuilds and their reasons, determinism,
and concurrent builds of one index directory (the build lock)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

import rag.index.build
from conftest import ROOT, TOY_FILES, FakeEmbedder
from rag.index import local as store
from rag.index.store import file_fingerprint
from rag.index.build import build_index
from rag.ingest.chunk import ChunkSettings, chunk_document
from rag.errors import DocumentError, RagError
from rag.ingest.load import parse


def snapshot(index: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of an index directory: (mtime_ns, content)."""
    return {p.relative_to(index).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(index.rglob("*")) if p.is_file()}


def passages_of(index: Path, doc: str):
    loaded = store.load(index)
    rows = [i for i, p in enumerate(loaded.passages) if p.doc == doc]
    return [loaded.passages[i] for i in rows], loaded.vectors()[rows]


def n_passages(rel: str, text: str) -> int:
    return len(chunk_document(parse(rel, text)))


@pytest.fixture
def no_real_model(monkeypatch):
    """Make loading the real model an error: these builds must use the fake embedder or none at all."""
    def refuse(*args, **kwargs):
        raise AssertionError("the real embedding model was loaded")

    monkeypatch.setattr(rag.index.build, "document_embedder", refuse)


def test_first_build(toy_docs, tmp_path, fake_embedder, no_real_model):
    s = build_index(toy_docs, tmp_path / "index", embedder=fake_embedder)
    expected = sum(n_passages(rel, text) for rel, text in TOY_FILES.items())
    assert (s.files, s.added, s.changed, s.removed, s.unchanged) == (6, 6, 0, 0, 0)
    assert s.passages == s.embedded == expected
    assert s.rebuilt_because == "" and s.warnings == () and s.wrote
    assert fake_embedder.calls == 1
    assert fake_embedder.texts_embedded >= expected  # passage contexts (and possibly their sentences)
    loaded = store.load(tmp_path / "index")
    assert len(loaded.passages) == expected
    assert loaded.manifest.model == "fake-hash" and loaded.manifest.dim == 64
    # passages are stored in (doc, start) order
    assert [(p.doc, p.start) for p in loaded.passages] == sorted((p.doc, p.start) for p in loaded.passages)
    assert "6 files" in str(s) and f"{expected} passages" in str(s)


def test_unchanged_rebuild_embeds_nothing_and_writes_nothing(toy_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    first = build_index(toy_docs, index, embedder=fake_embedder)
    before, calls, texts = snapshot(index), fake_embedder.calls, fake_embedder.texts_embedded
    second = build_index(toy_docs, index, embedder=fake_embedder)
    assert (second.embedded, second.added, second.changed, second.removed) == (0, 0, 0, 0)
    assert second.unchanged == 6 and second.passages == first.passages and not second.wrote
    assert (fake_embedder.calls, fake_embedder.texts_embedded) == (calls, texts)
    assert snapshot(index) == before  # same bytes, same mtimes: nothing rewritten
    assert "nothing changed" in str(second)
    # and with no embedder at all, no model is loaded either (no_real_model would raise)
    third = build_index(toy_docs, index)
    assert third.embedded == 0 and snapshot(index) == before


def test_changed_file_re_embeds_only_its_passages(toy_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    build_index(toy_docs, index, embedder=fake_embedder)
    others_before = {d: passages_of(index, d) for d in ("dog.txt", "fish.md", "animals/bird.txt")}
    new_text = ("The Cat\n\nCats now also climb trees and nap in the sun.\n\n"
                "Kittens play with yarn.\n\nA cat grooms itself with its tongue.\n")
    (toy_docs / "cat.txt").write_text(new_text, encoding="utf-8")
    seen = len(fake_embedder.texts)
    s = build_index(toy_docs, index, embedder=fake_embedder)
    assert (s.added, s.changed, s.removed, s.unchanged) == (0, 1, 0, 5)
    assert s.embedded == n_passages("cat.txt", new_text) == 3
    new_texts = fake_embedder.texts[seen:]
    assert new_texts and all(t.split("\n")[-1] in new_text for t in new_texts)  # only cat.txt was embedded
    cat, cat_vectors = passages_of(index, "cat.txt")
    assert [p.text for p in cat] == ["Cats now also climb trees and nap in the sun.", "Kittens play with yarn.",
                                    "A cat grooms itself with its tongue."]
    np.testing.assert_allclose(cat_vectors, fake_embedder.encode([p.context() for p in cat]), atol=1e-6)
    for d, (ps, vs) in others_before.items():  # kept passages keep their vectors
        ps2, vs2 = passages_of(index, d)
        assert ps2 == ps
        np.testing.assert_array_equal(vs2, vs)
    assert store.load(index).manifest.files["cat.txt"] == file_fingerprint(toy_docs / "cat.txt")


def test_added_and_deleted_files(toy_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    first = build_index(toy_docs, index, embedder=fake_embedder)
    horse = "The Horse\n\nHorses gallop across open fields and eat hay.\n"
    (toy_docs / "animals" / "horse.txt").write_text(horse, encoding="utf-8")
    s = build_index(toy_docs, index, embedder=fake_embedder)
    assert (s.files, s.added, s.changed, s.removed, s.unchanged) == (7, 1, 0, 0, 6)
    assert s.embedded == 1 and s.passages == first.passages + 1
    assert [p.text for p in passages_of(index, "animals/horse.txt")[0]] == [
        "Horses gallop across open fields and eat hay."]

    calls = fake_embedder.calls
    dog_passages = n_passages("dog.txt", TOY_FILES["dog.txt"])
    (toy_docs / "dog.txt").unlink()
    s = build_index(toy_docs, index, embedder=fake_embedder)
    assert (s.files, s.added, s.changed, s.removed, s.unchanged) == (6, 0, 0, 1, 6)
    assert s.embedded == 0 and fake_embedder.calls == calls  # a deletion needs no embedding
    assert s.passages == first.passages + 1 - dog_passages
    loaded = store.load(index)
    assert "dog.txt" not in {p.doc for p in loaded.passages} and "dog.txt" not in loaded.manifest.files
    assert loaded.dense.ntotal == len(loaded.passages) == s.passages


def test_other_model_rebuilds_everything(toy_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    first = build_index(toy_docs, index, embedder=fake_embedder)
    other = FakeEmbedder(name="fake-other")
    s = build_index(toy_docs, index, embedder=other)
    assert "'fake-hash'" in s.rebuilt_because and "'fake-other'" in s.rebuilt_because
    assert "model" in s.rebuilt_because
    assert s.embedded == s.passages == first.passages and other.calls == 1
    assert store.load(index).manifest.model == "fake-other"
    assert "rebuilt:" in str(s)


def test_other_chunk_settings_rebuild(toy_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    first = build_index(toy_docs, index, embedder=fake_embedder)
    s = build_index(toy_docs, index, embedder=fake_embedder, chunk_size=500, chunk_overlap=50)
    assert "chunk settings" in s.rebuilt_because and "500/50" in s.rebuilt_because and f"{ChunkSettings().chunk_size}/{ChunkSettings().chunk_overlap}" in s.rebuilt_because
    assert s.embedded == s.passages == first.passages
    m = store.load(index).manifest
    assert (m.chunk_size, m.chunk_overlap) == (500, 50)


def test_corrupted_index_is_rebuilt_with_reason(toy_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    first = build_index(toy_docs, index, embedder=fake_embedder)
    (index / store.DENSE).write_bytes(b"garbage")
    s = build_index(toy_docs, index, embedder=fake_embedder)
    assert "dense.faiss" in s.rebuilt_because
    assert s.embedded == s.passages == first.passages
    assert store.load(index).dense.ntotal == first.passages


def test_corrupted_index_keeps_the_model_it_was_built_with(toy_docs, tmp_path, monkeypatch):
    made = []

    def factory(name, *args, **kwargs):
        made.append(name)
        return FakeEmbedder(name)

    monkeypatch.setattr(rag.index.build, "document_embedder", factory)
    index = tmp_path / "index"
    build_index(toy_docs, index, embedder=FakeEmbedder("my-model"))
    (index / store.DENSE).write_bytes(b"garbage")
    s = build_index(toy_docs, index)  # no model named: the recorded one, not the default
    assert made == ["my-model"] and "dense.faiss" in s.rebuilt_because
    assert store.load(index).manifest.model == "my-model"


def test_other_format_version_is_rebuilt(toy_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    build_index(toy_docs, index, embedder=fake_embedder)
    path = index / store.MANIFEST
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["format_version"] = store.FORMAT_VERSION - 1
    path.write_text(json.dumps(raw), encoding="utf-8")
    s = build_index(toy_docs, index, embedder=fake_embedder)
    assert "format version" in s.rebuilt_because
    assert store.load(index).manifest.format_version == store.FORMAT_VERSION


def test_builds_are_deterministic(toy_docs, tmp_path, no_real_model):
    a, b = tmp_path / "a" / "index", tmp_path / "b" / "index"
    build_index(toy_docs, a, embedder=FakeEmbedder())
    build_index(toy_docs, b, embedder=FakeEmbedder())
    files_a = {k: v for k, (_, v) in snapshot(a).items()}
    files_b = {k: v for k, (_, v) in snapshot(b).items()}
    assert sorted(files_a) == sorted(files_b)
    for name in (store.PASSAGES, store.DENSE, store.MANIFEST):
        assert files_a[name] == files_b[name], name
    assert files_a == files_b


def test_incremental_build_equals_fresh_build(toy_docs, tmp_path, fake_embedder, no_real_model):
    """Updating an index file by file ends in the same passages and vectors as building it from scratch."""
    index = tmp_path / "index"
    build_index(toy_docs, index, embedder=fake_embedder)
    (toy_docs / "dog.txt").write_text("The Dog\n\nDogs dig holes in the garden.\n", encoding="utf-8")
    (toy_docs / "fish.md").unlink()
    build_index(toy_docs, index, embedder=fake_embedder)
    build_index(toy_docs, tmp_path / "fresh", embedder=FakeEmbedder())
    inc, fresh = store.load(index), store.load(tmp_path / "fresh")
    assert inc.passages == fresh.passages
    np.testing.assert_array_equal(inc.vectors(), fresh.vectors())
    assert (index / store.PASSAGES).read_bytes() == (tmp_path / "fresh" / store.PASSAGES).read_bytes()


def test_progress_is_reported(toy_docs, tmp_path, fake_embedder):
    events = []
    build_index(toy_docs, tmp_path / "index", embedder=fake_embedder, progress=lambda *e: events.append(e))
    assert ("read", 6, 6) in events
    assert {stage for stage, _, _ in events} >= {"read", "embed", "save"}
    assert [e for e in events if e[0] == "read"] == [("read", n, 6) for n in range(1, 7)]


def test_unreadable_file_is_skipped_with_warning(toy_docs, tmp_path, fake_embedder, no_real_model):
    (toy_docs / "broken.txt").write_bytes(b"\x00\x01binary\xff")
    s = build_index(toy_docs, tmp_path / "index", embedder=fake_embedder)
    assert s.files == 6 and len(s.warnings) == 1 and "broken.txt" in s.warnings[0]
    assert "broken.txt" not in store.load(tmp_path / "index").manifest.files


def test_empty_folder(tmp_path, fake_embedder):
    (tmp_path / "docs").mkdir()
    with pytest.raises(DocumentError, match="no files in"):
        build_index(tmp_path / "docs", tmp_path / "index", embedder=fake_embedder)
    assert not (tmp_path / "index").exists()


def test_missing_folder(tmp_path, fake_embedder):
    with pytest.raises(DocumentError, match="does not exist"):
        build_index(tmp_path / "nowhere", tmp_path / "index", embedder=fake_embedder)


def test_folder_with_only_a_binary_file(tmp_path, fake_embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
    with pytest.raises(DocumentError) as info:
        build_index(docs, tmp_path / "index", embedder=fake_embedder)
    assert "photo.txt" in str(info.value)
    assert fake_embedder.calls == 0 and not (tmp_path / "index").exists()


def test_index_dir_is_left_alone_when_build_fails(toy_docs, tmp_path, fake_embedder):
    index = tmp_path / "index"
    build_index(toy_docs, index, embedder=fake_embedder)
    before = snapshot(index)
    shutil.rmtree(toy_docs)
    toy_docs.mkdir()
    with pytest.raises(DocumentError):
        build_index(toy_docs, index, embedder=fake_embedder)
    assert snapshot(index) == before


@pytest.mark.parametrize("kind", ["file", "folder", "documents folder"])
def test_never_replaces_a_file_or_folder_that_is_not_an_index(toy_docs, tmp_path, fake_embedder, kind):
    """A build swaps the whole index directory out and deletes it: `--index notes.txt`, `--index ~/notes`
    or `--index seeds` by mistake must be refused before anything is touched."""
    if kind == "file":
        target = tmp_path / "notes.txt"
        target.write_text("precious", encoding="utf-8")
    elif kind == "folder":
        target = tmp_path / "notes"
        target.mkdir()
        (target / "todo.txt").write_text("precious", encoding="utf-8")
    else:
        target = toy_docs
    before = {p: p.read_bytes() for p in [target, *target.rglob("*")] if p.is_file()}
    with pytest.raises(RagError, match="refusing to replace it"):
        build_index(toy_docs, target, embedder=fake_embedder)
    assert {p: p.read_bytes() for p in [target, *target.rglob("*")] if p.is_file()} == before
    assert fake_embedder.calls == 0
    assert not list(tmp_path.glob(f".{target.name}.old")) and not list(tmp_path.glob(f".{target.name}.tmp-*"))


def test_an_empty_folder_becomes_the_index(toy_docs, tmp_path, fake_embedder):
    (tmp_path / "index").mkdir()
    assert build_index(toy_docs, tmp_path / "index", embedder=fake_embedder).added == 6
    assert store.load(tmp_path / "index").manifest.files


def test_same_model_name_other_dimension_rebuilds(toy_docs, tmp_path, fake_embedder):
    index = tmp_path / "index"
    build_index(toy_docs, index, embedder=fake_embedder)
    (toy_docs / "dog.txt").write_text("The Dog\n\nDogs dig holes.\n", encoding="utf-8")
    s = build_index(toy_docs, index, embedder=FakeEmbedder(dim=32))
    assert "dimension" in s.rebuilt_because
    assert store.load(index).manifest.dim == 32


# ---- two builds of one index directory: the second waits for the first, then has nothing left to do ----

def index_leftovers(index: Path) -> list[str]:
    """Temporary or displaced index directories next to `index` (the lock file is not one)."""
    return sorted(p.name for p in index.parent.iterdir()
                  if p.name.startswith(f".{index.name}.") and p != store.lock_path(index))


class WaitingEmbedder(FakeEmbedder):
    """A fake embedder that does not embed until `other_is_waiting` is set (or 60s pass), so a second
    build is sure to find the first one holding the lock."""

    def __init__(self, other_is_waiting: threading.Event):
        super().__init__()
        self.other_is_waiting = other_is_waiting

    def encode(self, texts):
        self.other_is_waiting.wait(timeout=60)
        return super().encode(texts)


def test_concurrent_builds_in_threads_wait_and_leave_one_index(toy_docs, tmp_path, no_real_model, caplog):
    index = tmp_path / "index"
    waiting = threading.Event()
    embedders = [WaitingEmbedder(waiting), WaitingEmbedder(waiting)]
    summaries, errors = [None, None], []

    def run(i: int) -> None:
        def progress(stage, done, total):
            if (stage, done) == ("wait", 0):
                waiting.set()
        try:
            summaries[i] = build_index(toy_docs, index, embedder=embedders[i], progress=progress)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and waiting.is_set()
    first, second = sorted(summaries, key=lambda s: s.embedded, reverse=True)
    assert first.wrote and first.embedded == first.passages > 0
    assert not second.wrote and second.embedded == 0 and second.passages == first.passages  # re-checked, no work
    assert sorted(e.calls for e in embedders) == [0, 1]
    assert f"waiting for another build of {str(index)!r}" in caplog.text
    assert store.load(index).dense.ntotal == first.passages
    assert index_leftovers(index) == []
    assert store.lock_path(index) == tmp_path / ".index.lock" and not (index / ".index.lock").exists()


BUILD_SCRIPT = """
import sys
from conftest import FakeEmbedder
from rag.index.build import build_index
print(build_index(sys.argv[1], sys.argv[2], embedder=FakeEmbedder()).embedded)
"""


def test_concurrent_builds_in_processes_wait_and_leave_one_index(toy_docs, tmp_path):
    """Two processes start while a third holds the lock; once it is released both finish, one does the work."""
    index = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    with FileLock(store.lock_path(index)):
        builds = [subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(toy_docs), str(index)], cwd=ROOT,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(2)]
        for b in builds:  # each says on stderr that it waits (no sleeping: read until the line comes)
            line = b.stderr.readline()
            while line and "waiting for another build" not in line:
                line = b.stderr.readline()
            assert f"waiting for another build of {str(index)!r}" in line and ".index.lock" in line
    outputs = [b.communicate(timeout=300) for b in builds]
    assert [b.returncode for b in builds] == [0, 0], outputs
    expected = sum(n_passages(rel, text) for rel, text in TOY_FILES.items())
    assert sorted(int(out.strip()) for out, _ in outputs) == [0, expected]
    assert len(store.load(index).passages) == expected
    assert index_leftovers(index) == []


def test_held_lock_makes_a_build_time_out_naming_the_lock_file(toy_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    with FileLock(store.lock_path(index)):
        with pytest.raises(RagError) as info:
            build_index(toy_docs, index, embedder=fake_embedder, lock_timeout=0.05)
    message = str(info.value)
    assert str(store.lock_path(index)) in message and "another build" in message and "\n" not in message
    assert fake_embedder.calls == 0 and not index.exists()


def test_readers_do_not_take_the_build_lock(toy_index, fake_embedder):
    from rag.search.retriever import Retriever

    with FileLock(store.lock_path(toy_index)):
        retriever = Retriever.load(toy_index, embedder=fake_embedder)
        assert retriever.search("cats purr", k=1, mode="bm25")[0].doc == "cat.txt"


def test_chunk_settings_not_given_are_the_index_own(toy_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    build_index(toy_docs, index, embedder=fake_embedder, chunk_size=600, chunk_overlap=100)
    again = build_index(toy_docs, index, embedder=fake_embedder)  # no settings named: kept, nothing rebuilt
    assert not again.wrote and (store.load(index).manifest.chunk_size, store.load(index).manifest.chunk_overlap) == (600, 100)
    changed = build_index(toy_docs, index, embedder=fake_embedder, chunk_size=800)
    assert "chunk settings changed from 600/100 to 800/100" in changed.rebuilt_because
