"""Build or update an index directory from a documents folder: load -> chunk -> embed -> store.

Incremental: files whose fingerprint is unchanged keep their passages and vectors (none, for an empty
or headings-only file), changed and new files are re-chunked and re-embedded, deleted files are
dropped; with nothing changed nothing is written and no model is loaded. New passages and their
sentences are embedded in one stream, each distinct text once. Every document's text is
stored with the index, so citations are verified against what was indexed. A file that cannot be
indexed (an unknown type, undecodable, binary, damaged, encrypted, a scan, empty, unreadable, or over
the per-file size limit `max_file_bytes`) is skipped with one warning line (also logged) and recorded
in the manifest with its fingerprint and reason (`rag.index.sources`), so it is no change, and the
index not stale, until it changes. A previous index that cannot be reused (other
model, dimension, chunk settings or format, or corrupted) is rebuilt from scratch and the summary says why.
A build holds the store's lock file (`Store.lock_path`) from reading the old index to the swap, so a
second build of the same store, in any process, waits for the first and then finds little or nothing
left to do. `update_index` also returns the index it built or found, so a caller loads it once.
Reading, chunking and embedding go through an executor (`scan` and `encode`): `InProcess` here, or
Ray workers (`rag.index.distributed`, with `ray=`) for the same index. Does not search, and does not
lock readers out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from filelock import FileLock, Timeout

from rag.errors import DocumentError, IndexStateError, RagError
from rag.index.embed import Embedder, document_embedder
from rag.index.factory import open_store
from rag.index.sources import Scan, count_changes, scan
from rag.index.store import Index, Manifest, Store
from rag.ingest.chunk import ChunkSettings
from rag.ingest.load import list_documents
from rag.ingest.sentences import split_sentences
from rag.settings import (
    DEFAULT_DOCS,
    DEFAULT_INDEX,
    DEFAULT_MODEL,
    LOCK_TIMEOUT,
    MAX_FILE_BYTES,
)
from rag.types import Passage, Progress

log = logging.getLogger(__name__)
EMBED_STEP = 256  # texts a progress step embeds


@dataclass(frozen=True)
class BuildSummary:
    index_dir: str
    files: int
    added: int
    changed: int
    removed: int
    unchanged: int
    passages: int
    embedded: int
    seconds: float
    rebuilt_because: str = ""
    warnings: tuple[str, ...] = ()  # one line per skipped file, naming it and why
    skipped: tuple[tuple[str, str], ...] = ()  # (doc, reason) of every file not indexed, in file order

    @property
    def wrote(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.rebuilt_because)

    def __str__(self) -> str:
        what = (f"{self.added} added, {self.changed} changed, {self.removed} removed, {self.unchanged} unchanged"
                if self.wrote else "nothing changed")
        why = f" (rebuilt: {self.rebuilt_because})" if self.rebuilt_because else ""
        skipped = f" ({len(self.skipped)} skipped)" if self.skipped else ""  # `files` counts the indexed ones
        return (f"{self.index_dir}: {self.files + len(self.skipped)} files{skipped}, {self.passages} passages, "
                f"{self.embedded} embedded; "
                f"{what}{why}; {self.seconds:.2f}s")


class Executor(Protocol):
    """Where a build reads, chunks and embeds; either way the index is the same. A build holds it as a
    context manager (`__enter__`/`__exit__`: a Ray executor leaves Ray at the end if it joined)."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc) -> None: ...

    def scan(self, found: list[tuple[str, Path]], old_files: dict, max_bytes: int | None, settings: ChunkSettings,
             progress: Progress | None) -> Scan:
        """`rag.index.sources.scan`."""
        ...

    def encode(self, embedder: Embedder | None, model: str, texts: list[str], progress: Progress | None) -> np.ndarray:
        """The (len(texts), dim) vectors of `texts` by `embedder` (None: `model`'s `document_embedder`)."""
        ...


