"""The one place that wires the stages: documents -> index -> retriever -> assistant.

`Pipeline.open` brings the index of a documents folder up to date when asked (incrementally: cheap
when nothing changed; a first build when there is none) and loads it once; with `background`, an
index that is already there is served at once and brought up to date on a background thread (an app
restarted after a crash answers from the index it had while it catches up). `search` and `ask` check
every question once (`rag.query`) and hand the checked `Query` down. `refresh` rebuilds after the
documents changed, warms the new index up and swaps it in under a lock while questions keep being
answered from the old one; `refresh_in_background` does the same on one background thread at a lower
priority (`rag.index.background`) and returns at once, and `indexing` says how far it got. An
optional reader (`rag.answer.reader`) is made once and shared by every assistant a refresh makes. The CLI,
the web app, `rag eval` and the calibration script go through here and nothing below it. Does not
parse arguments, render, or hold any retrieval or answering logic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Literal, NamedTuple

from rag.answer.assistant import Assistant
from rag.answer.generate import Generator, OpenAICompatible  # noqa: F401 - for `rag ask --llm`
from rag.answer.reader import CrossEncoderReader, Reader, as_reader
from rag.answer.searcher import Searcher
from rag.answer.weights import MIN_RELEVANCE  # noqa: F401 - for the calibration script
from rag.errors import IndexStateError, RagError
from rag.index.background import Done, Refresher, RefreshStatus
from rag.index.build import BuildSummary, build_index, update_index  # noqa: F401 - build_index for the CLI
from rag.index.embed import Embedder, query_embedder
from rag.index.factory import open_store
from rag.index.store import FORMAT_VERSION, Store, stale_files
from rag.query import clean_history, make_query, precheck  # noqa: F401 - precheck for front ends
from rag.search.retriever import Retriever
from rag.settings import DEFAULT_DOCS, DEFAULT_INDEX, DEFAULT_K, DEFAULT_MODE, DEFAULT_MODEL, LOCK_TIMEOUT
from rag.types import Answer, Passage, Progress, Query

log = logging.getLogger(__name__)
Notify = Callable[[str], None]  # a one-line note for the person waiting ("building the index ...")
UPLOADS_PREFIX = "uploads"  # the documents of an uploads folder are named "uploads/..."
WARM_UP_QUESTION = "What do the documents say about cooperation?"


def load_reader(reader: Reader | str | object) -> Reader | None:
    """`reader` (a CrossEncoder's name or folder, or an object, as `rag.answer.reader.as_reader` takes)
    loaded now; InputError naming it when it cannot be."""
    found = as_reader(reader)
    return found.load() if isinstance(found, CrossEncoderReader) else found


class Pipeline:
    """A searcher and the assistant over it, with the defaults every front end shares."""

    def __init__(self, searcher: Searcher, *, k: int = DEFAULT_K, mode: str = DEFAULT_MODE,
                 generator: Generator | None = None, min_relevance: float = MIN_RELEVANCE,
                 summary: BuildSummary | None = None, reader: Reader | str | object | None = None):
        self.k, self.mode, self.generator, self.min_relevance = k, mode, generator, min_relevance
        self.reader = as_reader(reader)  # a name or folder is loaded on the first question (`rag.answer.reader`)
        self.summary = summary  # what the last build did, when this pipeline built
        self.lock = threading.RLock()  # held by a refresh, from the build to the swap
        self._source: _Source | None = None
        self._refresher = Refresher(self.refresh)  # its thread starts on the first request
        self.updating: Future | None = None  # the background update `open(background=True)` started
        self._pair = self._make_pair(searcher)  # one reference, swapped whole: a question in flight
        # keeps the pair it started with

    def _make_pair(self, searcher: Searcher) -> tuple[Searcher, Assistant]:
        return searcher, Assistant(searcher, k=self.k, mode=self.mode, generator=self.generator,
                                   min_relevance=self.min_relevance, reader=self.reader)

    @classmethod
    def open(cls, index: str | Path = DEFAULT_INDEX, docs: str | Path | None = None, *,
             default_docs: str | Path | None = DEFAULT_DOCS, update: bool = True, model: str | None = None,
             embedder: Embedder | None = None, keep_model: bool = False, progress: Progress | None = None,
             notify: Notify | None = None, lock_timeout: float = LOCK_TIMEOUT, background: bool = False,
             uploads: str | Path | None | Literal[False] = None, store: str | Store | None = None,
             **options) -> Pipeline:
        """The pipeline over `index`, kept up to date with the documents folder `docs` (None: the folder
        the index was built from, or `default_docs` when there is no index yet; with neither, a missing
        index is an error; an index whose documents did not change is loaded without waiting for any
        build, and a corrupted one is refused: `rag index` rebuilds it). With `update`, changed
        documents are indexed (incrementally) before the index is loaded, once; without, a stale index
        is refused. With `background` (and `update`), an index of that folder that loads is served as
        it is and, when its documents changed, updated by `refresh_in_background`, started before this
        returns (its Future is `updating`; None when nothing changed); a missing, broken or other
        folder's index is built first as without it.
        `embedder` encodes questions and builds alike; without it, builds encode with the model's
        `document_embedder` (made once per process) and questions with its `query_embedder`, loaded
        once with `keep_model` (a long-running app), else by each retriever. `uploads` is a folder
        indexed with `docs`, its files named "uploads/..." (`upload_dir`; None: the one the index was
        built with, if any; False: none, so an index of `docs` alone).
        `store`, when given, is where the index is instead of `index` (a directory, a Milvus URI such as
        `milvus://HOST:PORT/COLLECTION` or `milvus:PATH.db`, or a `Store`; `rag.index.factory`).
        `options` go to `Pipeline` (k, mode, generator, min_relevance, reader)."""
        if options.get("reader") is not None:  # a reader that cannot be loaded is named before any index work
            options["reader"] = load_reader(options["reader"])
        store = open_store(store if store is not None else index)
        builder = embedder  # None: the model's document encoder, made once per process
        if keep_model and embedder is None:
            embedder = query_embedder(model or DEFAULT_MODEL)
        if not update:
            return cls(Retriever.load(store=store, embedder=embedder), **options)
        folder, first = (str(docs) if docs is not None else None), False
        extra = (None if uploads is None else {} if uploads is False  # None: the index's own
                 else {UPLOADS_PREFIX: str(Path(uploads).resolve())})
        if folder is None:  # the index as it is, updated only when its documents changed
            try:
                manifest = store.read_manifest()
            except IndexStateError:
                if store.exists() or default_docs is None or not Path(default_docs).is_dir():
                    raise
                if notify:
                    notify(f"no index at {store.location!r} yet; building it from {str(default_docs)!r}")
                folder, first = str(default_docs), True
            else:
                folder, changed = manifest.docs, stale_files(manifest)  # [] when the documents are gone
                if extra is not None and extra != manifest.extra_docs:
                    changed = changed or ["its extra folders"]
                older = manifest.format_version != FORMAT_VERSION and Path(folder).is_dir()
                if not changed and not older:  # loaded as it is, without waiting for any build's lock
                    pipeline = cls(Retriever.load(store=store, embedder=embedder, check_sources=False), **options)
                    if Path(folder).is_dir():
                        pipeline._source = _Source(folder, store, embedder, builder, progress, manifest.extra_docs)
                    return pipeline
                if notify and older:
                    notify(f"index at {store.location!r} has format version {manifest.format_version}, this rag reads "
                           f"{FORMAT_VERSION}; rebuilding it from {folder}")
                elif notify:
                    notify(f"index at {store.location!r} is stale ({len(changed)} changed in {folder}: "
                           f"{', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}); updating it")
        if background and not first:
            served = _as_it_is(store, folder, extra, embedder)
            if served is not None:
                manifest = served.index.manifest
                pipeline = cls(served, **options)
                pipeline._source = _Source(folder, store, embedder, builder, progress, manifest.extra_docs)
                if manifest.format_version != FORMAT_VERSION or stale_files(manifest):
                    pipeline.updating = pipeline.refresh_in_background()
                return pipeline
        summary, loaded = update_index(folder, store, model=model, embedder=builder, progress=progress,
                                       lock_timeout=lock_timeout, extra_docs=extra)
        pipeline = cls(Retriever(loaded, embedder), summary=summary, **options)
        pipeline._source = _Source(folder, store, embedder, builder, progress, loaded.manifest.extra_docs)
        return pipeline

    @property
    def retriever(self) -> Searcher:
        return self._pair[0]

    @property
    def assistant(self) -> Assistant:
        return self._pair[1]

    @property
    def docs_dir(self) -> Path:
        """The documents folder this pipeline indexes (IndexStateError when it was not opened from one)."""
        if self._source is None:
            raise IndexStateError("this pipeline was not opened from a documents folder")
        return Path(self._source.docs)

    @property
    def upload_dir(self) -> Path:
        """Where the web chat saves uploads: the uploads folder when the pipeline has one, else the
        documents folder (IndexStateError when it was not opened from one)."""
        folder = self.docs_dir
        return Path(self._source.extra[UPLOADS_PREFIX]) if UPLOADS_PREFIX in self._source.extra else folder

    def source_file(self, doc: str) -> Path | None:
        """The original file of indexed document `doc`, inside the documents (or uploads) folder; None
        for anything else."""
        return self.retriever.source_file(doc)

    @property
    def docs(self) -> tuple[str, ...]:
        return tuple(self.retriever.docs)

    @property
    def years(self) -> list[int]:
        return sorted({y for y in self.retriever.years.values() if y})

    def describe(self) -> str:
        """One line about the index: documents and passages."""
        searcher = self.retriever
        return f"{len(searcher.docs)} documents, {len(searcher.passages)} passages"

    def query(self, question: object, *, k: object = None, mode: object = None, doc: object = None,
              year: object = None) -> Query:
        """The checked query (InputError names what is wrong), with this pipeline's defaults."""
        return make_query(question, k=self.k if k is None else k, mode=mode or self.mode, doc=doc, year=year,
                          docs=self.docs, years=self.years)

    def search(self, question: object, **settings) -> list[Passage]:
        searcher, _ = self._pair
        return searcher.retrieve(self.query(question, **settings))

    def ask(self, question: object, history: Sequence[Sequence[object]] | None = (), **settings) -> Answer:
        _, assistant = self._pair
        return assistant.answer(self.query(question, **settings), clean_history(history))

    def warm_up(self, language: bool = True) -> None:
        """Ask once, so that the first person does not pay for lazy set-up (model, tokenizer, caches);
        a corpus the question does not suit is no error (the first real question will say why). With
        `language`, the language pipeline (spaCy), which only some questions need, is loaded too (the
        web chat loads it on a thread of its own once it serves: `warm_up_language`)."""
        if language:
            warm_up_language()
        try:
            self.ask(WARM_UP_QUESTION)
        except RagError as exc:
            log.warning("warm-up question failed: %s", exc)

    def refresh(self, progress: Progress | None = None) -> BuildSummary:
        """Bring the index up to date with its documents folder, warm it up and swap it in (callers
        wait their turn)."""
        source = self._source or _Source(str(self.docs_dir), "", None, None, None, {})
        with self.lock:
            summary, loaded = update_index(source.docs, source.index, embedder=source.builder,
                                           progress=progress or source.progress, extra_docs=source.extra)
            pair = self._make_pair(Retriever(loaded, source.embedder))
            self._warm(pair)
            self.summary, self._pair = summary, pair
        return summary

    def refresh_in_background(self, progress: Progress | None = None, on_done: Done | None = None) -> Future:
        """`refresh` on the background thread; returns its Future (of the BuildSummary) at once. Asked
        while one runs, one more refresh follows it for all who asked meanwhile. `on_done(summary or
        None, error or None)` runs on that thread before the Future is resolved."""
        self.docs_dir  # noqa: B018 - IndexStateError now, not on the background thread
        return self._refresher.request(progress or self._source.progress, on_done)

    @property
    def indexing(self) -> RefreshStatus:
        """What the background refresh is doing (idle when none was asked for)."""
        return self._refresher.status()

    def _warm(self, pair: tuple[Searcher, Assistant]) -> None:
        """Ask `pair` once before it is swapped in, so that the first person after a refresh does not
        pay for its lazy set-up (aliases, names, term statistics); any failure is only logged."""
        searcher, assistant = pair
        try:
            years = sorted({y for y in searcher.years.values() if y})
            assistant.answer(make_query(WARM_UP_QUESTION, k=self.k, mode=self.mode, docs=tuple(searcher.docs),
                                        years=years), [])
        except Exception as exc:  # noqa: BLE001 - warming up is a courtesy; the index itself is fine
            log.warning("warm-up question on the new index failed: %s", exc)


class _Source(NamedTuple):
    """What a pipeline was opened from, for its refreshes."""

    docs: str
    index: Store
    embedder: Embedder | None  # questions
    builder: Embedder | None  # builds (None: the model's `document_embedder`)
    progress: Progress | None
    extra: dict  # prefix -> another folder indexed with `docs`


def _as_it_is(store: Store, folder: str, extra: dict | None, embedder: Embedder | None) -> Retriever | None:
    """A retriever over the index as it is on disk, or None when there is none that loads, it was
    built from another folder or with another model (those are built in the foreground)."""
    try:
        retriever = Retriever.load(store=store, embedder=embedder, check_sources=False)
    except (RagError, OSError) as exc:
        log.info("not serving the index at %r before updating it: %s", store.location, exc)
        return None
    manifest = retriever.index.manifest
    if Path(manifest.docs) != Path(folder).resolve() or (extra is not None and manifest.extra_docs != extra):
        return None
    return retriever


def warm_up_language() -> None:
    """Load the language pipeline (spaCy) now rather than at the first question that needs it; a
    question asked meanwhile on another thread waits for it (`rag.answer.language`)."""
    from rag.answer.language import pipeline as language_pipeline

    language_pipeline()
