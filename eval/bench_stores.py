"""Benchmark the stores side by side: the local index directory against Milvus (Milvus Lite's gRPC
server, started here on 127.0.0.1 as a separate process, so every call crosses the network stack).

Builds the local index of a documents folder once (SQuAD-dev's 48 documents by default: load,
chunk, embed, save), then writes the very same passages, vectors, sentence vectors and texts to
each store (`Store.save`), so the write times compare the stores and not the embedding; loads each
through `rag.Retriever` and prints, side by side: write time, load time, search p50/p95 per mode
with the query vectors cached (the store's own work), hybrid p50 with query encoding, and how often
the two stores' top-10 agree. Figures are printed, not asserted: these machines are noisy and have
two cores, which the server shares with this process.

    python eval/bench_stores.py [--docs DIR] [--qa FILE] [--queries 200] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
SQUAD = HERE.parent.parent / "shared" / "benchmarks" / "squad-dev"
MODES = ("hybrid", "dense", "bm25")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


@contextmanager
def milvus_server(data: Path):
    """`milvus-lite server` on a free port of 127.0.0.1, as a separate process; yields its address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("milvus-lite server did not start within 60 s")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def contents(index):
    """What `Store.save` takes, read back from a loaded index."""
    n = len(index.passages)
    sentences = [index.passage_sentences(i) for i in range(n)]
    dim = index.manifest.dim
    return (index.manifest, list(index.passages), index.vectors(),
            np.vstack([np.zeros((0, dim), np.float32)] + sentences).astype(np.float32),
            {doc: index.document_text(doc) for doc in index.documents() if index.document_text(doc) is not None})


def latencies(retriever, questions: list[str], mode: str, encode: bool) -> list[float]:
    times = []
    for q in questions:
        if encode:
            retriever.clear_cache()
        t = time.perf_counter()
        retriever.search(q, k=10, mode=mode)
        times.append((time.perf_counter() - t) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=SQUAD / "docs")
    parser.add_argument("--qa", type=Path, default=SQUAD / "qa-small.jsonl")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--work", type=Path, default=None, help="keep the local index here (reused when present)")
    args = parser.parse_args()

    from rag import Retriever, build_index
    from rag.index.embed import query_embedder
    from rag.index.factory import open_store
    from rag.index.local import LocalStore

    import bm25s  # noqa: F401 - sets its own logger to DEBUG when imported: quieted below

    logging.basicConfig(level=logging.WARNING, force=True)
    for name in ("bm25s", "abbreviations", "pymilvus", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.WARNING)
    rows = [json.loads(line) for line in args.qa.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [r["question"] for r in rows][:args.queries]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-stores-"))
    embedder = query_embedder("all-MiniLM-L6-v2")
    t = time.perf_counter()
    summary = build_index(args.docs, work / "index", embedder=embedder)
    print(f"local build of {args.docs}: {summary}; {time.perf_counter() - t:.1f}s")
    source = open_store(work / "index").load()
    saved = contents(source)
    print(f"{len(saved[1])} passages, {len(saved[3])} sentence vectors, {len(questions)} questions\n")

    results = {}
    with milvus_server(work / "milvus-data") as address:
        stores = {"local": LocalStore(work / "local-copy"), "milvus (server)": open_store(f"milvus://{address}/bench")}
        for name, store in stores.items():
            t = time.perf_counter()
            store.save(*saved)
            write = time.perf_counter() - t
            t = time.perf_counter()
            retriever = Retriever.load(store=store, embedder=embedder, check_sources=False)
            load = time.perf_counter() - t
            for q in questions:  # warm: query vectors cached, lazy structures built
                retriever.search(q, k=10)
            figures = {"write s": write, "load s": load}
            for mode in MODES:
                times = latencies(retriever, questions, mode, encode=False)
                figures[f"{mode} p50 ms"], figures[f"{mode} p95 ms"] = pct(times, 50), pct(times, 95)
            figures["hybrid+encode p50 ms"] = pct(latencies(retriever, questions, "hybrid", encode=True), 50)
            figures["top10"] = {q: [p.id for p in retriever.search(q, k=10)] for q in questions}
            results[name] = figures
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)

    names = list(results)
    print(f"{'':24}" + "".join(f"{n:>18}" for n in names) + f"{'ratio':>10}")
    for key in [k for k in results[names[0]] if k != "top10"]:
        a, b = results[names[0]][key], results[names[1]][key]
        print(f"{key:24}{a:18.2f}{b:18.2f}{b / a if a else float('nan'):10.2f}")
    same = sum(results[names[0]]["top10"][q] == results[names[1]]["top10"][q] for q in questions)
    print(f"\nhybrid top-10 identical for {same}/{len(questions)} questions")


if __name__ == "__main__":
    main()
