"""The local index directory: FAISS + BM25 + passages + manifest, saved atomically, loaded with checks.

Layout of `index/`:
  manifest.json     `Manifest` plus checksums of the files below and library versions
  passages.jsonl    one passage a line, in index order (doc, start, end, text, heading, ...)
  dense.faiss       a FAISS IndexFlatIP over the normalised passage embeddings
  bm25/             bm25s's own files (.npy and .json; no pickle)
  sentences.npy     embeddings of every passage's sentences (`split_sentences` order), passage after
                    passage; `sentence_rows.npy` holds where each passage's rows start

`save` writes everything to a temporary sibling directory and swaps it in with renames, so a crash
mid-build leaves the previous index usable. `lock_path` names the sibling lock file that a build
holds (`rag.index.build` takes it; `save` and `load` do not, but a reader that finds the index
swapped out waits while a build holds it instead of restoring the previous one). `save` never
replaces a file or a folder that holds anything but index files. `load` refuses a missing, corrupted
or other-version index with a one-line `IndexStateError` that names what is wrong. The loaded
`LocalIndex` is searched by `rag.search`. Does not chunk or embed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np

from rag.errors import IndexStateError
from rag.index import lexical
from rag.index.flat import LocalIndex
from rag.index.store import FORMAT_VERSION, Manifest
from rag.ingest.sentences import split_sentences
from rag.types import Passage

MANIFEST, PASSAGES, DENSE, BM25 = "manifest.json", "passages.jsonl", "dense.faiss", "bm25"
SENTENCES, SENTENCE_ROWS = "sentences.npy", "sentence_rows.npy"
SWAP_WAIT = 10.0  # seconds a reader waits for a build's swap to finish
_INDEX_ENTRIES = {MANIFEST, PASSAGES, DENSE, BM25, SENTENCES, SENTENCE_ROWS}
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
        check_replaceable(self.path)

    def load(self) -> LocalIndex:
        return load(self.path)

    def save(self, manifest: Manifest, passages, vectors: np.ndarray, sentences: np.ndarray) -> LocalIndex:
        return save(self.path, manifest, passages, vectors, sentences)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def library_versions() -> dict:
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _recover(index_dir: Path, *, building: bool = False) -> None:
    """Finish a swap that a crash interrupted: put the previous index back if the new one is missing.

    A reader (not `building`) does so only when no build holds the lock; while one does, the directory
    is missing for the instant between the swap's two renames, so the reader waits for the new one
    (up to `SWAP_WAIT` seconds) rather than undo the swap under the builder's feet."""
    old = _displaced(index_dir)
    if index_dir.exists() or not old.exists():
        return
    if building:
        os.replace(old, index_dir)
        return
    from filelock import FileLock, Timeout

    try:
        with FileLock(lock_path(index_dir), timeout=0):
            if not index_dir.exists() and old.exists():
                os.replace(old, index_dir)
    except Timeout:  # a build is mid-swap
        deadline = time.monotonic() + SWAP_WAIT
        while not index_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def _displaced(index_dir: Path) -> Path:
    """Where a swap parks the previous index until the new one is in place (one fixed name)."""
    return index_dir.parent / f".{index_dir.name}.old"


def check_replaceable(index_dir: str | Path) -> None:
    """IndexStateError unless `index_dir` is missing, empty, has a manifest (an index of any version)
    or holds only index files: a build swaps the whole directory out and deletes it, so it must never
    be a file or a folder of other things (`--index seeds` or `--index notes.txt` by mistake)."""
    index_dir = Path(index_dir)
    if not os.path.lexists(index_dir):
        return
    if not index_dir.is_dir():
        raise IndexStateError(f"{str(index_dir)!r} is not a directory; refusing to replace it with an index "
                              "(choose another index path)")
    others = sorted(p.name for p in index_dir.iterdir() if p.name not in _INDEX_ENTRIES)
    if others and not (index_dir / MANIFEST).is_file():
        raise IndexStateError(f"{str(index_dir)!r} is not an index directory (it holds {others[0]!r}"
                              f"{f' and {len(others) - 1} more' if len(others) > 1 else ''}); refusing to "
                              "replace it with an index (choose another index path)")


def lock_path(index_dir: str | Path) -> Path:
    """The lock file of a build of `index_dir`: a sibling, since the directory itself is swapped."""
    index_dir = Path(index_dir)
    return index_dir.parent / f".{index_dir.name}.lock"


