"""`open_store`: the `Store` implementation for a location, picked in one place.

A location is a local index directory (`rag.index.local`, the default), or a Milvus URI
(`rag.index.milvus`): `milvus://HOST:PORT/COLLECTION` for a server, `milvus:PATH.db` for a Milvus Lite
file. pymilvus is imported only inside the Milvus store's module, and a missing `cluster` extra is a
one-line `RagError` naming it. Does not connect to anything or read an index.
"""

from __future__ import annotations

import os
from pathlib import Path

from rag.errors import RagError
from rag.index.local import LocalStore
from rag.index.store import Store

MILVUS = "milvus:"
CLUSTER_EXTRA = "pip install -e '.[cluster]'"


def quiet_grpc() -> None:
    """Keep gRPC's C-core log lines (fork notes, keepalive throttling) off the console: set before
    grpc is first imported (by pymilvus or ray); failures still raise. A value already set is kept."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def is_uri(location: object) -> bool:
    """True for a location that names a server-backed store rather than a local directory."""
    return isinstance(location, str) and location.startswith(MILVUS)


def open_store(location: str | Path | Store) -> Store:
    """The store at `location` (a `Store` is returned as it is)."""
    if not isinstance(location, (str, Path)):
        return location
    if is_uri(location):
        quiet_grpc()
        try:
            import pymilvus  # noqa: F401 - the cluster extra, checked here so a missing one is named at once
            from rag.index.milvus import MilvusStore
        except ImportError as exc:
            raise RagError(f"the Milvus store {location!r} needs pymilvus and milvus-lite ({exc.name} is not "
                           f"installed): {CLUSTER_EXTRA}") from None
        return MilvusStore(location)
    return LocalStore(location)