class InProcess:
    """The default executor: this process reads the files and loads the model (once, when needed)."""

    def __enter__(self) -> InProcess:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def scan(self, found, old_files, max_bytes, settings, progress) -> Scan:
        return scan(found, old_files, max_bytes, settings, progress)

    def encode(self, embedder, model, texts, progress) -> np.ndarray:
        return _encode(embedder or document_embedder(model), texts, progress)  # OpenVINO for the default model


def _executor(ray: bool | str | None) -> Executor:
    """The executor `ray=` asks for: None/False in this process, True/"" a local Ray, else a Ray address."""
    if ray is None or ray is False:
        return InProcess()
    from rag.index.distributed import RayExecutor

    return RayExecutor(None if ray is True else ray)


def _reusable(old: Index | None, model: str, settings: ChunkSettings, reason: str,
              dim: int | None) -> str:
    """Why `old` cannot be reused ('' if it can)."""
    if old is None:
        return reason
    m = old.manifest
    if m.model != model:
        return f"model changed from {m.model!r} to {model!r}"
    if dim is not None and dim != m.dim:
        return f"embedding dimension changed from {m.dim} to {dim} (model {model!r})"
    if (m.chunk_size, m.chunk_overlap) != (settings.chunk_size, settings.chunk_overlap):
        return (f"chunk settings changed from {m.chunk_size}/{m.chunk_overlap} "
                f"to {settings.chunk_size}/{settings.chunk_overlap}")
    return ""


@contextmanager
def _locked(store: Store, timeout: float, progress: Progress | None) -> Iterator[None]:
    """Hold the build lock of `store`, first waiting up to `timeout` seconds for another build."""
    path, index_dir = store.lock_path, store.location
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        log.warning("waiting for another build of %r to finish (lock file %r, up to %gs)",
                    str(index_dir), str(path), timeout)
        if progress:
            progress("wait", 0, 1)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise RagError(f"gave up after {timeout:g}s waiting for another build of {str(index_dir)!r} "
                           f"(lock file {str(path)!r})") from None
        if progress:
            progress("wait", 1, 1)
    try:
        yield
    finally:
        lock.release()


def build_index(
    docs: str | Path = DEFAULT_DOCS,
    index_dir: str | Path = DEFAULT_INDEX,
    *,
    model: str | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
    max_file_bytes: int | None = None,
    extra_docs: Mapping[str, str | Path] | None = None,
    store: str | Store | None = None,
    ray: bool | str | None = None,
) -> BuildSummary:
    """Index every document under `docs` (PDF, Word, HTML, text; `rag.ingest.formats`) into `index_dir`;
    returns what it did. `extra_docs` maps a prefix to another folder indexed with it (its files named
    "prefix/..."; e.g. the web chat's uploads; None: the index's own, {}: none). The model and the chunk settings not given are the
    index's own (a new index: all-MiniLM-L6-v2, 1000/320). Each skipped file is also logged as a warning.

    Waits up to `lock_timeout` seconds while another build of `index_dir` runs (RagError after that),
    then decides what to do from the index that build left. A file over `max_file_bytes` is skipped
    with a warning (None: the limit the index was built with, else `MAX_FILE_BYTES`). `store`, when
    given, is where the index goes instead of `index_dir`: a local directory, a Milvus URI
    (`milvus://HOST:PORT/COLLECTION`, `milvus:PATH.db`; `rag.index.factory`) or a `Store`. `ray`
    reads, chunks and embeds on Ray workers (`rag.index.distributed`), for the same index: True or ""
    a local Ray (one worker per core), an address (`ray://HOST:10001`, `HOST:6379`, "auto") a cluster;
    a Ray this process is already connected to is used as it is."""
    return update_index(docs, store if store is not None else index_dir, model=model, chunk_size=chunk_size,
                        chunk_overlap=chunk_overlap, embedder=embedder, progress=progress, lock_timeout=lock_timeout,
                        max_file_bytes=max_file_bytes, extra_docs=extra_docs, ray=ray)[0]


