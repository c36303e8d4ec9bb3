"""The one place that wires the stages: documents -> index -> retriever -> assistant.

`Pipeline.open` brings the index of a documents folder up to date when asked (incrementally: cheap
when nothing changed; a first build when there is none) and loads it once; `search` and `ask`
check every question once (`rag.query`) and hand the checked `Query` down. `refresh` rebuilds after
the documents changed and swaps the new index in under a lock while questions keep being answered
from the old one. The CLI, the web app, `rag eval` and the calibration script go through here and
nothing below it. Does not parse arguments, render, or hold any retrieval or answering logic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.answer.assistant import Assistant
from rag.answer.generate import Generator, OpenAICompatible  # noqa: F401 - for `rag ask --llm`
from rag.answer.searcher import Searcher
from rag.answer.weights import MIN_RELEVANCE  # noqa: F401 - for the calibration script
from rag.errors import IndexStateError, RagError
from rag.index.build import BuildSummary, build_index, update_index  # noqa: F401 - build_index for the CLI
from rag.index.embed import Embedder, SentenceTransformerEmbedder
from rag.index.factory import open_store
from rag.query import clean_history, make_query, precheck  # noqa: F401 - precheck for front ends
from rag.search.retriever import Retriever
from rag.settings import DEFAULT_DOCS, DEFAULT_INDEX, DEFAULT_K, DEFAULT_MODE, DEFAULT_MODEL, LOCK_TIMEOUT
from rag.types import Answer, Passage, Progress, Query

log = logging.getLogger(__name__)
Notify = Callable[[str], None]  # a one-line note for the person waiting ("building the index ...")


class Pipeline:
    """A searcher and the assistant over it, with the defaults every front end shares."""

    def __init__(self, searcher: Searcher, *, k: int = DEFAULT_K, mode: str = DEFAULT_MODE,
                 generator: Generator | None = None, min_relevance: float = MIN_RELEVANCE,
                 summary: BuildSummary | None = None):
        self.k, self.mode, self.generator, self.min_relevance = k, mode, generator, min_relevance
        self.summary = summary  # what the last build did, when this pipeline built
        self.lock = threading.RLock()  # held by a refresh (and by an upload around it)
        self._source: tuple[str, str, Embedder | None, Progress | None] | None = None
        self._set(searcher)

    def _set(self, searcher: Searcher) -> None:
        # One reference, swapped whole: a question in flight keeps the pair it started with.
        self._pair = (searcher, Assistant(searcher, k=self.k, mode=self.mode, generator=self.generator,
                                          min_relevance=self.min_relevance))

    @classmethod
    def open(cls, index: str | Path = DEFAULT_INDEX, docs: str | Path | None = None, *,
             default_docs: str | Path = DEFAULT_DOCS, update: bool = True, model: str | None = None,
             embedder: Embedder | None = None, keep_model: bool = False, progress: Progress | None = None,
             notify: Notify | None = None, lock_timeout: float = LOCK_TIMEOUT, **options) -> Pipeline:
        """The pipeline over `index`, kept up to date with the documents folder `docs` (None: the folder
        the index was built from, or `default_docs` when there is no index yet). With `update`, changed
        documents are indexed (incrementally) before the index is loaded, once; without, a stale index
        is refused. `keep_model` loads the embedding model once for builds and questions alike (a
        long-running app). `options` go to `Pipeline` (k, mode, generator, min_relevance)."""
        if keep_model and embedder is None:
            embedder = SentenceTransformerEmbedder(model or DEFAULT_MODEL)
        if not update:
            return cls(Retriever.load(index, embedder=embedder), **options)
        folder, first = (str(docs) if docs is not None else None), False
        if folder is None:
            store = open_store(index)
            try:
                folder = store.read_manifest().docs
            except IndexStateError:
                if store.exists() or not Path(default_docs).is_dir():
                    raise
                if notify:
                    notify(f"no index at {str(index)!r} yet; building it from {str(default_docs)!r}")
                folder, first = str(default_docs), True
            if not Path(folder).is_dir():  # the documents moved away: search what was indexed
                return cls(Retriever.load(index, embedder=embedder, check_sources=False), **options)
        summary, loaded = update_index(folder, index, model=model, embedder=embedder, progress=progress,
                                       lock_timeout=lock_timeout)
        if notify and summary.wrote and not first:
            notify(f"index at {str(index)!r} updated: {summary}")
        pipeline = cls(Retriever(loaded, embedder), summary=summary, **options)
        pipeline._source = (folder, str(index), embedder, progress)
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
        return Path(self._source[0])

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

    def warm_up(self) -> None:
        """Ask once, so that the first person does not pay for lazy set-up (model, tokenizer, caches);
        a corpus the question does not suit is no error (the first real question will say why)."""
        try:
            self.ask("What do the documents say about cooperation?")
        except RagError as exc:
            log.warning("warm-up question failed: %s", exc)

    def refresh(self, progress: Progress | None = None) -> BuildSummary:
        """Bring the index up to date with its documents folder and swap it in (callers wait their turn)."""
        folder, index, embedder, default_progress = self._source or (str(self.docs_dir), "", None, None)
        with self.lock:
            summary, loaded = update_index(folder, index, embedder=embedder, progress=progress or default_progress)
            self.summary = summary
            self._set(Retriever(loaded, embedder))
        return summary
