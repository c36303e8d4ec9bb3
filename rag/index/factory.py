"""`open_store`: the `Store` implementation for a location, picked in one place.

Today every location is a local index directory (`rag.index.local`); a server-backed store is
chosen here by its URI when it comes, its library imported only inside its own module.
"""

from __future__ import annotations

from pathlib import Path

from rag.index.local import LocalStore
from rag.index.store import Store


def open_store(location: str | Path) -> Store:
    """The store at `location`."""
    return LocalStore(location)
