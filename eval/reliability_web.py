"""How the web app holds up when the machine is busy, on this machine only (127.0.0.1).

    python eval/reliability_web.py                  # every probe (about 6 minutes on 2 cores)
    python eval/reliability_web.py --soak 30        # a shorter soak
    python eval/reliability_web.py --root ../other  # measure another checkout of the project

Probes, each a row {"probe", "trials", "failures", "lost", "note"} (`probes()`, for other scripts):
- ask_beside_build: in this process, `Pipeline.ask` p50 with nothing else running, then beside an
  index build of an upload-sized document started the way the app starts one (in the background);
  a failure is an error, or a p50 beside the build over 3x the quiet one.
- load_beside_build: `python app.py` on a copy of the seeds (a subprocess on a free port), a
  document uploaded as the browser does, and 20 users x 5 questions (eval/load_test.py) while it is
  being indexed.
- soak: about 5 questions a second for `--soak` seconds (default 120); the app's memory (RSS) at
  the start and the end.
- burst: 1,000 questions sent at once through `/gradio_api/call/ask`; a refusal ("Queue is full")
  is a failure, no answer at all is lost.
Every wait is bounded. Does not start anything that listens beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import importlib.util
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_BYTES = 240_000  # the document indexed beside the questions: just under the upload limit
QUIET_ASKS, BUSY_ASKS = 40, 40


def _load_test():
    spec = importlib.util.spec_from_file_location("load_test", HERE / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LT = _load_test()  # start_app, upload, run, QUESTIONS, percentile


def big_document(root: Path, size: int = BUILD_BYTES) -> str:
    """About `size` bytes of text made of the seeds' paragraphs (numbered, so none repeats)."""
    paras = [p for f in sorted((root / "seeds").iterdir()) for p in f.read_text(encoding="utf-8").split("\n\n")
             if len(p) > 80]
    rng, out, total = random.Random(7), ["# A long report"], 0
    while total < size:
        out.append(f"{rng.choice(paras)} (Section {len(out)}.)")
        total += len(out[-1]) + 2
    return "\n\n".join(out)[:size]


def row(probe: str, trials: int, failures: int, lost: int, note: str) -> dict:
    return {"probe": probe, "trials": trials, "failures": failures, "lost": lost, "note": note}


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# -- in process ------------------------------------------------------------------------------------

def ask_beside_build(root: Path, work: Path, size: int = BUILD_BYTES) -> dict:
    """`ask` p50 quiet vs beside a background build, in this process, configured as the app is."""
    sys.path.insert(0, str(root))
    try:
        from rag.index import cpu  # the app's thread settings, where the checkout has them
        for name, value in cpu.SERVE_THREADS.items():
            os.environ.setdefault(name, value)
        cpu.serve_threads()
    except ImportError:
        pass
    from rag.pipeline import Pipeline

    docs = work / "inproc-docs"
    shutil.copytree(root / "seeds", docs)
    pipeline = Pipeline.open(work / "inproc-index", docs, keep_model=True)
    pipeline.warm_up()
    errors, count = [], iter(range(10**6))

    def timed() -> float:
        pipeline.retriever.clear_cache()  # every question is encoded, as a new one would be
        question = LT.QUESTIONS[next(count) % len(LT.QUESTIONS)]
        t0 = time.perf_counter()
        try:
            pipeline.ask(question)
        except Exception as exc:  # noqa: BLE001 - counted
            errors.append(exc)
        return time.perf_counter() - t0

    quiet = [timed() for _ in range(QUIET_ASKS)]
    (docs / "long_report.md").write_text(big_document(root, size), encoding="utf-8")
    if hasattr(pipeline, "refresh_in_background"):
        build = pipeline.refresh_in_background()
        running = lambda: not build.done()  # noqa: E731
    else:  # a checkout without it: a thread, as its upload handler did
        thread = threading.Thread(target=pipeline.refresh, daemon=True)
        thread.start()
        running = thread.is_alive
    t0 = time.monotonic()
    time.sleep(1.0)
    busy = []
    while running() and len(busy) < BUSY_ASKS:
        took = timed()
        if running():
            busy.append(took)
    while running() and time.monotonic() - t0 < 900:
        time.sleep(0.5)
    build_s = time.monotonic() - t0
    q50, b50 = 1000 * statistics.median(quiet), 1000 * statistics.median(busy) if busy else float("nan")
    ratio = b50 / q50
    note = (f"p50 quiet {q50:.0f} ms, beside a build {b50:.0f} ms ({ratio:.1f}x, target <= 3x); p95 beside "
            f"{1000 * LT.percentile(busy, 95):.0f} ms; the {size // 1000} KB build took {build_s:.0f} s")
    return row("ask_beside_build", len(quiet) + len(busy), len(errors) + (not ratio <= 3), 0, note)


# -- against a running app ---------------------------------------------------------------------------

def indexed(index: Path, name: str) -> bool:
    try:
        return name in json.loads((index / "manifest.json").read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError):
        return False


