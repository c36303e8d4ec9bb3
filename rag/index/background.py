"""Index refreshes on one background thread, one at a time, so that nobody waits for a build.

`Refresher(run)` calls `run(progress)` (a refresh of one index, which picks up every change in the
documents folder) on its own daemon thread, at a lower priority (`rag.index.cpu.background_priority`).
`request()` returns a Future at once; requests that arrive while a refresh runs are served together
by one more refresh after it. `status()` says what it is doing (stage, done/total, an estimate of
the time left while embedding) for a status line. Does not know what a refresh does, and does not
lock readers out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from rag.index.cpu import background_priority
from rag.types import Progress

log = logging.getLogger(__name__)
Done = Callable[[object, BaseException | None], None]  # (result or None, error or None)
_STAGES = {"wait": "waiting for another build", "read": "reading files", "embed": "embedding passages",
           "save": "saving the index"}


@dataclass(frozen=True)
class RefreshStatus:
    """A snapshot of the background refresh: idle, or a refresh running (and more requests waiting)."""

    running: bool = False
    waiting: int = 0  # requests not yet picked up by a running refresh
    stage: str = ""
    done: int = 0
    total: int = 0
    seconds: float = 0.0  # since the running refresh started
    left: float | None = None  # estimated seconds left, once embedding has made some progress
    error: str = ""  # the last refresh's error ('' when it succeeded)

    @property
    def busy(self) -> bool:
        return self.running or self.waiting > 0

    def __str__(self) -> str:
        if not self.busy:
            return "idle" + (f" (the last update failed: {self.error})" if self.error else "")
        if not self.running:
            return "starting"
        if self.stage == "read" and self.total and self.done >= self.total:
            return "embedding passages"  # the build reports its first step only once it is done
        what = _STAGES.get(self.stage, self.stage or "starting")
        if self.total and self.stage in ("read", "embed"):
            what += f" {self.done:,}/{self.total:,}"
        if self.left is not None:
            what += f", about {max(1, round(self.left)):,} s left"
        return what


class Refresher:
    """Runs `run(progress)` on a background thread whenever asked; at most one run at a time."""

    def __init__(self, run: Callable[[Progress | None], object], name: str = "rag-refresh",
                 priority: Callable[[], object] = background_priority):
        self._run, self._name, self._priority = run, name, priority
        self._lock = threading.Lock()
        self._queue: list[tuple[Future, Progress | None, Done | None]] = []
        self._thread: threading.Thread | None = None
        self._running = False
        self._stage, self._done, self._total = "", 0, 0
        self._started = self._embed_started = self._last = 0.0
        self._error = ""

    def request(self, progress: Progress | None = None, on_done: Done | None = None) -> Future:
        """Ask for a refresh; returns its Future at once. `progress` sees that refresh's stages;
        `on_done(result, error)` runs on the worker before the Future is resolved."""
        future: Future = Future()
        with self._lock:
            self._queue.append((future, progress, on_done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
        return future

    def status(self) -> RefreshStatus:
        with self._lock:
            if not self._running:
                return RefreshStatus(waiting=len(self._queue), error=self._error)
            now = time.monotonic()
            left = None
            if self._stage == "embed" and 0 < self._done < self._total:
                left = (now - self._embed_started) * (self._total - self._done) / self._done
            return RefreshStatus(True, len(self._queue), self._stage, self._done, self._total,
                                 now - self._started, left, self._error)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no refresh runs or waits (True), or `timeout` seconds passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status().busy:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _loop(self) -> None:
        self._priority()
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._thread, self._running = None, False
                    return
                self._running, self._started = True, time.monotonic()
                self._stage, self._done, self._total, self._last = "", 0, 0, 0.0
            futures = [f for f, _, _ in batch if f.set_running_or_notify_cancel()]
            result, error = None, None
            try:
                result = self._run(self._progress([p for _, p, _ in batch if p]))
            except Exception as exc:  # noqa: BLE001 - handed to every request; the thread goes on
                log.warning("background index update failed: %s", exc)
                error = exc
            with self._lock:
                self._error = "" if error is None else (str(error).splitlines() or [type(error).__name__])[0]
            for _, _, on_done in batch:
                if on_done is not None:
                    try:
                        on_done(result, error)
                    except Exception:  # noqa: BLE001 - one caller's clean-up must not stop the others
                        log.exception("clean-up after a background index update failed")
            for future in futures:
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)

    def _progress(self, callers: list[Progress]) -> Progress:
        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            with self._lock:
                if stage != self._stage:  # the first embedding step began when the stage before ended
                    self._embed_started = self._last or now
                self._stage, self._done, self._total, self._last = stage, done, total, now
            for caller in callers:
                try:
                    caller(stage, done, total)
                except Exception:  # noqa: BLE001 - a broken progress display must not fail the build
                    log.exception("a progress callback failed")
        return progress
