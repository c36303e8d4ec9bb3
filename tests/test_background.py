"""rag.index.background.Refresher and rag.index.cpu: refreshes run on one background thread at a lower
priority, requests made meanwhile are served together by one more run, the status says how far it got,
failures reach every caller; and the CPU settings the web app serves with."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from rag.index import cpu
from rag.index.background import Refresher, RefreshStatus


class Runs:
    """A refresh that records its calls and waits at a gate while `hold` is set."""

    def __init__(self):
        self.calls, self.threads = 0, []
        self.gate, self.started = threading.Event(), threading.Event()
        self.fail: Exception | None = None

    def __call__(self, progress):
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        progress("read", 1, 1)
        self.started.set()
        assert self.gate.wait(10)
        progress("embed", 50, 200)
        time.sleep(0.05)
        progress("embed", 100, 200)
        if self.fail:
            raise self.fail
        return f"summary {self.calls}"


@pytest.fixture
def runs():
    runs = Runs()
    yield runs
    runs.gate.set()


def test_a_request_returns_at_once_and_runs_on_the_background_thread(runs):
    refresher = Refresher(runs, priority=lambda: None)
    assert not refresher.status().busy and str(refresher.status()) == "idle"
    t0 = time.monotonic()
    future = refresher.request()
    assert time.monotonic() - t0 < 0.5 and not future.done()
    assert runs.started.wait(5)
    status = refresher.status()
    assert status.running and status.stage == "read" and status.busy
    runs.gate.set()
    assert future.result(5) == "summary 1" and runs.threads == ["rag-refresh"]
    assert refresher.wait_idle(5) and refresher._thread is None  # the thread ends when there is nothing to do


def test_requests_made_during_a_run_are_served_together_by_one_more(runs):
    refresher = Refresher(runs, priority=lambda: None)
    first = refresher.request()
    assert runs.started.wait(5)
    later = [refresher.request() for _ in range(3)]
    assert refresher.status().waiting == 3
    runs.gate.set()
    assert first.result(5) == "summary 1"
    assert [f.result(5) for f in later] == ["summary 2"] * 3 and runs.calls == 2


def test_the_status_estimates_the_time_left_while_embedding():
    seen = []

    def run(progress):
        progress("read", 3, 3)
        time.sleep(0.2)
        progress("embed", 100, 400)  # a quarter done after ~0.2 s: about 0.6 s left
        seen.append(refresher.status())
        return "ok"

    refresher = Refresher(run, priority=lambda: None)
    refresher.request().result(5)
    [status] = seen
    assert status.running and (status.done, status.total) == (100, 400)
    assert 0.3 < status.left < 3 and "embedding passages 100/400, about 1 s left" == str(status)


def test_a_failure_reaches_every_caller_and_on_done_runs_first(runs):
    runs.fail = OSError(28, "No space left on device")
    order = []
    refresher = Refresher(runs, priority=lambda: None)
    future = refresher.request(on_done=lambda result, error: order.append(("done", result, error)))
    future.add_done_callback(lambda f: order.append(("future",)))
    runs.gate.set()
    with pytest.raises(OSError, match="No space left"):
        future.result(5)
    assert order[0] == ("done", None, runs.fail) and order[1] == ("future",)
    assert refresher.wait_idle(5) and "the last update failed: [Errno 28] No space left" in str(refresher.status())
    runs.fail = None
    assert refresher.request().result(5) == "summary 2" and refresher.status().error == ""


def test_a_broken_progress_callback_does_not_fail_the_refresh(runs):
    def broken(stage, done, total):
        raise ValueError("display gone")

    runs.gate.set()
    assert Refresher(runs, priority=lambda: None).request(broken).result(5) == "summary 1"


def test_the_worker_lowers_its_own_priority_first(runs):
    lowered = []
    refresher = Refresher(runs, priority=lambda: lowered.append(threading.current_thread().name))
    runs.gate.set()
    refresher.request().result(5)
    assert lowered == ["rag-refresh"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_background_priority_lowers_only_the_calling_thread():
    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    result = {}

    def worker():
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        result["lowered"] = cpu.background_priority()
        result["change"] = os.getpriority(os.PRIO_PROCESS, tid) - before

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5)
    assert result["lowered"] and result["change"] == min(cpu.BACKGROUND_NICE, 19 - main_before)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before


def test_serve_threads_gives_torch_one_thread():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        cpu.serve_threads()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert set(cpu.SERVE_THREADS) == {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}


def test_refresh_status_reads_well():
    assert str(RefreshStatus()) == "idle"
    assert str(RefreshStatus(waiting=1)) == "starting"
    assert str(RefreshStatus(True, 0, "save", 0, 1)) == "saving the index"
    assert str(RefreshStatus(True, 0, "read", 2, 5)) == "reading files 2/5"
    assert str(RefreshStatus(True, 0, "read", 5, 5)) == "embedding passages"  # until the first step is done
