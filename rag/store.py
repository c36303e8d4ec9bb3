"""The index directory: FAISS + BM25 + passages + manifest, saved atomically, loaded with checks.

Layout of `index/`:
  manifest.json     format version, model name and dimension, chunk settings, the documents folder,
                    a fingerprint (sha256, size) of every source file, checksums of the files below,
                    library versions
  passages.jsonl    one passage a line, in index order (doc, start, end, text, heading, ...)
  dense.faiss       a FAISS IndexFlatIP over the normalised passage embeddings
  bm25/             bm25s's own files (.npy and .json; no pickle)
  sentences.npy     embeddings of every passage's sentences (`rag.sentences.split_sentences` order),
                    passage after passage; `sentence_rows.npy` holds where each passage's rows start

`save` writes everything to a temporary sibling directory and swaps it in with renames, so a crash
mid-build leaves the previous index usable. `lock_path` names the sibling lock file that a build
holds (`rag.build` takes it; `save` and `load` do not, but a reader that finds the index swapped out
waits while a build holds it instead of restoring the previous one). `save` never replaces a file or
a folder that holds anything but index files. `load` refuses a missing, corrupted or other-version
index with a one-line `IndexStateError` that names what is wrong. Does not chunk or embed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from rag import lexical
from rag.errors import IndexStateError
from rag.sentences import split_sentences
from rag.types import Passage

FORMAT_VERSION = 3
MANIFEST, PASSAGES, DENSE, BM25 = "manifest.json", "passages.jsonl", "dense.faiss", "bm25"
SENTENCES, SENTENCE_ROWS = "sentences.npy", "sentence_rows.npy"
SWAP_WAIT = 10.0  # seconds a reader waits for a build's swap to finish
_INDEX_ENTRIES = {MANIFEST, PASSAGES, DENSE, BM25, SENTENCES, SENTENCE_ROWS}
_LIBRARIES = ("rag-assistant", "faiss-cpu", "sentence-transformers", "bm25s", "langchain-text-splitters")


@dataclass(frozen=True)
class Manifest:
    model: str
    dim: int
    chunk_size: int
    chunk_overlap: int
    docs: str  # the documents folder the index was built from, as given
    files: dict = field(default_factory=dict)  # doc -> {"sha256": ..., "bytes": ...}
    passages: int = 0
    checksums: dict = field(default_factory=dict)  # file in the index dir -> sha256
    versions: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


@dataclass(frozen=True)
class StoredIndex:
    path: Path
    manifest: Manifest
    passages: tuple[Passage, ...]
    dense: object  # faiss.Index
    bm25: object  # bm25s.BM25
    sentences: np.ndarray | None = None  # (n_sentences, dim), or None for an index saved without them
    sentence_rows: np.ndarray | None = None  # (n_passages + 1,): passage i owns rows [r[i], r[i+1])

    def passage_sentences(self, i: int) -> np.ndarray | None:
        if self.sentences is None:
            return None
        return self.sentences[self.sentence_rows[i]:self.sentence_rows[i + 1]]

    def vectors(self) -> np.ndarray:
        return self.dense.reconstruct_n(0, self.dense.ntotal) if self.dense.ntotal else np.zeros((0, self.manifest.dim), np.float32)


def file_fingerprint(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


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


def _passage_json(p: Passage) -> str:
    row = {"doc": p.doc, "start": p.start, "end": p.end, "kind": p.kind, "title": p.title,
           "year": p.year, "line": p.line, "heading": list(p.heading), "text": p.text}
    return json.dumps(row, ensure_ascii=False)


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


def sentence_rows(passages: list[Passage] | tuple[Passage, ...]) -> np.ndarray:
    """Where each passage's sentence vectors start (one more entry than passages)."""
    counts = [len(split_sentences(p.text)) for p in passages]
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


def save(index_dir: str | Path, manifest: Manifest, passages: list[Passage], vectors: np.ndarray, bm25,
         sentences: np.ndarray | None = None) -> Manifest:
    """Write the whole index to a temporary directory, then swap it in place of `index_dir`.

    `sentences`, when given, holds one vector per sentence of every passage, in passage order."""
    import faiss

    index_dir = Path(index_dir)
    if len(passages) != len(vectors):
        raise IndexStateError(f"{len(passages)} passages but {len(vectors)} vectors")
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    _recover(index_dir, building=True)
    check_replaceable(index_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.tmp-", dir=index_dir.parent))
    try:
        tmp.chmod(0o755)
        with open(tmp / PASSAGES, "w", encoding="utf-8") as f:
            for p in passages:
                f.write(_passage_json(p) + "\n")
        dense = faiss.IndexFlatIP(manifest.dim)
        if len(vectors):
            dense.add(np.ascontiguousarray(vectors, dtype=np.float32))
        faiss.write_index(dense, str(tmp / DENSE))
        (tmp / BM25).mkdir()
        lexical.save(bm25, tmp / BM25)
        files = [PASSAGES, DENSE] + sorted(f"{BM25}/{p.name}" for p in (tmp / BM25).iterdir())
        if sentences is not None:
            rows = sentence_rows(passages)
            if rows[-1] != len(sentences):
                raise IndexStateError(f"{rows[-1]} sentences in the passages but {len(sentences)} sentence vectors")
            np.save(tmp / SENTENCES, np.ascontiguousarray(sentences, dtype=np.float32), allow_pickle=False)
            np.save(tmp / SENTENCE_ROWS, rows, allow_pickle=False)
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
    return manifest


def stale_files(manifest: Manifest) -> list[str]:
    """Source files added, changed or removed since the index was built ([] if its folder is gone)."""
    docs = Path(manifest.docs)
    if not docs.is_dir():
        return []
    from rag.load import list_files

    current = {p.relative_to(docs).as_posix(): p for p in list_files(docs)}
    changed = [d for d in sorted(set(current) | set(manifest.files))
               if d not in current or d not in manifest.files or file_fingerprint(current[d]) != manifest.files[d]]
    return changed


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


def load(index_dir: str | Path) -> StoredIndex:
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
            rows = [json.loads(line) for line in f]
        passages = tuple(
            Passage(doc=r["doc"], start=r["start"], end=r["end"], text=r["text"], heading=tuple(r["heading"]),
                    title=r["title"], year=r["year"], kind=r["kind"], line=r["line"]) for r in rows)
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
    return StoredIndex(index_dir, manifest, passages, dense, bm25, sentences, rows)
