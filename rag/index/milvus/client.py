"""Where a Milvus store is (its URI parsed) and how it is talked to: one client per store, made on
first use with a short connect timeout, every call's failure turned into one `RagError` line that
names the URI and what failed, and pymilvus's and Milvus Lite's own logging kept off the console.

URIs: `milvus://HOST:PORT/COLLECTION` (a server at http://HOST:PORT) and `milvus:PATH.db` or
`milvus:PATH.db/COLLECTION` (a Milvus Lite database folder, served in this process; collection "rag"
by default). The token comes from the environment (`MILVUS_TOKEN`), never from the URI. Does not
know what the collections hold.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError


CONNECT_TIMEOUT = 5.0  # seconds to reach the server before giving up
CALL_TIMEOUT = 300.0  # seconds for one call (a big insert or index build may take a while)
DEFAULT_COLLECTION = "rag"
TOKEN_ENV = "MILVUS_TOKEN"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")
_SERVER = re.compile(r"milvus://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})/(?P<name>[^/]*)/?")
_FILE = re.compile(r"milvus:(?!//)(?P<path>.*?\.db)(?:/(?P<name>[^/]*))?/?")


@dataclass(frozen=True)
class Location:
    uri: str  # as given, for messages
    address: str  # what pymilvus connects to: http://HOST:PORT or the .db folder's path
    collection: str  # the alias readers find the current generation under
    local: bool  # a Milvus Lite database folder on this machine

    @property
    def lock_path(self) -> Path:
        """A file on this machine that builds of this collection lock (so they take turns here only)."""
        key = f"{self.address}\0{self.collection}".encode("utf-8")
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return cache / "rag" / "locks" / f"milvus-{hashlib.sha256(key).hexdigest()[:24]}.lock"


def parse(uri: str) -> Location:
    """The location a Milvus URI names; a one-line RagError for a malformed one."""
    expected = "expected milvus://HOST:PORT/COLLECTION or milvus:PATH.db[/COLLECTION]"
    server, file = _SERVER.fullmatch(uri), _FILE.fullmatch(uri)
    if server:
        name, port = server["name"], int(server["port"])
        if not 0 < port < 65536:
            raise RagError(f"malformed Milvus URI {uri!r}: port {port} is not 1-65535 ({expected})")
        address, local = f"http://{server['host']}:{port}", False
    elif file and file["path"].strip() and not file["path"].endswith("/.db"):
        name = file["name"] if file["name"] is not None else DEFAULT_COLLECTION
        address, local = str(Path(file["path"]).expanduser().resolve()), True
    else:
        raise RagError(f"malformed Milvus URI {uri!r} ({expected})")
    if not _NAME.fullmatch(name or "") or "__" in name:
        raise RagError(f"malformed Milvus URI {uri!r}: collection {name!r} must be letters, digits and single "
                       f"underscores, starting with a letter or underscore ({expected})")
    return Location(uri, address, name, local)


def quiet() -> None:
    """Keep pymilvus's and Milvus Lite's logging (connection retries, tracebacks of errors this store
    reports itself in one line) off the console."""
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)  # its failures reach us as exceptions
    # a Milvus Lite file is served in this process: grpc logs a traceback for every call its server
    # does not implement (pymilvus asks for AllocTimestamp, then does without)
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)


def connect(where: Location):
    """A client of the Milvus at `where` (a RagError line when it cannot be reached)."""
    from pymilvus import MilvusClient

    quiet()
    if where.local:
        Path(where.address).parent.mkdir(parents=True, exist_ok=True)
    what = ("opening the Milvus Lite file (one process at a time: is another using it? For several, serve it with "
            "`milvus-lite server` and use a milvus:// URI)") if where.local else "connecting"
    with failing(where, what):
        client = MilvusClient(uri=where.address, token=os.environ.get(TOKEN_ENV, ""), timeout=CONNECT_TIMEOUT)
    quiet()  # pymilvus may set its level while connecting
    return client


@contextmanager
def failing(where: Location, what: str):
    """Turn a Milvus or gRPC failure inside the block into one RagError line naming `where` and `what`."""
    import grpc
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as exc:
        raise RagError(f"Milvus at {where.uri!r}: {what} failed: {_line(exc.message or str(exc))}") from None
    except grpc.RpcError as exc:
        detail = exc.details() if hasattr(exc, "details") else str(exc)
        raise RagError(f"Milvus at {where.uri!r}: {what} failed: {_line(str(detail))}") from None


def _line(message: str) -> str:
    first = next((line.strip() for line in str(message).splitlines() if line.strip()), "no reason given")
    return first[:300]
