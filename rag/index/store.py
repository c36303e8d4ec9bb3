"""Where an index lives, as two small protocols, and what every kind of store records.

`Store` is a place an index is saved to and loaded from (today the local index directory,
`rag.index.local`; a server-backed store implements the same methods); `Index` is a loaded index as
the retriever reads it: passages in index order (made when asked for, in a big index), their
documents and years as arrays, dense search, BM25 and best-sentence rankings, sentence vectors, term
statistics and the text of every document (what citations are verified against). `Manifest` is what
a store records about an index (model, dimension, chunk settings, the documents folder, a
fingerprint of every source file, and of every file the build skipped with the reason), so that a
mismatch or a stale index is detected: `stale_files` names the files added, changed or removed
since, and a skipped file counts as unchanged while its fingerprint matches.
`rag.index.factory.open_store` picks the implementation for a location. Does not chunk, embed or
rank.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.errors import IndexStateError
from rag.index.lexical import TermStats
from rag.ingest.sentences import split_sentences
from rag.types import Passage

FORMAT_VERSION = 5  # 4: the documents' texts are stored; 5: tables to read them lazily, int8 sentence vectors, ANN


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
    skipped: dict = field(default_factory=dict)  # doc -> {"sha256", "bytes", "reason"}: not indexed, and why
    max_file_bytes: int | None = None  # the per-file size limit of the build (None: built before there was one)
    extra_docs: dict = field(default_factory=dict)  # prefix -> folder indexed with `docs`, its files as "prefix/..."


class Index(Protocol):
    """A loaded index, read-only and safe to share between threads."""

    manifest: Manifest
    passages: Sequence[Passage]
    location: str  # where it was loaded from, for messages

    def documents(self) -> Sequence[str]:
        """Every document of the index (those without passages too), numbered by `passage_columns`."""

    def passage_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """Per passage, in index order: the number of its document in `documents()` and its year (0
        for none); what filters read instead of the passages."""

    def position(self, doc: str, start: int, end: int) -> int | None:
        """Where the passage of document `doc` spanning start:end is in `passages`, or None."""

    def vectors(self) -> np.ndarray:
        """Every passage's vector, in passage order."""

    def passage_sentences(self, i: int) -> np.ndarray | None:
        """The vectors of passage i's sentences (`split_sentences` order), or None when not stored."""

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """The `n` passages (index, inner product) nearest `vector`, only among `allowed` ones if given."""

    def sentence_scores(self, vector: np.ndarray) -> np.ndarray | None:
        """Per passage, the inner product of `vector` with its most similar sentence (-1 without one)."""

    def sentence_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None,
                        candidates: Sequence[int] = ()) -> list[tuple[int, float]]:
        """The `n` passages (index, score) whose best sentence is nearest `vector`, best first (ties to the
        earlier passage), only among `allowed` ones if given; exact, or in a big index among the
        passages nearest `vector` and the `candidates` (e.g. the BM25 ranking's)."""

    def lexical_scores(self, text: str) -> np.ndarray:
        """The BM25 score of every passage for `text`."""

    def lexical_search(self, text: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """The `n` passages (index, score) with the best BM25 scores above 0 for `text`, best first (ties
        to the earlier passage), only among `allowed` ones if given."""

    def term_stats(self) -> TermStats:
        """Document frequencies of the BM25 terms."""

    def saved_aliases(self) -> tuple | None:
        """The other names the documents use, as found when the index was saved
        (`rag.index.alias_groups`), or None when it was saved without them (found on first use)."""

    def document_text(self, doc: str) -> str | None:
        """The text document `doc` was indexed from (what its converter extracted; spans index into
        it), or None for a document not in the index."""


class Store(Protocol):
    """Where an index is saved and loaded; builds of one store take turns through `lock_path`."""

    location: str
    lock_path: Path

    def exists(self) -> bool: ...

    def read_manifest(self) -> Manifest:
        """The manifest alone, cheaply (no checksums, any format version: an older index's folder and
        settings, for a rebuild); IndexStateError when there is no index."""

    def check_replaceable(self) -> None:
        """IndexStateError unless a save may replace whatever is at the location. Called by a build
        under its lock, so a store may also clear what crashed builds left there."""

    def load(self) -> Index:
        """The checked index; IndexStateError names the first thing wrong."""

    def save(self, manifest: Manifest, passages: Sequence[Passage], vectors: np.ndarray,
             sentences: np.ndarray, texts: Mapping[str, str]) -> Index:
        """Replace the index at the location whole (readers see the old one or the new one); `texts`
        holds every indexed document's text by document."""


def sentence_rows(passages: Sequence[Passage]) -> np.ndarray:
    """Where each passage's sentence vectors start (one more entry than passages)."""
    counts = [len(split_sentences(p.text)) for p in passages]
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


def check_contents(passages: Sequence[Passage], vectors: np.ndarray, sentences: np.ndarray,
                   texts: Mapping[str, str]) -> np.ndarray:
    """What every `Store.save` checks first: a vector per passage, every passage the exact span of its
    document's text, a sentence vector per sentence. IndexStateError names the first misfit; returns
    `sentence_rows(passages)`."""
    if len(passages) != len(vectors):
        raise IndexStateError(f"{len(passages)} passages but {len(vectors)} vectors")
    missing = sorted({p.doc for p in passages} - set(texts))
    if missing:
        raise IndexStateError(f"no text for {len(missing)} document(s) with passages ({', '.join(missing[:3])})")
    wrong = next((p for p in passages if texts[p.doc][p.start:p.end] != p.text), None)
    if wrong is not None:
        raise IndexStateError(f"passage {wrong.id} is not the span {wrong.start}:{wrong.end} of its document's text")
    rows = sentence_rows(passages)
    if rows[-1] != len(sentences):
        raise IndexStateError(f"{rows[-1]} sentences in the passages but {len(sentences)} sentence vectors")
    return rows


UNREADABLE = {"sha256": "", "bytes": -1}  # the fingerprint of a file that could not be read (OSError)


def file_fingerprint(path: Path) -> dict:
    """{"sha256", "bytes"} of the file's content, read in steps of 1 MiB."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return {"sha256": h.hexdigest(), "bytes": size}


def bytes_fingerprint(data: bytes) -> dict:
    """`file_fingerprint` of a file whose content is `data`."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def readable_fingerprint(path: Path) -> dict:
    """`file_fingerprint`, or `UNREADABLE` when the file cannot be read."""
    try:
        return file_fingerprint(path)
    except OSError:
        return UNREADABLE


def _matches(path: Path, recorded: dict) -> bool:
    fingerprint = {"sha256": recorded.get("sha256"), "bytes": recorded.get("bytes")}
    if fingerprint["sha256"] == "" and fingerprint["bytes"] >= 0:  # skipped by type or size: the size is its fingerprint
        try:
            return path.stat().st_size == fingerprint["bytes"]
        except OSError:
            return False
    if fingerprint != UNREADABLE:
        try:
            if path.stat().st_size != fingerprint["bytes"]:  # no need to hash it
                return False
        except OSError:
            return False
    return readable_fingerprint(path) == fingerprint


def check_encoder(index: Index, name: str, dim: int) -> None:
    """IndexStateError unless an encoder called `name` giving `dim`-dimensional vectors is the index's."""
    m = index.manifest
    if dim != m.dim:
        raise IndexStateError(f"index at {index.location!r} has dimension {m.dim} (model {m.model!r}) but the "
                              f"embedder {name!r} gives {dim}; rebuild the index with that model")
    if name != m.model:
        raise IndexStateError(f"index at {index.location!r} was built with model {m.model!r}, not {name!r}; "
                              f"rebuild it with --model {name}")


def check_fresh(index: Index) -> None:
    """IndexStateError naming the source files that changed since `index` was built, if any."""
    changed = stale_files(index.manifest)
    if changed:
        raise IndexStateError(
            f"index at {index.location!r} is stale: {len(changed)} file(s) changed in {index.manifest.docs} since "
            f"it was built ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}); run `rag index` to update it")


def stale_files(manifest: Manifest) -> list[str]:
    """Source files added, changed or removed since the index was built ([] if its folder is gone).
    A file the build skipped is unchanged while its fingerprint matches the one recorded with it."""
    from rag.ingest.load import list_documents

    docs = Path(manifest.docs)
    if not docs.is_dir():
        return []
    current = dict(list_documents(docs, manifest.extra_docs))
    recorded = {**manifest.skipped, **manifest.files}
    return [d for d in sorted(set(current) | set(recorded))
            if d not in current or d not in recorded or not _matches(current[d], recorded[d])]


def source_file(manifest: Manifest, doc: str) -> Path | None:
    """The original file of indexed document `doc`, resolved; None unless it is a document of the
    index and lies inside its folder (no "..", no symlink out of the folder)."""
    if not isinstance(doc, str) or doc not in manifest.files:
        return None
    folder, rel = Path(manifest.docs), doc
    for prefix, path in manifest.extra_docs.items():
        if doc.startswith(prefix + "/"):
            folder, rel = Path(path), doc[len(prefix) + 1:]
    return file_inside(folder, rel)


def file_inside(folder: str | Path, rel: str) -> Path | None:
    """`folder`/`rel` resolved, when it is a file inside `folder` (no "..", no symlink out); else None."""
    try:
        root = Path(folder).resolve()
        path = (root / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return path if path.is_relative_to(root) and path != root and path.is_file() else None
