"""rag.index.build with big files: the per-file size limit (skipped with one warning line naming the file,
its size and the limit; raised with `max_file_bytes`, which the index remembers) and a 4 MB file indexed
in seconds (chunking is linear in the file's size)."""

from __future__ import annotations

import hashlib
import random
import time

import numpy as np
import pytest

import rag.index.build
from conftest import TOY_FILES
from rag.errors import RagError
from rag.index import local as store
from rag.index.build import build_index, update_index
from rag.index.store import stale_files
from rag.ingest.chunk import chunk_document
from rag.ingest.load import MB, parse, read_text
from rag.settings import MAX_FILE_BYTES

BIG = "Big Report\n\n" + "A paragraph about harbours and ferries, long enough to count.\n\n" * 400  # ~25 KB


class HashEncoder:
    """A fast fake embedder: each text's vector is its BLAKE2b digest, centred and normalised."""

    name, dim = "fake-blake2b", 64

    def encode(self, texts) -> np.ndarray:
        raw = b"".join(hashlib.blake2b(t.encode("utf-8"), digest_size=self.dim).digest() for t in texts)
        v = np.frombuffer(raw, np.uint8).reshape(-1, self.dim).astype(np.float32) - 127.5
        return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def big_docs(toy_docs):
    (toy_docs / "big.txt").write_text(BIG, encoding="utf-8")
    return toy_docs


def test_a_file_over_the_limit_is_skipped_with_one_line_naming_it_its_size_and_the_limit(big_docs, tmp_path,
                                                                                        fake_embedder):
    size = len(BIG.encode("utf-8"))
    s = build_index(big_docs, tmp_path / "index", embedder=fake_embedder, max_file_bytes=10_000)
    assert (s.files, s.added) == (6, 7) and [d for d, _ in s.skipped] == ["big.txt"]
    (warning,) = s.warnings
    assert "\n" not in warning and warning.startswith(f"skipped {big_docs / 'big.txt'}: ")
    assert f"{size:,} bytes" in warning and f"{size / MB:.1f} MB" in warning
    assert "over the limit of 0.00954 MB (10,000 bytes) per file" in warning and "--max-file-mb" in warning
    loaded = store.load(tmp_path / "index")
    assert {p.doc for p in loaded.passages} == set(TOY_FILES)  # the others are indexed
    # fingerprinted by its size alone: a file over the limit is never read whole
    assert loaded.manifest.skipped["big.txt"] == {"sha256": "", "bytes": size, "reason": s.skipped[0][1]}
    assert loaded.manifest.max_file_bytes == 10_000 and stale_files(loaded.manifest) == []


def test_the_limit_is_remembered_and_raising_it_indexes_the_file(big_docs, tmp_path, fake_embedder):
    index = tmp_path / "index"
    build_index(big_docs, index, embedder=fake_embedder, max_file_bytes=10_000)
    again, loaded = update_index(big_docs, index, embedder=fake_embedder)  # as `rag ask` does: the recorded limit
    assert not again.wrote and [d for d, _ in again.skipped] == ["big.txt"] and loaded.manifest.max_file_bytes == 10_000
    raised = build_index(big_docs, index, embedder=fake_embedder, max_file_bytes=1 * MB)
    assert (raised.changed, raised.skipped, raised.warnings) == (1, (), ())
    assert raised.embedded == len(chunk_document(parse("big.txt", BIG)))
    assert not build_index(big_docs, index, embedder=fake_embedder).wrote  # the raised limit stays raised
    assert store.load(index).manifest.max_file_bytes == 1 * MB


def test_lowering_the_limit_drops_an_indexed_file(big_docs, tmp_path, fake_embedder):
    index = tmp_path / "index"
    build_index(big_docs, index, embedder=fake_embedder)
    s = build_index(big_docs, index, embedder=fake_embedder, max_file_bytes=10_000)
    assert (s.changed, s.embedded) == (1, 0) and [d for d, _ in s.skipped] == ["big.txt"]
    assert "big.txt" not in {p.doc for p in store.load(index).passages}


def test_the_default_limit_is_the_setting(tmp_path, toy_docs, fake_embedder):
    assert MAX_FILE_BYTES == 10 * MB
    (toy_docs / "huge.txt").write_bytes(b"x" * (MAX_FILE_BYTES + 1))
    (toy_docs / "edge.txt").write_bytes(b"Edge\n\nok." + b" " * (MAX_FILE_BYTES - 9))  # at the limit: indexed
    s = build_index(toy_docs, tmp_path / "index", embedder=fake_embedder)
    assert s.skipped == (("huge.txt", f"10.0 MB ({MAX_FILE_BYTES + 1:,} bytes) is over the limit of 10 MB "
                                      f"({MAX_FILE_BYTES:,} bytes) per file; raise it with `rag index --max-file-mb`"),)
    assert "edge.txt" in store.load(tmp_path / "index").manifest.files


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
def test_a_bad_limit_is_refused_naming_it(toy_docs, tmp_path, fake_embedder, value):
    with pytest.raises(RagError, match=f"max_file_bytes of {value!r}"):
        build_index(toy_docs, tmp_path / "index", embedder=fake_embedder, max_file_bytes=value)
    assert fake_embedder.calls == 0 and not (tmp_path / "index").exists()


def generated_text(n_bytes: int, seed: int = 0) -> str:
    """About `n_bytes` of report-like text: sections, paragraphs of 1-20 sentences, some wrapped."""
    rng = random.Random(seed)
    words = ["harbour", "treaty", "minister", "visit", "trade", "energy", "cooperation", "region", "island"]
    parts, size = ["Generated Report 2024\n\n"], 0
    while size < n_bytes:
        if rng.random() < 0.05:
            part = f"Section {len(parts)} {rng.choice(words).title()}\n\n"
        else:
            sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 20))).capitalize() + "."
                         for _ in range(rng.choice((1, 2, 3, 8, 20)))]
            part = ("\n" if rng.random() < 0.2 else " ").join(sentences) + "\n\n"
        parts.append(part)
        size += len(part)
    return "".join(parts)


def test_a_4_mb_file_indexes_in_under_10_seconds(tmp_path, monkeypatch):
    """CPU seconds of this process (other processes on a busy machine do not count); the quadratic line
    numbering took over 15 s for the chunking alone."""
    monkeypatch.setattr(rag.index.build, "document_embedder", None)  # no model: the fake one only
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.txt").write_text(generated_text(4 * MB), encoding="utf-8")
    t0 = time.process_time()
    s = build_index(docs, tmp_path / "index", embedder=HashEncoder())
    seconds = time.process_time() - t0
    assert s.skipped == () and s.passages > 10_000
    assert seconds < 10, f"a 4 MB file took {seconds:.1f} CPU seconds to index"
    text = read_text(docs / "big.txt")
    passages = store.load(tmp_path / "index").passages
    sample = passages[:: max(1, len(passages) // 200)]
    assert all(p.line == text.count("\n", 0, p.start) + 1 and p.text == text[p.start:p.end] for p in sample)
