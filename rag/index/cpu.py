"""How a long-running app shares the CPUs between answering questions and building an index.

Left alone, every thread that runs torch gets its own team of intra-op threads (one per core it
sees), and OpenMP, OpenBLAS and faiss threads spin while they wait for work: four question threads
and a build on 2 cores can keep ten threads busy (more where a CPU quota hides how few cores there
are), and a 20 ms question was reported to take 500 ms beside a build. `SERVE_THREADS` (set in
the environment before numpy or torch is imported) and `serve_threads()` (at run time) give every
torch, ONNX Runtime, BLAS and faiss call one thread: questions run side by side in their own threads
instead. torch is not imported for it: `limit_torch()` applies the limit when an encoder loads torch,
and `intra_op_threads()` is what an ONNX Runtime session is given.
`background_priority()` lowers the scheduling priority of the calling thread (Linux only), for the
thread that builds, so that the kernel hands a core to a question first. Does not start threads,
build or search.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

# Read once by each library when it loads: set them (os.environ.setdefault) before importing numpy/torch.
SERVE_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
BACKGROUND_NICE = 10  # added to a background build thread's nice value (0 -> 10: about 1/10 of a core's share)


_threads: int | None = None  # what serve_threads asked for; None: each library's own default


def serve_threads(threads: int = 1) -> None:
    """Limit torch (intra-op and, when still possible, inter-op), ONNX Runtime, faiss and BLAS to
    `threads` threads per calling thread. Call once, before the first question or build."""
    global _threads
    _threads = threads
    if "torch" in sys.modules:  # else `limit_torch` does it when an encoder loads torch
        limit_torch()
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except (ImportError, AttributeError):
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass


def limit_torch() -> None:
    """Apply `serve_threads`' limit to torch (nothing when none was set). Encoders call it after they
    import torch."""
    if _threads is None:
        return
    import torch

    torch.set_num_threads(_threads)
    try:
        torch.set_num_interop_threads(_threads)
    except RuntimeError:  # only allowed before the first parallel work; the default is harmless then
        pass


def query_threads() -> int:
    """Threads one question's search may use: `serve_threads`' limit, else every core this process may
    run on (its CPU affinity, where the platform says)."""
    if _threads:
        return _threads
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def intra_op_threads() -> int:
    """Threads for an ONNX Runtime session: `serve_threads`' limit, else 0 (one per physical core)."""
    return _threads or 0


def thread_priority() -> int:
    """The calling thread's nice value (Linux, where each thread has its own; 0 elsewhere)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (OSError, AttributeError):
        return 0


def background_priority(step: int = BACKGROUND_NICE) -> bool:
    """Lower the calling thread's scheduling priority by `step` nice levels (Linux, where each thread
    has its own nice value; elsewhere nothing is changed). True when it was lowered. It cannot be
    raised again without privileges: call it only on a thread that does background work until it ends."""
    if not sys.platform.startswith("linux") or step <= 0:
        return False
    try:
        tid = threading.get_native_id()
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + step))
    except (OSError, AttributeError) as exc:  # e.g. a sandbox that forbids it: run at the usual priority
        log.debug("could not lower the priority of the build thread: %s", exc)
        return False
    return True