def load_beside_build(url: str, root: Path, index: Path, size: int = BUILD_BYTES) -> dict:
    """20 users x 5 questions (eval/load_test.py) while an uploaded document is being indexed."""
    t0 = time.monotonic()
    LT.upload(url, "long_report.md", big_document(root, size))
    time.sleep(1.0)
    report = LT.run(url, 20, 5)
    load_s = time.monotonic() - t0
    during = not indexed(index, "long_report.md")
    while not indexed(index, "long_report.md") and time.monotonic() - t0 < 900:
        time.sleep(0.5)
    build_s = time.monotonic() - t0
    lost = report["expected"] - report["answered"] - len(report["failures"])
    note = (f"{report['answered']}/{report['expected']} answered in {report['wall_s']:.0f} s, p50 "
            f"{report['p50_ms']:.0f} ms, p95 {report['p95_ms']:.0f} ms; the load ran {load_s:.0f} s, "
            f"{'all' if during else 'not all'} of it during the {build_s:.0f} s build"
            + (f"; first failure: {report['failures'][0][:120]}" if report["failures"] else ""))
    return row("load_beside_build", report["expected"], len(report["failures"]), max(0, lost), note)


def soak(url: str, pid: int, seconds: float, rate: float = 5.0) -> dict:
    from gradio_client import Client

    local, start_mb = threading.local(), rss_mb(pid)
    peak, latencies, failures, futures = start_mb, [], [], []

    def one(i: int) -> None:
        t0 = time.perf_counter()
        try:
            if not hasattr(local, "client"):  # one client per worker thread
                local.client = Client(url, verbose=False)
            result = local.client.predict(f"{LT.QUESTIONS[i % len(LT.QUESTIONS)]} ({i})", api_name="/ask")
            assert isinstance(result, dict) and result.get("answer")
            latencies.append(time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - counted
            failures.append(f"{type(exc).__name__}: {exc}")

    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        i = 0
        while time.monotonic() - t0 < seconds:
            futures.append(pool.submit(one, i))
            i += 1
            if i % 25 == 0:
                peak = max(peak, rss_mb(pid))
            time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
    end_mb = rss_mb(pid)
    lost = len(futures) - len(latencies) - len(failures)
    note = (f"{len(latencies)} answered in {seconds:.0f} s ({len(latencies) / seconds:.1f}/s), p50 "
            f"{1000 * statistics.median(latencies) if latencies else float('nan'):.0f} ms; RSS start "
            f"{start_mb:.0f} MB, end {end_mb:.0f} MB, peak {max(peak, end_mb):.0f} MB")
    return row("soak", len(futures), len(failures), lost, note)


def burst(url: str, n: int = 1000, timeout: float = 300) -> dict:
    import httpx

    async def ask(client: httpx.AsyncClient, i: int) -> str:
        body = {"data": [f"{LT.QUESTIONS[i % len(LT.QUESTIONS)]} ({i})", 5, "hybrid", "", None]}
        try:
            r = await client.post(url + "gradio_api/call/ask", json=body)
            if r.status_code != 200:
                return f"refused {r.status_code}: {r.text[:80]}"
            async with client.stream("GET", url + f"gradio_api/call/ask/{r.json()['event_id']}") as events:
                async for line in events.aiter_lines():
                    if line.startswith("event: complete"):
                        return "ok"
                    if line.startswith("event: error"):
                        return "error"
            return "lost"
        except (httpx.HTTPError, OSError):
            return "lost"

    async def main() -> list[str]:
        limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            return await asyncio.gather(*(ask(client, i) for i in range(n)))

    t0 = time.monotonic()
    outcomes = asyncio.run(main())
    wall = time.monotonic() - t0
    refused = [o for o in outcomes if o.startswith("refused")]
    errors, lost = outcomes.count("error"), outcomes.count("lost")
    note = (f"{outcomes.count('ok')}/{n} answered in {wall:.0f} s, {len(refused)} refused, {errors} errors"
            + (f"; refusal: {refused[0]}" if refused else ""))
    return row("burst", n, len(refused) + errors, lost, note)


def probes(root: str | Path | None = None, soak_seconds: float = 120.0, build_bytes: int = BUILD_BYTES) -> list[dict]:
    """Run every probe against the checkout at `root` (default: this one); one row each."""
    root = Path(root or HERE.parent).resolve()
    work = Path(tempfile.mkdtemp(prefix="rag-reliability-"))
    rows = [ask_beside_build(root, work, build_bytes)]
    shutil.copytree(root / "seeds", work / "docs")
    proc, url = LT.start_app(str(work / "docs"), str(work / "index"), work / "app.log", root)
    try:
        rows.append(load_beside_build(url, root, work / "index", build_bytes))
        rows.append(soak(url, proc.pid, soak_seconds))
        rows.append(burst(url))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except Exception:  # noqa: BLE001 - it is going either way
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="the checkout to measure (default: this one)")
    parser.add_argument("--soak", type=float, default=120.0, help="soak seconds (default 120)")
    parser.add_argument("--build-kb", type=int, default=BUILD_BYTES // 1000,
                        help=f"size of the document indexed beside the questions (default {BUILD_BYTES // 1000})")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="give up (printing where it was) after this many seconds (default 1800)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().handlers[0].setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG
    faulthandler.dump_traceback_later(args.timeout, exit=True)
    rows = probes(args.root, args.soak, args.build_kb * 1000)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"{'probe':<18} {'trials':>6} {'failures':>8} {'lost':>5}  note")
        for r in rows:
            print(f"{r['probe']:<18} {r['trials']:>6} {r['failures']:>8} {r['lost']:>5}  {r['note']}")
    return 0 if all(r["failures"] == 0 and r["lost"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
