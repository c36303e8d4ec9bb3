"""Build or update an index directory from a documents folder: load -> chunk -> embed -> store.

Incremental: files whose fingerprint is unchanged keep their passages and vectors, changed and new
files are re-chunked and re-embedded, deleted files are dropped; with nothing changed nothing is
written and no model is loaded. A previous index that cannot be reused (other model, dimension,
chunk settings or format, or corrupted) is rebuilt from scratch and the summary says why.
A build holds the index directory's lock file (`store.lock_path`) from reading the old index to the
swap, so a second build of the same directory, in any process, waits for the first and then finds
little or nothing left to do. Does not search, and does not lock readers out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from rag import lexical, store
from rag.chunk import ChunkSettings, chunk_document
from rag.embed import DEFAULT_MODEL, Embedder, SentenceTransformerEmbedder
from rag.errors import DocumentError, IndexStateError, RagError
from rag.load import list_files, parse, read_text
from rag.sentences import split_sentences
from rag.types import Passage

Progress = Callable[[str, int, int], None]  # (stage, done, total)
LOCK_TIMEOUT = 600.0  # seconds a build waits for another build of the same index directory
log = logging.getLogger(__name__)


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
    warnings: tuple[str, ...] = ()

    @property
    def wrote(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.rebuilt_because)

    def __str__(self) -> str:
        what = (f"{self.added} added, {self.changed} changed, {self.removed} removed, {self.unchanged} unchanged"
                if self.wrote else "nothing changed")
        why = f" (rebuilt: {self.rebuilt_because})" if self.rebuilt_because else ""
        return (f"{self.index_dir}: {self.files} files, {self.passages} passages, {self.embedded} embedded; "
                f"{what}{why}; {self.seconds:.2f}s")


def _reusable(old: store.StoredIndex | None, model: str, settings: ChunkSettings, reason: str,
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
def _locked(index_dir: Path, timeout: float, progress: Progress | None) -> Iterator[None]:
    """Hold the build lock of `index_dir`, first waiting up to `timeout` seconds for another build."""
    path = store.lock_path(index_dir)
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
    docs: str | Path = "seeds",
    index_dir: str | Path = "index",
    *,
    model: str | None = None,
    chunk_size: int = ChunkSettings.chunk_size,
    chunk_overlap: int = ChunkSettings.chunk_overlap,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> BuildSummary:
    """Index every `.txt`/`.md` file under `docs` into `index_dir`; returns what it did.

    Waits up to `lock_timeout` seconds while another build of `index_dir` runs (RagError after that),
    then decides what to do from the index that build left."""
    with _locked(Path(index_dir), lock_timeout, progress):
        return _build(Path(docs), Path(index_dir), model, ChunkSettings(chunk_size, chunk_overlap), embedder,
                      progress)


def _build(docs: Path, index_dir: Path, model: str | None, settings: ChunkSettings, embedder: Embedder | None,
           progress: Progress | None) -> BuildSummary:
    t0 = time.perf_counter()
    store.check_replaceable(index_dir)  # before any work: a build replaces the whole directory
    paths = list_files(docs)
    if not paths:
        raise DocumentError(f"no .txt or .md files in {str(docs)!r}")

    old, reason = None, ""
    if (index_dir / store.MANIFEST).exists() or index_dir.exists():
        try:
            old = store.load(index_dir)
        except IndexStateError as exc:
            reason = str(exc)
    if model is None:
        model = embedder.name if embedder else (old.manifest.model if old else DEFAULT_MODEL)
    reason = _reusable(old, model, settings, reason, embedder.dim if embedder else None)
    if reason and old is not None:
        old = None
    if not index_dir.exists():
        reason = ""  # a first build needs no excuse

    if old is not None and old.sentences is None:
        old, reason = None, "the index has no sentence vectors"
    previous: dict[str, list[tuple[Passage, np.ndarray, np.ndarray]]] = {}
    if old is not None:
        vectors = old.vectors()
        for i, p in enumerate(old.passages):
            previous.setdefault(p.doc, []).append((p, vectors[i], old.passage_sentences(i)))
    old_files = old.manifest.files if old else {}

    fingerprints, kept, fresh, warnings = {}, {}, [], []
    added = changed = 0
    for n, path in enumerate(paths, 1):
        rel = path.relative_to(docs).as_posix()
        try:
            fp = store.file_fingerprint(path)
            if old_files.get(rel) == fp and rel in previous:
                kept[rel] = previous[rel]
            else:
                fresh.extend(chunk_document(parse(rel, read_text(path)), settings))
                added, changed = (added + 1, changed) if rel not in old_files else (added, changed + 1)
            fingerprints[rel] = fp
        except (DocumentError, OSError) as exc:
            warnings.append(f"skipped {exc}")
        if progress:
            progress("read", n, len(paths))
    if not fingerprints:
        raise DocumentError(f"none of the {len(paths)} files in {str(docs)!r} could be read: {warnings[0]}")
    removed = len(set(old_files) - set(fingerprints))
    unchanged = len(kept)

    def summary(passages: int, embedded: int) -> BuildSummary:
        return BuildSummary(str(index_dir), len(fingerprints), added, changed, removed, unchanged, passages,
                            embedded, time.perf_counter() - t0, reason, tuple(warnings))

    if old is not None and not (added or changed or removed):
        return summary(len(old.passages), 0)

    by_doc = {d: list(rows) for d, rows in kept.items()}
    if fresh:
        embedder = embedder or SentenceTransformerEmbedder(model)
        sentence_texts = [[p.text[s:e] for s, e in split_sentences(p.text)] for p in fresh]
        texts = [p.context() for p in fresh] + [t for ts in sentence_texts for t in ts]
        encoded = embedder.encode(texts, progress=(lambda d, t: progress("embed", d, t)) if progress else None)
        row = len(fresh)
        for i, (p, ts) in enumerate(zip(fresh, sentence_texts)):
            by_doc.setdefault(p.doc, []).append((p, encoded[i], encoded[row:row + len(ts)]))
            row += len(ts)
    dim = embedder.dim if fresh else old.manifest.dim

    ordered = [r for d in sorted(by_doc) for r in sorted(by_doc[d], key=lambda r: (r[0].start, r[0].end))]
    passages = [p for p, _, _ in ordered]
    empty = np.zeros((0, dim), np.float32)
    vectors = np.vstack([v for _, v, _ in ordered]).astype(np.float32) if ordered else empty
    sentences = np.vstack([empty] + [s for _, _, s in ordered]).astype(np.float32)
    if progress:
        progress("save", 0, 1)
    bm25 = lexical.build([p.context() for p in passages])
    manifest = store.Manifest(model=model, dim=dim, chunk_size=settings.chunk_size,
                              chunk_overlap=settings.chunk_overlap, docs=str(docs.resolve()), files=fingerprints)
    store.save(index_dir, manifest, passages, vectors, bm25, sentences)
    if progress:
        progress("save", 1, 1)
    return summary(len(passages), len(fresh))