def sentence_rows(passages) -> np.ndarray:
    """Where each passage's sentence vectors start (one more entry than passages)."""
    counts = [len(split_sentences(p.text)) for p in passages]
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


def save(index_dir: str | Path, manifest: Manifest, passages, vectors: np.ndarray,
         sentences: np.ndarray) -> LocalIndex:
    """Write the whole index (BM25 built here from the passages) to a temporary directory, swap it in
    place of `index_dir`, and return it loaded. `sentences` holds one vector per sentence of every
    passage, in passage order."""
    import faiss

    index_dir, passages = Path(index_dir), tuple(passages)
    if len(passages) != len(vectors):
        raise IndexStateError(f"{len(passages)} passages but {len(vectors)} vectors")
    rows = sentence_rows(passages)
    if rows[-1] != len(sentences):
        raise IndexStateError(f"{rows[-1]} sentences in the passages but {len(sentences)} sentence vectors")
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    _recover(index_dir, building=True)
    check_replaceable(index_dir)
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
        files = [PASSAGES, DENSE] + sorted(f"{BM25}/{p.name}" for p in (tmp / BM25).iterdir())
        files += [SENTENCES, SENTENCE_ROWS]
        manifest = Manifest(**{**asdict(manifest), "passages": len(passages),
                               "checksums": {name: _sha256(tmp / name) for name in files},
                               "versions": library_versions(), "format_version": FORMAT_VERSION})
        (tmp / MANIFEST).write_text(json.dumps(asdict(manifest), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        old = _displaced(index_dir)
        shutil.rmtree(old, ignore_errors=True)  # left over from a swap whose clean-up did not run
        if index_dir.exists():
            os.replace(index_dir, old)
        os.replace(tmp, index_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return LocalIndex(index_dir, manifest, passages, dense, bm25, sentences, rows)


def read_manifest(index_dir: str | Path) -> Manifest:
    index_dir = Path(index_dir)
    _recover(index_dir)
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexStateError(f"no index at {str(index_dir)!r} (missing {MANIFEST}); build one with `rag index`")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexStateError(
                f"index at {str(index_dir)!r} has format version {version}, this rag reads {FORMAT_VERSION}; rebuild it")
        return Manifest(**raw)
    except (ValueError, TypeError, AttributeError) as exc:
        raise IndexStateError(f"index at {str(index_dir)!r} has a corrupted {MANIFEST}: {exc}") from None


def load(index_dir: str | Path) -> LocalIndex:
    """Read and check an index directory; IndexStateError names the first thing that is wrong."""
    import faiss

    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    for name, expected in manifest.checksums.items():
        path = index_dir / name
        if not path.exists():
            raise IndexStateError(f"index at {str(index_dir)!r} is missing {name}; rebuild it")
        if _sha256(path) != expected:
            raise IndexStateError(f"index at {str(index_dir)!r} is corrupted: {name} does not match its checksum")
    try:
        with open(index_dir / PASSAGES, encoding="utf-8") as f:
            passages = tuple(Passage.from_json(json.loads(line)) for line in f)
        dense = faiss.read_index(str(index_dir / DENSE))
        bm25 = lexical.load(index_dir / BM25)
        sentences = rows = None
        if SENTENCES in manifest.checksums:
            sentences = np.load(index_dir / SENTENCES, allow_pickle=False)
            rows = np.load(index_dir / SENTENCE_ROWS, allow_pickle=False)
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        raise IndexStateError(f"index at {str(index_dir)!r} could not be read: {str(exc).splitlines()[0]}") from None
    if dense.ntotal != len(passages) or len(passages) != manifest.passages:
        raise IndexStateError(
            f"index at {str(index_dir)!r} is inconsistent: {len(passages)} passages, {dense.ntotal} vectors, "
            f"manifest says {manifest.passages}")
    if dense.d != manifest.dim:
        raise IndexStateError(f"index at {str(index_dir)!r} has vectors of dimension {dense.d}, manifest says {manifest.dim}")
    if sentences is not None and (len(rows) != len(passages) + 1 or rows[-1] != len(sentences)
                                  or sentences.shape[1:] != (manifest.dim,)):
        raise IndexStateError(f"index at {str(index_dir)!r} is inconsistent: sentence vectors do not match the passages")
    return LocalIndex(index_dir, manifest, passages, dense, bm25, sentences, rows)
