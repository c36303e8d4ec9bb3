"""The textbook LangChain pipeline, kept only as a yardstick for `rag eval` and the benchmark.

RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True) over each
file's raw text, LangChain's FAISS vector store (langchain-community) with the same embedding model,
plain similarity search. Passages come back as `Passage` records with exact spans so they are scored
the same way as ours. It is a `Searcher` without sentence vectors, term statistics or aliases, so the
answerer works over it with what it has. Needs the `compare` extra (langchain-community). Not used
by the assistant itself.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.errors import DocumentError, RagError
from rag.index.embed import Embedder
from rag.index.store import file_inside
from rag.ingest.load import list_files, read_text, source_text
from rag.search.names import mention_share, words
from rag.types import Passage, Query


class NaiveRetriever:
    """The `Searcher` protocol over the textbook LangChain pipeline."""

    aliases = None  # no other names, term statistics or sentence vectors: the answerer does without
    term_stats = None

    def __init__(self, docs: str | Path, embedder: Embedder):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from langchain_community.vectorstores import FAISS
                from langchain_core.documents import Document as LCDocument
                from langchain_core.embeddings import Embeddings
        except ImportError:
            raise RagError("the naive baseline needs langchain-community: pip install 'rag-assistant[compare]'") from None
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        class _Embeddings(Embeddings):
            def embed_documents(self, texts):
                return embedder.encode(texts).tolist()

            def embed_query(self, text):
                return embedder.encode([text])[0].tolist()

        self.folder, self.embedder = Path(docs), embedder
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
        chunks = []
        for path in list_files(self.folder):
            rel = path.relative_to(self.folder).as_posix()
            try:
                text = read_text(path)  # the same text the index stores, for every format
            except DocumentError:
                continue  # the index skips it too
            chunks += splitter.split_documents([LCDocument(page_content=text, metadata={"doc": rel})])
        self.passages = [Passage(doc=c.metadata["doc"], start=c.metadata["start_index"],
                                 end=c.metadata["start_index"] + len(c.page_content), text=c.page_content)
                         for c in chunks]
        self.docs = tuple(sorted({p.doc for p in self.passages}))
        self.years = dict.fromkeys(self.docs)
        self.store = FAISS.from_documents(chunks, _Embeddings())

    def retrieve(self, query: Query) -> list[Passage]:
        """Plain similarity search (the query's mode, document and year are not supported)."""
        hits = self.store.similarity_search_with_score(query.text, k=query.k)
        return [replace(Passage(doc=d.metadata["doc"], start=d.metadata["start_index"],
                                end=d.metadata["start_index"] + len(d.page_content), text=d.page_content),
                        score=float(-s)) for d, s in hits]

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.encode([text])

    def sentence_vectors(self, passage: Passage) -> None:
        return None

    def name_share(self, passage: Passage, needed: list[list[str]]) -> float:
        return mention_share(words(passage.context()), needed)

    def named_years(self, question: str) -> set[int]:
        return set()

    def document_text(self, doc: str) -> str | None:
        return source_text(self.folder, doc)

    def source_file(self, doc: str) -> Path | None:
        return file_inside(self.folder, doc) if doc in self.docs else None

    def first_passages(self) -> list[Passage]:
        return [next(p for p in self.passages if p.doc == doc) for doc in dict.fromkeys(p.doc for p in self.passages)]

    def clear_cache(self) -> None:
        """Nothing is cached."""