def update_index(docs: str | Path, index_dir: str | Path | Store, *, model: str | None = None,
                 chunk_size: int | None = None, chunk_overlap: int | None = None,
                 embedder: Embedder | None = None, progress: Progress | None = None,
                 lock_timeout: float = LOCK_TIMEOUT, max_file_bytes: int | None = None,
                 extra_docs: Mapping[str, str | Path] | None = None,
                 ray: bool | str | None = None) -> tuple[BuildSummary, Index]:
    """`build_index`, also returning the up-to-date index (loaded at most once)."""
    if max_file_bytes is not None and (isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, int)
                                       or max_file_bytes < 1):
        raise RagError(f"max_file_bytes of {max_file_bytes!r} must be a whole number of bytes, at least 1")
    if chunk_size is not None and chunk_overlap is not None:
        ChunkSettings(chunk_size, chunk_overlap)  # bad values are refused before any wait
    store = open_store(index_dir)
    extra = None if extra_docs is None else {
        prefix.strip("/"): str(Path(folder).resolve()) for prefix, folder in extra_docs.items()}
    executor = _executor(ray)  # a missing Ray extra is said before any wait
    with _locked(store, lock_timeout, progress), executor:
        summary, index = _build(Path(docs), extra, store, model, (chunk_size, chunk_overlap), embedder, progress,
                                max_file_bytes, executor)
    for warning in summary.warnings:
        log.warning("%s", warning)
    return summary, index


