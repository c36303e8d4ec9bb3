"""A retrieval-augmented question-answering assistant over a folder of text documents.

Public API: `build_index`, `Retriever`, `Assistant`, `Pipeline` (all stages wired, as the CLI and
the web app use them), and the records `Passage`, `Citation`, `Answer`, `Query`. Heavy modules
(FAISS, sentence-transformers, LangChain's splitters) load on first use, so `import rag` stays cheap.

The packages follow the flow: `ingest` (files -> passages) -> `index` (encoders, stores, build) ->
`search` -> `answer` -> `pipeline` (the wiring point) -> `serve` (CLI, web rendering, uploads) and
`evaluate`.
"""

from rag.errors import DocumentError, IndexStateError, InputError, RagError
from rag.types import Answer, Citation, Passage, Query

__all__ = ["build_index", "Retriever", "Assistant", "Pipeline", "Passage", "Citation", "Answer", "Query",
           "RagError", "DocumentError", "IndexStateError", "InputError", "__version__"]
__version__ = "0.1.0"

_LAZY = {"build_index": "rag.index.build", "BuildSummary": "rag.index.build", "Retriever": "rag.search.retriever",
         "Assistant": "rag.answer.assistant", "Pipeline": "rag.pipeline"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
