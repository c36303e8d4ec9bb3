"""`Searcher`: what the answerer needs from whatever finds its passages.

`rag.search.retriever.Retriever` implements it over an index; the LangChain baseline
(`rag.evaluate.baseline`) implements it with `None` for what it lacks (sentence vectors, term
statistics, aliases), and the answerer then scores without them. `embedder` and `clear_cache` serve
`rag eval`, which runs the same questions through each searcher. A protocol only: no behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.index.embed import Embedder
from rag.index.lexical import TermStats
from rag.search.aliases import Aliases
from rag.types import Passage, Query


class Searcher(Protocol):
    embedder: Embedder  # what encodes questions
    passages: Sequence[Passage]  # everything searched, in index order
    docs: Sequence[str]  # the documents searched (relative paths)
    years: dict  # doc -> its year or None

    @property
    def aliases(self) -> Aliases | None:
        """Other names for what the documents name, or None."""

    @property
    def term_stats(self) -> TermStats | None:
        """Document frequencies of the indexed terms, or None (every term then weighs the same)."""

    def retrieve(self, query: Query) -> list[Passage]:
        """The passages for a checked query, best first."""

    def embed_query(self, text: str) -> np.ndarray:
        """The (1, dim) vector of `text`."""

    def sentence_vectors(self, passage: Passage) -> np.ndarray | None:
        """The vectors of the passage's sentences (`split_sentences` order), or None."""

    def name_share(self, passage: Passage, needed: list[list[str]]) -> float:
        """Share of the names (`rag.search.names.needed_names`) that the passage mentions."""

    def named_years(self, question: str) -> set[int]:
        """Years named in the question that some document is of."""

    def document_text(self, doc: str) -> str | None:
        """The source text that spans index into, or None when it cannot be read."""

    def source_file(self, doc: str) -> Path | None:
        """The original file of searched document `doc` (inside its documents folder), or None."""

    def first_passages(self) -> list[Passage]:
        """Each document's first passage, in index order (what a list of the documents with their
        titles and years needs, without reading every passage of a big index)."""

    def clear_cache(self) -> None:
        """Forget cached question vectors (so a benchmark measures encoding too)."""
