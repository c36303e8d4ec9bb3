"""The Milvus store (`MilvusStore`, selected by a `milvus:` URI in `rag.index.factory`): the index in
Milvus collections (a server, or a Milvus Lite file), searched the same way as the local index.
pymilvus is imported only here. `client`: URIs, connections, one-line errors; `schema`: the
collections of a generation; `index`: a loaded generation; `store`: saving and loading generations."""

import pymilvus  # noqa: F401 - without the cluster extra this fails here, and the factory says which extra

from rag.index.milvus.store import MilvusStore

__all__ = ["MilvusStore"]
