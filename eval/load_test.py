"""A bounded load test of the web app's `/ask` endpoint, on this machine only.

    python eval/load_test.py                      # starts `python app.py` on the seeds (temporary index)
    python eval/load_test.py --url http://127.0.0.1:7860/
    python eval/load_test.py --clients 20 --questions 5

N concurrent gradio_client clients (default 20, at most 50) each ask Q questions (default 5, at most
20) one after another, all starting together. Prints answered/expected, latency p50/p95/max and the
throughput; exits 1 if any request was lost or failed. --url must point at 127.0.0.1 or localhost:
this script never loads another host.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "Which fighter jets did France announce for Ukraine?",
    "When was the European Peace Facility set up?",
    "How much military assistance per year has the UK promised Ukraine?",
    "What did the 2021 Bluebook say about ASEM?",
    "Who won the 2024 European Parliament elections?",
    "What is the capital of Peru?",
    "How does Japan cooperate with NATO?",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def local_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or parsed.hostname not in LOCAL_HOSTS:
        raise argparse.ArgumentTypeError(f"--url {url!r} must be http://127.0.0.1:PORT/ or http://localhost:PORT/")
    return url if url.endswith("/") else url + "/"


def bounded(low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value
    return parse


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(docs: str, index: str, log_path: Path, root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """`python app.py` of the checkout at `root` on 127.0.0.1 and a free port; returns once it answers."""
    import httpx

    port = free_port()
    log = open(log_path, "w", encoding="utf-8")
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--docs", docs,
                             "--index", index], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"app.py did not start within 300 s; see {log_path}")


def upload(url: str, name: str, text: str, timeout: float = 900) -> threading.Event:
    """Upload `text` as the browser does (file upload, then the upload event through the queue); the
    returned Event is set when the event completes (at once where the app indexes in the background)."""
    import httpx

    config = httpx.get(url + "config", timeout=30).json()
    ids = {c["id"]: c for c in config["components"]}
    file_id = next(i for i, c in ids.items() if c.get("props", {}).get("elem_id") == "upload")
    fn_index, dep = next((n, d) for n, d in enumerate(config["dependencies"])
                         if [file_id, "upload"] in [list(t) for t in d["targets"]])
    [path] = httpx.post(url + "gradio_api/upload", files=[("files", (name, text.encode(), "text/plain"))],
                        timeout=60).json()
    data = [[{"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}] if i == file_id else None
            for i in dep["inputs"]]
    session = f"load{random.randrange(10**9)}"
    httpx.post(url + "gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
               "event_data": None, "trigger_id": file_id}, timeout=30).raise_for_status()
    done = threading.Event()

    def follow() -> None:
        with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}", timeout=timeout) as r:
            for line in r.iter_lines():
                if '"process_completed"' in line:
                    break
        done.set()

    threading.Thread(target=follow, daemon=True).start()
    return done


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def run(url: str, clients: int, questions: int) -> dict:
    from gradio_client import Client

    barrier = threading.Barrier(clients)
    latencies: list[float] = []
    failures: list[str] = []
    abstained = 0
    lock = threading.Lock()

    def user(i: int) -> None:
        nonlocal abstained
        try:
            client = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001 - count any failure, keep the other users going
            with lock:
                failures.extend([f"client {i}: could not connect: {exc}"] * questions)
            barrier.abort()
            return
        try:
            barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            pass
        for j in range(questions):
            question = QUESTIONS[(i + j) % len(QUESTIONS)]
            t0 = time.perf_counter()
            try:
                result = client.predict(question, api_name="/ask")
                ok = isinstance(result, dict) and isinstance(result.get("answer"), str) and result["answer"]
            except Exception as exc:  # noqa: BLE001 - count it as lost
                with lock:
                    failures.append(f"client {i} question {j}: {type(exc).__name__}: {exc}")
                continue
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - t0)
                    abstained += bool(result.get("abstained"))
                else:
                    failures.append(f"client {i} question {j}: unexpected result {result!r:.200}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(user, range(clients)))
    wall = time.perf_counter() - t0
    return {"expected": clients * questions, "answered": len(latencies), "abstained": abstained,
            "failures": failures, "wall_s": wall,
            "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "p95_ms": 1000 * percentile(latencies, 95), "max_ms": 1000 * max(latencies, default=float("nan"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", type=local_url, default=None,
                        help="a running app on 127.0.0.1/localhost (default: start app.py on the seeds)")
    parser.add_argument("--clients", type=bounded(1, 50), default=20, help="concurrent clients (default 20)")
    parser.add_argument("--questions", type=bounded(1, 20), default=5, help="questions per client (default 5)")
    parser.add_argument("--docs", default="seeds", help="documents folder when starting the app (default seeds/)")
    parser.add_argument("--index", default=None,
                        help="index directory when starting the app (default: a temporary one)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    proc, tmp = None, None
    url = args.url
    try:
        if url is None:
            tmp = Path(tempfile.mkdtemp(prefix="rag-load-"))
            print(f"starting app.py on {args.docs} (log: {tmp / 'app.log'}) ...", file=sys.stderr, flush=True)
            proc, url = start_app(args.docs, args.index or str(tmp / "index"), tmp / "app.log")
        print(f"{args.clients} clients x {args.questions} questions against {url}", flush=True)
        report = run(url, args.clients, args.questions)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"answered/expected: {report['answered']}/{report['expected']} ({report['abstained']} abstentions)")
    print(f"latency p50: {report['p50_ms']:.0f} ms  p95: {report['p95_ms']:.0f} ms  max: {report['max_ms']:.0f} ms")
    print(f"wall time: {report['wall_s']:.1f} s  ({report['answered'] / report['wall_s']:.1f} answers/s)")
    for failure in report["failures"][:10]:
        print(f"lost: {failure}")
    lost = report["expected"] - report["answered"]
    if lost:
        print(f"FAIL: {lost} of {report['expected']} requests lost or failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
