"""rag.index.build with files it cannot index (undecodable, binary, unreadable, without passages: empty or
headings only): each is recorded once, so an unchanged one is no change, never makes the index stale, and
never makes a build rewrite the index; a changed, fixed or deleted one is a change."""

from __future__ import annotations

import json

import pytest

import rag.index.build
import rag.index.sources
from conftest import TOY_FILES, FakeEmbedder
from rag.errors import DocumentError, IndexStateError
from rag.index import local as store
from rag.index.build import build_index
from rag.index.store import UNREADABLE, file_fingerprint, stale_files
from rag.search.retriever import Retriever

LATIN1 = "Caf\xe9 au lait\n\nd\xe9j\xe0 vu.\n".encode("latin-1")
GARBLED = bytes(range(128, 256)) * 2  # text in no encoding
GARBLED_REASON = "not text in any encoding charset-normalizer knows (not UTF-8 at byte 0: b'\\x80')"
NO_TEXT = "no text to index (empty, or headings only)"
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def snapshot(index):
    return {p.relative_to(index).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(index.rglob("*")) if p.is_file()}


def counts(s):
    return s.files, s.added, s.changed, s.removed, s.unchanged


@pytest.fixture
def no_real_model(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the real embedding model was loaded")

    monkeypatch.setattr(rag.index.build, "document_embedder", refuse)


@pytest.fixture
def bad_docs(toy_docs):
    """The toy corpus with a file in no encoding and a binary one beside the good files."""
    (toy_docs / "latin1.txt").write_bytes(GARBLED)
    (toy_docs / "animals" / "photo.txt").write_bytes(BINARY)
    return toy_docs


def test_bad_files_are_skipped_recorded_and_listed(bad_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    s = build_index(bad_docs, index, embedder=fake_embedder)
    assert counts(s) == (6, 8, 0, 0, 0) and s.wrote
    assert s.skipped == (("animals/photo.txt", "looks binary (NUL bytes), not a text document"),
                         ("latin1.txt", GARBLED_REASON))
    assert s.warnings == (f"skipped {bad_docs / 'animals' / 'photo.txt'}: {s.skipped[0][1]}",
                          f"skipped {bad_docs / 'latin1.txt'}: {s.skipped[1][1]}")
    assert "8 files (2 skipped)" in str(s)
    manifest = store.load(index).manifest
    assert sorted(manifest.files) == sorted(TOY_FILES)
    assert manifest.skipped == {
        "animals/photo.txt": {**file_fingerprint(bad_docs / "animals" / "photo.txt"), "reason": s.skipped[0][1]},
        "latin1.txt": {**file_fingerprint(bad_docs / "latin1.txt"), "reason": s.skipped[1][1]},
    }
    assert {p.doc for p in store.load(index).passages} == set(TOY_FILES)


def test_unchanged_bad_files_are_no_change_and_the_index_is_not_stale(bad_docs, tmp_path, fake_embedder,
                                                                      no_real_model):
    index = tmp_path / "index"
    first = build_index(bad_docs, index, embedder=fake_embedder)
    before, calls = snapshot(index), fake_embedder.calls
    assert stale_files(store.load(index).manifest) == []
    Retriever.load(index, embedder=fake_embedder)  # not refused as stale
    for _ in range(2):
        again = build_index(bad_docs, index)  # no embedder: no_real_model would raise if one were loaded
        assert counts(again) == (6, 0, 0, 0, 8) and not again.wrote and "nothing changed" in str(again)
        assert again.skipped == first.skipped and again.warnings == first.warnings  # still one warning each
    assert snapshot(index) == before and fake_embedder.calls == calls


def test_a_changed_bad_file_is_one_change_then_none(bad_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    build_index(bad_docs, index, embedder=fake_embedder)
    (bad_docs / "latin1.txt").write_bytes(GARBLED * 2)
    assert stale_files(store.load(index).manifest) == ["latin1.txt"]
    with pytest.raises(IndexStateError, match="stale: 1 file"):
        Retriever.load(index, embedder=fake_embedder)
    s = build_index(bad_docs, index, embedder=fake_embedder)
    assert counts(s) == (6, 0, 1, 0, 7) and s.wrote and s.embedded == 0
    assert dict(s.skipped)["latin1.txt"] == GARBLED_REASON
    assert stale_files(store.load(index).manifest) == []
    assert not build_index(bad_docs, index, embedder=fake_embedder).wrote


def test_a_fixed_bad_file_is_indexed(bad_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    build_index(bad_docs, index, embedder=fake_embedder)
    (bad_docs / "latin1.txt").write_text("Caf\xe9\n\nD\xe9j\xe0 vu, in UTF-8 now.\n", encoding="utf-8")
    s = build_index(bad_docs, index, embedder=fake_embedder)
    assert counts(s) == (7, 0, 1, 0, 7) and s.embedded == 1 and [d for d, _ in s.skipped] == ["animals/photo.txt"]
    loaded = store.load(index)
    assert "latin1.txt" in loaded.manifest.files and "latin1.txt" not in loaded.manifest.skipped
    assert [p.text for p in loaded.passages if p.doc == "latin1.txt"] == ["D\xe9j\xe0 vu, in UTF-8 now."]


def test_a_deleted_bad_file_is_removed(bad_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    build_index(bad_docs, index, embedder=fake_embedder)
    (bad_docs / "latin1.txt").unlink()
    assert stale_files(store.load(index).manifest) == ["latin1.txt"]
    s = build_index(bad_docs, index, embedder=fake_embedder)
    assert counts(s) == (6, 0, 0, 1, 7) and s.wrote and len(s.warnings) == 1
    assert "latin1.txt" not in store.load(index).manifest.skipped
    assert stale_files(store.load(index).manifest) == []


def test_a_good_file_turned_bad_loses_its_passages(toy_docs, tmp_path, fake_embedder, no_real_model):
    index = tmp_path / "index"
    build_index(toy_docs, index, embedder=fake_embedder)
    (toy_docs / "cat.txt").write_bytes(GARBLED)
    s = build_index(toy_docs, index, embedder=fake_embedder)
    assert counts(s) == (5, 0, 1, 0, 5) and s.embedded == 0 and [d for d, _ in s.skipped] == ["cat.txt"]
    loaded = store.load(index)
    assert "cat.txt" not in {p.doc for p in loaded.passages} and "cat.txt" not in loaded.manifest.files
    assert stale_files(loaded.manifest) == []


def test_a_bad_file_added_to_an_index_is_recorded_without_embedding(toy_docs, tmp_path, fake_embedder,
                                                                    no_real_model):
    index = tmp_path / "index"
    first = build_index(toy_docs, index, embedder=fake_embedder)
    (toy_docs / "latin1.txt").write_bytes(GARBLED)
    calls = fake_embedder.calls
    s = build_index(toy_docs, index)  # nothing to embed: no model is loaded
    assert counts(s) == (6, 1, 0, 0, 6) and s.wrote and s.passages == first.passages and fake_embedder.calls == calls
    assert stale_files(store.load(index).manifest) == []


def test_an_index_from_before_skipped_files_were_recorded_records_them_once(bad_docs, tmp_path, fake_embedder,
                                                                            no_real_model):
    index = tmp_path / "index"
    build_index(bad_docs, index, embedder=fake_embedder)
    path = index / store.MANIFEST
    raw = json.loads(path.read_text(encoding="utf-8"))
    del raw["skipped"], raw["max_file_bytes"]  # as an older build wrote it
    path.write_text(json.dumps(raw), encoding="utf-8")
    assert stale_files(store.load(index).manifest) == ["animals/photo.txt", "latin1.txt"]
    s = build_index(bad_docs, index, embedder=fake_embedder)
    assert counts(s) == (6, 2, 0, 0, 6) and s.embedded == 0 and not s.rebuilt_because
    assert stale_files(store.load(index).manifest) == []
    assert not build_index(bad_docs, index, embedder=fake_embedder).wrote


def test_a_file_that_cannot_be_read_is_unchanged_while_it_cannot(toy_docs, tmp_path, fake_embedder, monkeypatch):
    (toy_docs / "locked.txt").write_text("Locked\n\nSecret.\n", encoding="utf-8")
    real_read, real_fingerprint = rag.index.sources.Path.read_bytes, rag.index.store.file_fingerprint

    def read_bytes(path):
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    def fingerprint(path):
        read_bytes(path)  # refuses the locked file
        return real_fingerprint(path)

    monkeypatch.setattr(rag.index.sources.Path, "read_bytes", read_bytes)
    monkeypatch.setattr(rag.index.store, "file_fingerprint", fingerprint)
    index = tmp_path / "index"
    s = build_index(toy_docs, index, embedder=fake_embedder)
    assert s.skipped == (("locked.txt", "could not be read (Permission denied)"),)
    assert s.warnings == (f"skipped {toy_docs / 'locked.txt'}: could not be read (Permission denied)",)
    assert store.load(index).manifest.skipped["locked.txt"] == {**UNREADABLE, "reason": s.skipped[0][1]}
    assert stale_files(store.load(index).manifest) == []
    assert not build_index(toy_docs, index, embedder=fake_embedder).wrote
    monkeypatch.undo()  # readable again
    assert stale_files(store.load(index).manifest) == ["locked.txt"]
    s = build_index(toy_docs, index, embedder=FakeEmbedder())
    assert counts(s) == (7, 0, 1, 0, 6) and s.skipped == ()


@pytest.mark.parametrize("files", [
    {"empty.txt": ""},
    {"blank.txt": "\n   \n\n"},
    {"headings.md": "# Only\n\n## Headings\n\n### Here\n"},
    {"empty.txt": "", "headings.md": "# Only\n\n## Headings\n"},
], ids=["empty", "blank", "headings-only", "both"])
def test_unchanged_files_without_passages_do_not_rewrite_the_index(toy_docs, tmp_path, fake_embedder,
                                                                   no_real_model, files):
    for name, text in files.items():
        (toy_docs / name).write_text(text, encoding="utf-8")
    index = tmp_path / "index"
    first = build_index(toy_docs, index, embedder=fake_embedder)
    assert counts(first) == (6, 6 + len(files), 0, 0, 0) and first.skipped == tuple((n, NO_TEXT) for n in sorted(files))
    assert len(first.warnings) == len(files) and set(files) <= set(store.load(index).manifest.skipped)
    before = snapshot(index)
    again = build_index(toy_docs, index)  # no embedder: no_real_model would raise if one were loaded
    assert not again.wrote and counts(again) == (6, 0, 0, 0, 6 + len(files))
    assert snapshot(index) == before and stale_files(store.load(index).manifest) == []
    name = next(iter(files))
    (toy_docs / name).write_text("Now Text\n\nIt has a paragraph now.\n", encoding="utf-8")
    s = build_index(toy_docs, index, embedder=fake_embedder)
    assert (s.changed, s.embedded) == (1, 1)


def test_a_first_build_of_files_without_text_says_so(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "heading.md").write_text("# Only a heading\n", encoding="utf-8")
    with pytest.raises(DocumentError, match="nothing to index in .*heading.md: no text to index"):
        build_index(docs, tmp_path / "index")
    assert not (tmp_path / "index").exists()


def test_a_latin1_file_is_decoded_and_indexed(toy_docs, tmp_path, fake_embedder, no_real_model):
    (toy_docs / "latin1.txt").write_bytes(LATIN1)
    index = tmp_path / "index"
    s = build_index(toy_docs, index, embedder=fake_embedder)
    assert s.skipped == () and s.warnings == ()
    loaded = Retriever.load(index, embedder=fake_embedder)
    [passage] = [p for p in loaded.passages if p.doc == "latin1.txt"]
    assert passage.text == "d\xe9j\xe0 vu." and loaded.document_text("latin1.txt") == LATIN1.decode("latin-1")
    assert stale_files(loaded.index.manifest) == [] and not build_index(toy_docs, index).wrote


def test_the_python_api_logs_each_skipped_file_once(bad_docs, tmp_path, fake_embedder, caplog):
    with caplog.at_level("WARNING", logger="rag.index.build"):
        s = build_index(bad_docs, tmp_path / "index", embedder=fake_embedder)
    assert [r.getMessage() for r in caplog.records if r.name == "rag.index.build"] == list(s.warnings)


def test_a_file_whose_name_is_not_utf8_is_skipped_and_the_rest_indexed(toy_docs, tmp_path, fake_embedder):
    import os

    try:
        with open(os.path.join(os.fsencode(toy_docs), b"caf\xe9.txt"), "wb") as f:
            f.write(b"Cafe\n\nA paragraph about coffee.\n")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    s = build_index(toy_docs, tmp_path / "index", embedder=fake_embedder)
    assert [reason for _, reason in s.skipped] == ["its name is not valid UTF-8; rename it"]
    assert s.warnings == (f"skipped {toy_docs}/caf\\udce9.txt: its name is not valid UTF-8; rename it",)
    assert stale_files(store.load(tmp_path / "index").manifest) == []
    assert not build_index(toy_docs, tmp_path / "index").wrote


def test_a_converter_crash_skips_that_file_only(toy_docs, tmp_path, fake_embedder, monkeypatch):
    import rag.ingest.formats.text as text_module

    real = text_module.convert

    def convert(data, name):
        if name.endswith("dog.txt"):
            raise AttributeError("no body")
        return real(data, name)

    monkeypatch.setattr(text_module, "convert", convert)
    s = build_index(toy_docs, tmp_path / "index", embedder=fake_embedder)
    assert s.skipped == (("dog.txt", "could not be read as a text file (AttributeError: no body)"),)
    assert s.files == len(TOY_FILES) - 1
