"""The textbook LangChain pipeline, kept only as a yardstick for `rag eval` and the benchmark.

RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True) over each
file's raw text, LangChain's FAISS vector store (langchain-community) with the same embedding model,
plain similarity search. Passages come back as `Passage` records with exact spans so they are scored
the same way as ours. Needs the `compare` extra (langchain-community). Not used by the assistant.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

from rag.embed import Embedder
from rag.errors import RagError
from rag.load import list_files, read_text
from rag.types import Passage


class NaiveRetriever:
    """Same `search(question, k=...)` shape as `Retriever`, over the textbook LangChain pipeline."""

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

        docs = Path(docs)
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
        chunks = []
        for path in list_files(docs):
            rel = path.relative_to(docs).as_posix()
            chunks += splitter.split_documents([LCDocument(page_content=read_text(path), metadata={"doc": rel})])
        self.passages = [Passage(doc=c.metadata["doc"], start=c.metadata["start_index"],
                                 end=c.metadata["start_index"] + len(c.page_content), text=c.page_content)
                         for c in chunks]
        self.store = FAISS.from_documents(chunks, _Embeddings())

    def search(self, question: str, k: int = 5, mode: str = "naive", doc: str | None = None,
               year: int | None = None) -> list[Passage]:
        if not question.strip():
            return []
        hits = self.store.similarity_search_with_score(question, k=k)
        return [replace(Passage(doc=d.metadata["doc"], start=d.metadata["start_index"],
                                end=d.metadata["start_index"] + len(d.page_content), text=d.page_content),
                        score=float(-s)) for d, s in hits]
