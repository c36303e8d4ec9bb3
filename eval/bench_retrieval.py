"""Benchmark indexing and retrieval, ours against the textbook LangChain pipeline, in one run.

Prints, for the seeds and for SQuAD-dev's 48 documents: index build time (with model load) and
passages per second; the build's rate in word pieces per second as a share of the encoder's alone on
the same texts (the passages and their distinct sentences, encoded again in one call: the speed limit
a build can reach); an unchanged re-index, search latency p50/p95 per mode, and the cold start
of `rag search` (process start to printed answer); then the same figures for the LangChain
pipeline (RecursiveCharacterTextSplitter 1000/200 + langchain-community's FAISS store, same
model; its rate in word pieces per second too). Figures are printed, not asserted: these machines are
noisy.

    python eval/bench_retrieval.py [--squad ../shared/benchmarks/squad-dev] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def questions(qa: Path, n: int) -> list[str]:
    rows = [json.loads(line) for line in qa.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["question"] for r in rows][:n]


def latency(search, qs: list[str]) -> tuple[float, float]:
    times = []
    for q in qs:
        t0 = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - t0) * 1000)
    return pct(times, 50), pct(times, 95)


def cold(cmd: list[str], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


NAIVE_COLD = """
import sys, warnings; warnings.simplefilter("ignore")
from langchain_community.vectorstores import FAISS
from langchain_core.embeddings import Embeddings
from rag.index.embed import SentenceTransformerEmbedder
e = SentenceTransformerEmbedder()
class E(Embeddings):
    def embed_documents(self, t): return e.encode(t).tolist()
    def embed_query(self, t): return e.encode([t])[0].tolist()
store = FAISS.load_local(sys.argv[1], E(), allow_dangerous_deserialization=True)
print(store.similarity_search(sys.argv[2], k=5)[0].page_content[:80])
"""


def word_pieces(texts: list[str]) -> int:
    """Word pieces of `texts` as the default model reads them (special tokens included, cut at its limit)."""
    from tokenizers import Tokenizer

    from rag.index.embed import resolve_model
    from rag.settings import DEFAULT_MODEL

    tokenizer = Tokenizer.from_file(str(Path(resolve_model(DEFAULT_MODEL)) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(256)  # the model's max_seq_length, as both encoders cut
    return sum(len(e.ids) for e in tokenizer.encode_batch(texts))


def embedded_texts(passages) -> list[str]:
    """What a build embeds for `passages`: each one's context, then its sentences, each distinct text once."""
    from rag.ingest.sentences import split_sentences

    sentences = [p.text[s:e] for p in passages for s, e in split_sentences(p.text)]
    return list(dict.fromkeys([p.context() for p in passages] + sentences))


def bench(name: str, docs: Path, qa: Path, n_queries: int, workdir: Path) -> None:
    import rag
    from rag.settings import DEFAULT_K, MODES
    from rag.evaluate.baseline import NaiveRetriever
    from rag.index.embed import SentenceTransformerEmbedder, document_embedder

    print(f"\n== {name}: {docs}")
    index = workdir / f"index-{name}"
    t0 = time.perf_counter()
    summary = rag.build_index(docs, index)  # loads the model itself: part of the build time
    build = time.perf_counter() - t0
    print(f"ours   build: {build:.1f}s for {summary.passages} passages ({summary.passages / build:.1f} passages/s, "
          f"with model load and sentence vectors)")
    texts = embedded_texts(rag.Retriever.load(index).index.passages)
    pieces, encoder = word_pieces(texts), document_embedder()  # what the build encoded with
    encoder.encode(texts[:8])
    t0 = time.perf_counter()
    encoder.encode(texts)
    alone = time.perf_counter() - t0
    print(f"ours   build rate: {pieces / build:.0f} word pieces/s, {pieces / build / (pieces / alone):.0%} of the "
          f"encoder alone on the same {len(texts)} texts ({pieces} word pieces in {alone:.1f}s: "
          f"{pieces / alone:.0f}/s; {type(encoder).__name__} {getattr(encoder, 'runtime', '')} "
          f"{getattr(encoder, 'precision', '')})")
    t0 = time.perf_counter()
    again = rag.build_index(docs, index)
    print(f"ours   unchanged re-index: {time.perf_counter() - t0:.3f}s in-process, {again.embedded} embedded; "
          f"as a command: {cold(['rag', 'index', str(docs), '--index', str(index), '-q'], 1):.2f}s")
    retriever = rag.Retriever.load(index)  # as `rag search` and the app use it: the fast query embedder
    qs = questions(qa, n_queries)
    for mode in MODES:
        retriever.search(qs[0], k=DEFAULT_K, mode=mode)  # warm up, then forget the cached question vectors
        retriever.clear_cache()
        p50, p95 = latency(lambda q: retriever.search(q, k=DEFAULT_K, mode=mode), qs[1:])
        print(f"ours   search {mode:6}: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({len(qs)} questions)")
    print(f"ours   cold start `rag search`: {cold(['rag', 'search', qs[0], '--index', str(index), '-k', '1']):.2f}s")

    t0 = time.perf_counter()
    naive = NaiveRetriever(docs, SentenceTransformerEmbedder())  # the textbook way: sentence-transformers
    build = time.perf_counter() - t0
    print(f"naive  build: {build:.1f}s for {len(naive.passages)} chunks ({len(naive.passages) / build:.1f} chunks/s, "
          f"with model load)")
    print(f"naive  build rate: {word_pieces([p.text for p in naive.passages]) / build:.0f} word pieces/s")
    naive.retrieve(rag.Query(qs[0], k=DEFAULT_K))
    p50, p95 = latency(lambda q: naive.retrieve(rag.Query(q, k=DEFAULT_K)), qs[1:])
    print(f"naive  search: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    saved = workdir / f"naive-{name}"
    naive.store.save_local(str(saved))
    print(f"naive  cold start (load_local + query): {cold([sys.executable, '-c', NAIVE_COLD, str(saved), qs[0]]):.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="seeds")
    parser.add_argument("--seed-qa", default="eval/qa.jsonl")
    parser.add_argument("--squad", default="../shared/benchmarks/squad-dev")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench("seeds", Path(args.seeds), Path(args.seed_qa), args.queries, Path(tmp))
        squad = Path(args.squad)
        if squad.exists():
            bench("squad-dev", squad / "docs", squad / "qa-small.jsonl", args.queries, Path(tmp))


if __name__ == "__main__":
    main()
