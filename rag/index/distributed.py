"""Reading, chunking and embedding a build on Ray workers: the same index as a build in one process.

`RayExecutor` is the build's executor (`rag.index.build.Executor`) for `build_index(..., ray=...)` and
`rag index --ray [ADDRESS]`. Files are read, converted and chunked in Ray tasks, a few files each
(`rag.index.sources.scan_file`, the very function a build in one process runs; the outcomes are
gathered in file order, so the passages are the same). Texts are embedded by one actor per CPU of the
cluster, each loading the encoder once (`document_embedder(model)`: OpenVINO for the default model,
one thread per actor, or a picklable `embedder=` sent to every worker), in steps of `EMBED_STEP` texts
with at most two steps queued per actor; the vectors come back in order (the encoder's own results
for the same texts: the same bits as one process's on the same kind of CPU). The build (old index, manifest, writing to the
store) stays in the calling process; only `scan` and `encode` travel.

Ray is the optional `cluster` extra, imported only here: without it, one line naming the extra. No
address (True or "") starts a local Ray of one worker per core, quiet (no dashboard, no worker logs
on this console, Ray's own log lines below errors hidden), its workers at this process's priority,
shut down after the build; an address (`ray://HOST:10001`, `HOST:6379`, "auto") joins that cluster
for the build, whose workers must see the documents folder at the same path (a shared file system)
and have this package installed. A Ray this process has already joined (`ray.init` by the caller)
is used as it is and left running.
Does not decide what to rebuild, and does not write the index.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from rag.errors import RagError
from rag.index.factory import CLUSTER_EXTRA, quiet_grpc
from rag.index.sources import Scan, scan_file

log = logging.getLogger(__name__)

EMBED_STEP = 256  # texts per actor call (the in-process build's progress step)
LOCAL_STARTS = 2  # a local Ray whose node did not come up in Ray's 30 s (seen once, on a cold machine) is started again
QUEUED = 2  # steps waiting per actor, so none idles while the driver gathers
FILES_PER_TASK = 8  # at most; fewer when there are few files, so every worker gets some
WAIT_S = 0.2  # how often the finished reading tasks are gathered


def _ray():
    quiet_grpc()
    try:
        import ray
    except ImportError:
        raise RagError(f"--ray needs Ray, which is not installed: {CLUSTER_EXTRA}") from None
    return ray


class RayExecutor:
    """`scan` and `encode` on Ray; `address` None or "" for a local Ray, else a cluster's address.
    Joins Ray when the build first reads (even one that then finds nothing changed: the files are
    read on the workers) and leaves it on `__exit__`."""

    def __init__(self, address: str | None = None):
        if address and os.path.isdir(address):  # `rag index --ray DOCS`: argparse took DOCS for the address
            raise RagError(f"the Ray address {address!r} is a folder (on the command line, put the documents "
                           "folder first: rag index DOCS --ray)")
        self.ray = _ray()
        self.address = address or None
        self.joined = False  # whether this executor called ray.init (and so calls ray.shutdown)

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc) -> None:
        if self.joined:
            self.joined = False
            self.ray.shutdown()

    def _connect(self):
        ray = self.ray
        if ray.is_initialized():
            return ray
        quiet = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                     configure_logging=True)
        for attempt in range(1 if self.address else LOCAL_STARTS):
            try:
                if self.address is None:
                    # workers at this process's priority (Ray's default nice 15 starves them beside other work)
                    ray.init(address="local", num_cpus=_cores(), _system_config={"worker_niceness": 0}, **quiet)
                else:
                    ray.init(address=self.address, **quiet)
                break
            except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
                if self.address is None and attempt + 1 < LOCAL_STARTS:
                    log.info("a local Ray did not start (%s); starting it again", _line(exc))
                    ray.shutdown()
                    continue
                where = f"Ray at {self.address!r}" if self.address else "a local Ray"
                raise RagError(f"could not start or join {where}: {_line(exc)}") from None
        self.joined = True
        return ray

    def scan(self, found: list[tuple[str, Path]], old_files: dict, max_bytes: int | None, settings,
             progress=None) -> Scan:
        if progress:
            progress("read", 0, len(found))  # starting Ray takes seconds: say what is coming
        ray = self._connect()
        task = ray.remote(num_cpus=1)(_scan_files)
        per_task = max(1, min(FILES_PER_TASK, -(-len(found) // (2 * _workers(ray)))))
        batches = [[(rel, str(path), old_files.get(rel)) for rel, path in found[i:i + per_task]]
                   for i in range(0, len(found), per_task)]
        pending = {task.remote(batch, max_bytes, settings): i for i, batch in enumerate(batches)}
        results: list = [None] * len(batches)
        done = 0
        while pending:  # what is ready every WAIT_S, so many tasks cost no quadratic waiting
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=WAIT_S)
            for ref in ready:
                i = pending.pop(ref)
                results[i] = _get(ray, ref)
                done += len(batches[i])
            if ready and progress:
                progress("read", done, len(found))
        out = Scan()
        for outcomes in results:
            for one in outcomes:
                out.add(one)
        return out

    def encode(self, embedder, model: str, texts: list[str], progress=None) -> np.ndarray:
        ray = self._connect()
        if embedder is not None:
            try:
                blob = ray.put(ray.cloudpickle.dumps(embedder))
            except Exception as exc:  # noqa: BLE001 - pickling raises TypeError, PicklingError, AttributeError...
                raise RagError(f"the embedder {type(embedder).__name__} cannot be sent to the Ray workers "
                               f"(it does not pickle: {_line(exc)}); pass model= instead") from None
        else:
            blob = None
        n = min(_workers(ray), max(1, -(-len(texts) // EMBED_STEP)))
        actor = ray.remote(num_cpus=1)(_Encoder)
        actors = [actor.remote(model, blob) for _ in range(n)]
        steps = list(range(0, len(texts), EMBED_STEP))
        parts: list = [None] * len(steps)
        if progress:
            progress("embed", 0, len(texts))
        pending: dict = {}
        queued = {i: 0 for i in range(n)}
        done = next_step = 0
        try:
            while next_step < len(steps) or pending:
                for a in range(n):  # keep every actor QUEUED steps ahead
                    while queued[a] < QUEUED and next_step < len(steps):
                        start = steps[next_step]
                        pending[actors[a].encode.remote(texts[start:start + EMBED_STEP])] = (next_step, a)
                        queued[a] += 1
                        next_step += 1
                [ref], _ = ray.wait(list(pending), num_returns=1)
                step, a = pending.pop(ref)
                queued[a] -= 1
                parts[step] = _get(ray, ref)
                done += len(parts[step])
                if progress:
                    progress("embed", done, len(texts))
        finally:
            for a in actors:
                ray.kill(a)
        return np.vstack(parts) if parts else np.zeros((0, 0), np.float32)


class _Encoder:
    """A Ray actor: the encoder, loaded once, with the threads of the CPUs Ray gave it."""

    def __init__(self, model: str, blob: bytes | None):
        import ray

        from rag.index.cpu import serve_threads

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        serve_threads(max(1, int(cpus)))
        if blob is not None:
            self.embedder = ray.cloudpickle.loads(blob)
        else:
            from rag.index.embed import document_embedder

            self.embedder = document_embedder(model)

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder.encode(texts), dtype=np.float32)


def _scan_files(batch: list[tuple[str, str, dict | None]], max_bytes: int | None, settings) -> list:
    """A Ray task: `scan_file` for each (doc, path, old fingerprint), in order. A worker that cannot see
    the documents' folder says so instead of skipping every file as unreadable."""
    for folder in {str(Path(path).parent) for _, path, _ in batch}:
        if not os.path.isdir(folder):
            import socket

            raise RagError(f"the Ray worker on {socket.gethostname()} cannot see the folder {folder!r}: "
                           "a cluster needs the documents on a shared file system, at the same path")
    return [scan_file(rel, Path(path), old, max_bytes, settings) for rel, path, old in batch]


def _get(ray, ref):
    """`ray.get(ref)`; a worker's RagError raised as it is, any other failure as one RagError line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, RagError):
            raise RagError(str(cause)) from None
        raise RagError(f"a Ray worker failed: {_line(cause or exc)}") from None
    except ray.exceptions.RayError as exc:
        raise RagError(f"a Ray worker failed: {_line(exc)}") from None


def _line(exc: BaseException) -> str:
    """The most telling line of an exception: its last non-empty one (Ray's carry a traceback first)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return f"{type(exc).__name__}: {text}" if text and type(exc).__name__ not in text else text or type(exc).__name__


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _workers(ray) -> int:
    """The CPUs of the cluster: one task or actor each."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
