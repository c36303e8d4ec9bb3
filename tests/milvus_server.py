"""A Milvus Lite gRPC server for tests: `milvus_server(data_dir)` starts `milvus-lite server` as a
separate process on 127.0.0.1 on a free port, waits until it answers, yields a `MilvusServer` (its
`uri(collection)` gives the `milvus://` URI of a collection there), and stops it on exit (`kill()`
stops it earlier, e.g. to test a server that goes away)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MilvusServer:
    port: int
    data_dir: Path
    process: subprocess.Popen = field(repr=False)
    host: str = "127.0.0.1"

    def uri(self, collection: str = "rag") -> str:
        return f"milvus://{self.host}:{self.port}/{collection}"

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def _command() -> list[str]:
    beside = Path(sys.executable).with_name("milvus-lite")  # this interpreter's, not another on PATH
    found = str(beside) if beside.exists() else shutil.which("milvus-lite")
    return [found] if found else [sys.executable, "-c", "from milvus_lite.cmdline import main; main()"]


def _answers(address: str) -> bool:
    import logging

    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    try:
        client = MilvusClient(uri=address, timeout=2)
        client.list_collections()
        client.close()
        return True
    except MilvusException:
        return False


@contextmanager
def milvus_server(data_dir: str | Path):
    """A running Milvus Lite server over `data_dir` (created), stopped on exit."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(data_dir.parent / f"{data_dir.name}.server.log", "wb")
    process = subprocess.Popen(_command() + ["server", "--data-dir", str(data_dir), "--host", "127.0.0.1",
                                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    server = MilvusServer(port, data_dir, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(server.address):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"milvus-lite server on port {port} did not start (exit {process.poll()}); "
                                   f"see {log.name}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        log.close()
