"""A retrieval-augmented question-answering assistant over a folder of text documents.

Public API: `build_index`, `Retriever`, `Assistant`, and the records `Passage`, `Citation`, `Answer`.
Heavy modules (FAISS, sentence-transformers, LangChain's splitters) load on first use, so
`import rag` stays cheap.
"""

from rag.errors import DocumentError, IndexStateError, RagError
from rag.types import Answer, Citation, Passage

__all__ = ["build_index", "Retriever", "Assistant", "Passage", "Citation", "Answer",
           "RagError", "DocumentError", "IndexStateError", "__version__"]
__version__ = "0.1.0"

_LAZY = {"build_index": "rag.build", "BuildSummary": "rag.build", "Retriever": "rag.retrieve",
         "Assistant": "rag.answer"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