def _build(docs: Path, extra: dict | None, store: Store, model: str | None, chunking: tuple[int | None, int | None],
           embedder: Embedder | None, progress: Progress | None, max_bytes: int | None,
           executor: Executor) -> tuple[BuildSummary, Index]:
    t0 = time.perf_counter()
    store.check_replaceable()  # before any work: a build replaces the whole index
    if extra is None:  # the folders the index was built with (the web chat's uploads), if it is of `docs`
        recorded = _recorded(store)
        extra = recorded.extra_docs if recorded and Path(recorded.docs) == docs.resolve() else {}
    paths = list_documents(docs, extra)
    if not paths:
        raise DocumentError(f"no files in {str(docs)!r}")

    old, reason, recorded = None, "", None
    if store.exists():
        try:
            old = store.load()
            recorded = old.manifest
        except IndexStateError as exc:
            reason = str(exc)
            recorded = _recorded(store)  # a corrupted index is rebuilt with the settings it had
    if model is None:
        model = embedder.name if embedder else (recorded.model if recorded else DEFAULT_MODEL)
    size, overlap = chunking
    settings = ChunkSettings(
        size if size is not None else recorded.chunk_size if recorded else ChunkSettings.chunk_size,
        overlap if overlap is not None else recorded.chunk_overlap if recorded else ChunkSettings.chunk_overlap)
    reason = _reusable(old, model, settings, reason, embedder.dim if embedder else None)
    if reason and old is not None:
        old = None
    if not store.exists():
        reason = ""  # a first build needs no excuse

    if old is not None and old.passages and old.passage_sentences(0) is None:
        old, reason = None, "the index has no sentence vectors"
    previous: dict[str, list[tuple[Passage, np.ndarray, np.ndarray]]] = {}
    if old is not None:
        vectors = old.vectors()
        for i, p in enumerate(old.passages):
            previous.setdefault(p.doc, []).append((p, vectors[i], old.passage_sentences(i)))
    if old is not None and any(old.document_text(doc) is None for doc in previous):
        old, previous, reason = None, {}, "the index has no documents' texts"
    old_files = old.manifest.files if old else {}
    if max_bytes is None:  # the limit the index was built with: a raised limit stays raised
        max_bytes = (old.manifest.max_file_bytes if old else _recorded_limit(store)) or MAX_FILE_BYTES

    found = executor.scan(paths, old_files, max_bytes, settings, progress)
    fingerprints, skipped, fresh = found.files, found.skipped, found.fresh
    if not fingerprints:
        raise DocumentError(f"nothing to index in {str(docs)!r}: none of its {len(paths)} file(s) could be indexed "
                            f"({found.warnings[0]})")
    added, changed, removed, unchanged = count_changes(old_files, old.manifest.skipped if old else {},
                                                       fingerprints, skipped)

    def summary(passages: int, embedded: int) -> BuildSummary:
        return BuildSummary(store.location, len(fingerprints), added, changed, removed, unchanged, passages,
                            embedded, time.perf_counter() - t0, reason, tuple(found.warnings),
                            tuple((d, r["reason"]) for d, r in skipped.items()))

    if old is not None and not (added or changed or removed) and old.manifest.extra_docs == extra:
        return summary(len(old.passages), 0), old  # the limit is recorded when the index is next written

    by_doc = {d: list(previous.get(d, [])) for d in found.unchanged}
    doc_texts = {d: old.document_text(d) for d in by_doc if by_doc[d]}
    doc_texts.update((document.doc, document.text) for document in found.documents)
    dim = embedder.dim if embedder is not None else old.manifest.dim if old is not None else None
    if fresh:
        sentence_texts = [[p.text[s:e] for s, e in split_sentences(p.text)] for p in fresh]
        texts = [p.context() for p in fresh] + [t for ts in sentence_texts for t in ts]
        rows = {t: i for i, t in enumerate(dict.fromkeys(texts))}  # a sentence carried into the next passage: once
        encoded = executor.encode(embedder, model, list(rows), progress)[[rows[t] for t in texts]]
        dim = encoded.shape[1]
        row = len(fresh)
        for i, (p, ts) in enumerate(zip(fresh, sentence_texts)):
            by_doc.setdefault(p.doc, []).append((p, encoded[i], encoded[row:row + len(ts)]))
            row += len(ts)
    if dim is None:  # nothing to embed and no index to take the dimension from
        raise DocumentError(f"nothing to index in {str(docs)!r}: its files hold no text beyond headings")

    ordered = [r for d in sorted(by_doc) for r in sorted(by_doc[d], key=lambda r: (r[0].start, r[0].end))]
    passages = [p for p, _, _ in ordered]
    empty = np.zeros((0, dim), np.float32)
    vectors = np.vstack([v for _, v, _ in ordered]).astype(np.float32) if ordered else empty
    sentences = np.vstack([empty] + [s for _, _, s in ordered]).astype(np.float32)
    if progress:
        progress("save", 0, 1)
    manifest = Manifest(model=model, dim=dim, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
                        docs=str(docs.resolve()), files=fingerprints, skipped=skipped, max_file_bytes=max_bytes,
                        extra_docs=extra)
    index = store.save(manifest, passages, vectors, sentences, doc_texts)
    if progress:
        progress("save", 1, 1)
    return summary(len(passages), len(fresh)), index


def _recorded(store: Store) -> Manifest | None:
    try:
        return store.read_manifest()
    except IndexStateError:
        return None


def _recorded_limit(store: Store) -> int | None:
    try:
        return store.read_manifest().max_file_bytes
    except IndexStateError:
        return None


def _encode(embedder: Embedder, texts: list[str], progress: Progress | None) -> np.ndarray:
    """`embedder.encode(texts)`, in steps of `EMBED_STEP` texts when progress is shown."""
    step = EMBED_STEP if progress else max(1, len(texts))
    if progress:
        progress("embed", 0, len(texts))  # the first step takes a while: say what is coming
    parts = []
    for i in range(0, len(texts), step):
        parts.append(np.asarray(embedder.encode(texts[i:i + step]), dtype=np.float32))
        if progress:
            progress("embed", min(i + step, len(texts)), len(texts))
    return np.vstack(parts) if parts else np.zeros((0, embedder.dim), np.float32)
