"""The local index directory: FAISS + BM25 + passages + manifest, saved as a new generation, loaded
with checks (the `Store` protocol).

Layout of `index/`:
  manifest.json     `Manifest` plus checksums of the files below and library versions
  passages.jsonl    one passage a line, in index order (doc, start, end, text, heading, ...)
  dense.faiss       a FAISS IndexFlatIP over the normalised passage embeddings
  bm25/             bm25s's own files (.npy and .json; no pickle)
  sentences.npy     embeddings of every passage's sentences (`split_sentences` order), passage after
                    passage; `sentence_rows.npy` holds where each passage's rows start

`save` writes a temporary sibling directory and swaps it in (`rag.index.generations`: a crash leaves
the previous index usable; readers get one generation whole); it never replaces a file or a folder
that holds anything but index files. `load` refuses a missing, corrupted or other-version index with
a one-line `IndexStateError` naming what is wrong. Does not chunk, embed or search (`LocalIndex` is
searched by `rag.search`), nor fsync: a killed build is survived, a power cut mid-save may not be.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict
from importlib import metadata
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rag.errors import IndexStateError
from rag.index import lexical
from rag.index.flat import LocalIndex
from rag.index.generations import (  # noqa: F401 - the file names and lock path, for callers of this store
    BM25, DENSE, MANIFEST, PASSAGES, SENTENCE_ROWS, SENTENCES, TEXTS, check_replaceable, leftovers, lock_path,
    read_generation, settle, swap_in,
)
from rag.index.store import FORMAT_VERSION, Manifest
from rag.ingest.sentences import split_sentences

_LIBRARIES = ("rag-assistant", "faiss-cpu", "sentence-transformers", "bm25s", "langchain-text-splitters")


class LocalStore:
    """An index directory on this machine (the `Store` protocol)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.location = str(path)
        self.lock_path = lock_path(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def read_manifest(self) -> Manifest:
        return read_manifest(self.path)

    def check_replaceable(self) -> None:
        """A build calls this first, holding the lock: so it also settles what crashed builds left."""
        settle(self.path)

    def load(self) -> LocalIndex:
        return load(self.path)

    def save(self, manifest: Manifest, passages, vectors: np.ndarray, sentences: np.ndarray,
             texts: Mapping[str, str]) -> LocalIndex:
        return save(self.path, manifest, passages, vectors, sentences, texts)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def library_versions() -> dict:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    return {name: version(name) for name in _LIBRARIES}


def sentence_rows(passages) -> np.ndarray:
    """Where each passage's sentence vectors start (one more entry than passages)."""
    counts = [len(split_sentences(p.text)) for p in passages]
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


def save(index_dir: str | Path, manifest: Manifest, passages, vectors: np.ndarray,
         sentences: np.ndarray, texts: Mapping[str, str]) -> LocalIndex:
    """Write the whole index (BM25 built here from the passages) to a temporary directory, swap it in
    place of `index_dir`, and return it loaded. `sentences` holds one vector per sentence of every
    passage, in passage order; `texts` every document's text. Run under the build lock (`settle`
    deletes other saves' temporaries)."""
    import faiss

    index_dir, passages = Path(index_dir), tuple(passages)
    if len(passages) != len(vectors):
        raise IndexStateError(f"{len(passages)} passages but {len(vectors)} vectors")
    texts = {doc: texts[doc] for doc in sorted(texts)}
    missing = sorted({p.doc for p in passages} - set(texts))
    if missing:
        raise IndexStateError(f"no text for {len(missing)} document(s) with passages ({', '.join(missing[:3])})")
    rows = sentence_rows(passages)
    if rows[-1] != len(sentences):
        raise IndexStateError(f"{rows[-1]} sentences in the passages but {len(sentences)} sentence vectors")
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    settle(index_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.tmp-", dir=index_dir.parent))
    try:
        tmp.chmod(0o755)
        with open(tmp / PASSAGES, "w", encoding="utf-8") as f:
            for p in passages:
                row = p.to_json()
                del row["score"]
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        dense = faiss.IndexFlatIP(manifest.dim)
        if len(vectors):
            dense.add(np.ascontiguousarray(vectors, dtype=np.float32))
        faiss.write_index(dense, str(tmp / DENSE))
        bm25 = lexical.build([p.context() for p in passages])
        (tmp / BM25).mkdir()
        lexical.save(bm25, tmp / BM25)
        sentences = np.ascontiguousarray(sentences, dtype=np.float32)
        np.save(tmp / SENTENCES, sentences, allow_pickle=False)
        np.save(tmp / SENTENCE_ROWS, rows, allow_pickle=False)
        with open(tmp / TEXTS, "w", encoding="utf-8") as f:
            for doc, text in texts.items():
                f.write(json.dumps({"doc": doc, "text": text}, ensure_ascii=False) + "\n")
        files = [PASSAGES, DENSE] + sorted(f"{BM25}/{p.name}" for p in (tmp / BM25).iterdir())
        files += [SENTENCES, SENTENCE_ROWS, TEXTS]
        manifest = Manifest(**{**asdict(manifest), "passages": len(passages),
                               "checksums": {name: _sha256(tmp / name) for name in files},
                               "versions": library_versions(), "format_version": FORMAT_VERSION})
        (tmp / MANIFEST).write_text(json.dumps(asdict(manifest), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        swap_in(tmp, index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return LocalIndex(index_dir, manifest, passages, dense, bm25, sentences, rows, texts)


def read_manifest(index_dir: str | Path) -> Manifest:
    """The manifest alone (no checksums verified); IndexStateError when there is no index."""
    return read_generation(Path(index_dir), checked=False)[0]


def load(index_dir: str | Path) -> LocalIndex:
    """Read and check one generation of an index directory; IndexStateError names the first thing wrong."""
    index_dir = Path(index_dir)
    manifest, files = read_generation(index_dir, checked=True)
    bm25 = {name.split("/", 1)[1]: data for name, data in files.items() if name.startswith(BM25 + "/")}
    if PASSAGES not in files or DENSE not in files:
        raise IndexStateError(f"index at {str(index_dir)!r} could not be read: {MANIFEST} lists no {PASSAGES} "
                              f"or {DENSE}")
    if TEXTS not in files:
        raise IndexStateError(f"index at {str(index_dir)!r} could not be read: {MANIFEST} lists no {TEXTS}")
    return LocalIndex.decode(index_dir, manifest, files[PASSAGES], files[DENSE], bm25, files.get(SENTENCES),
                             files.get(SENTENCE_ROWS), files[TEXTS])
