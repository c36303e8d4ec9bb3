"""Benchmark the index at scale: N generated passages, built, loaded and searched.

Generates N passages of pseudo-English (`eval/scale_corpus.py`: Zipf-like word frequencies, real
English stop words, topics, names; a fast deterministic hash encoder instead of the model), saves the
index through the real store (`rag.index.local.save`: dense index, BM25, int8 sentence vectors,
passage and text tables), then, in a fresh process, loads it and searches it through the real
`Retriever`. Prints per index: build time (generation and encoding apart), size on disk, load time,
peak RSS (VmHWM of the measuring process after load and searches), search p50/p95 per mode with the
(fast) query encoding timed apart, ANN recall@10 of the dense ranking against exact search over the
float32 vectors, and recall@10 of the best-sentence ranking against its exact full scan.

`--threshold T` sets the size above which the index is approximate (`rag.index.ann.ANN_THRESHOLD` by
default); `--exact` also builds the same corpus with exact search (the small-index path) to set the
two side by side; `--ann-kinds hnsw,ivf` builds the other approximate index over the same vectors and
prints its build time, size, and recall@10 and search times per setting. `--real-encoder` times the
real query encoder (`rag.index.embed.query_embedder`) on the questions and on the seed set's English
ones (eval/qa.jsonl: fewer word pieces than made-up words), and times whole hybrid searches with it
(its vectors replaced by the hash encoder's), after everything else.
`--keep` keeps the indexes in `--work` and `--reuse` measures them again without building. Figures
are printed, not asserted: these machines are shared and noisy. A million passages take about ten
minutes to build (10 GB of memory) and 4 GB of disk.

    python eval/bench_scale.py --passages 100000 [--queries 300] [--exact] [--ann-kinds hnsw,ivf]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import scale_corpus as sc  # noqa: E402

from rag.index import ann, local  # noqa: E402
from rag.index.store import Manifest  # noqa: E402


def pct(values, q):
    return float(np.percentile(values, q)) if len(values) else float("nan")


def rss_mb() -> float:
    """Peak resident memory of this process so far, MB: VmHWM (ru_maxrss would count the parent's peak
    too, as Linux keeps it across the fork and exec of the measuring process)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def recall(found: list[list[int]], exact: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k]) & set(e[:k].tolist())) / k for f, e in zip(found, exact)]))


# ---- the measuring process: load, search, report as JSON ----

def measure(index_dir: Path, questions: list[str], seed: int, exact_sentences: int, real_encoder: bool) -> dict:
    from rag.search.retriever import Retriever

    out: dict = {"rss_start_mb": rss_mb()}
    encoder = sc.HashEncoder(sc.Vocabulary.make(seed), seed)
    t0 = time.perf_counter()
    index = local.load(index_dir)
    retriever = Retriever(index, encoder)
    out["load_s"], out["rss_load_mb"] = time.perf_counter() - t0, rss_mb()
    out["kind"] = ann.kind_of(index.dense)
    t0 = time.perf_counter()
    retriever.search(questions[0], k=5, mode="hybrid")  # finds the documents' abbreviations (aliases) once
    out["first_hybrid_s"] = time.perf_counter() - t0
    vectors = [retriever.embed_query(q)[0] for q in questions[:3]]  # warm up
    for mode in ("hybrid", "dense", "bm25"):
        encode, search, ids = [], [], []
        for q in questions:
            retriever.clear_cache()
            t0 = time.perf_counter()
            retriever.embed_query(q)
            t1 = time.perf_counter()
            ids.append([index.position(p.doc, p.start, p.end) for p in retriever.search(q, k=10, mode=mode)])
            search.append((time.perf_counter() - t1) * 1000)
            encode.append((t1 - t0) * 1000)
        out[mode] = {"p50": pct(search, 50), "p95": pct(search, 95), "encode_p50": pct(encode, 50), "top10": ids}
    vectors = encoder.encode(questions)
    pool = max(50, 4 * 10)  # what the retriever asks a k=10 search for
    out["dense_top10"] = [[i for i, _ in index.dense_search(v, pool, None)][:10] for v in vectors]
    out["rss_peak_mb"] = rss_mb()  # before the exact comparisons below, which decode every sentence
    out["sweep"] = sweep(index.dense, vectors)
    if index.approximate and exact_sentences:
        near = [[i for i, _ in index.sentence_search(v, pool, None)][:10] for v in vectors[:exact_sentences]]
        t0 = time.perf_counter()
        exact = [ann.best(index.sentence_scores(v), 10, floor=-1.0) for v in vectors[:exact_sentences]]
        out["sentence_full_scan_ms"] = (time.perf_counter() - t0) / exact_sentences * 1000
        out["sentence_recall10"] = recall(near, np.array(exact))
    if real_encoder:
        from rag.index.embed import query_embedder
        from rag.settings import DEFAULT_MODEL

        model = query_embedder(DEFAULT_MODEL)
        model.encode(questions[:3])
        for name, asked in (("real_encode", questions), ("english_encode", english_questions())):
            times = []
            for q in asked:
                t0 = time.perf_counter()
                model.encode([q])
                times.append((time.perf_counter() - t0) * 1000)
            out[f"{name}_p50"], out[f"{name}_p95"] = pct(times, 50), pct(times, 95)
        # a whole hybrid search with the real model encoding each question (whose vector is then
        # replaced by the hash encoder's, which the index was built with)
        both = Retriever(index, RealThenHash(model, encoder))
        times = []
        for q in questions:
            both.clear_cache()
            t0 = time.perf_counter()
            both.search(q, k=10, mode="hybrid")
            times.append((time.perf_counter() - t0) * 1000)
        out["hybrid_real_p50"], out["hybrid_real_p95"] = pct(times, 50), pct(times, 95)
    return out


class RealThenHash:
    """Encodes with the real model (for its time) and returns the hash encoder's vectors."""

    def __init__(self, model, encoder):
        self.model, self.encoder, self.name, self.dim = model, encoder, encoder.name, encoder.dim

    def encode(self, texts):
        self.model.encode(texts)
        return self.encoder.encode(texts)


def english_questions() -> list[str]:
    """The seed set's questions: real English, whose word pieces are fewer than the generated
    questions' made-up words split into."""
    with open(HERE / "qa.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["question"] for line in f if line.strip()]


SWEEP = {"hnsw": ("EF_SEARCH", (128, 256, 384, 512)), "ivf": ("IVF_NPROBE", (32, 64, 128, 256))}


def sweep(index, vectors: np.ndarray) -> dict:
    """Per search setting of an approximate index (HNSW beam, IVF probes): its top 10 of 50 and time."""
    kind = ann.kind_of(index)
    if kind not in SWEEP:
        return {}
    name, values = SWEEP[kind]
    default, out = getattr(ann, name), {}
    try:
        for value in values:
            setattr(ann, name, value)
            found, times = [], []
            for v in vectors:
                t0 = time.perf_counter()
                found.append([i for i, _ in ann.search(index, v, 50, None)][:10])
                times.append((time.perf_counter() - t0) * 1000)
            out[f"{name}={value}"] = {"top10": found, "p50": pct(times, 50), "p95": pct(times, 95)}
    finally:
        setattr(ann, name, default)
    return out


def run_measure(index_dir: Path, questions_file: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--measure", str(index_dir), "--questions-file", str(questions_file),
           "--seed", str(args.seed), "--exact-sentences", str(args.exact_sentences)]
    if args.real_encoder:
        cmd.append("--real-encoder")
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the building process ----

def build(args) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    times = {}
    t0 = time.perf_counter()
    corpus = sc.generate(args.passages, args.seed)
    times["generate"] = time.perf_counter() - t0
    encoder = sc.HashEncoder(corpus.vocabulary, args.seed)
    t0 = time.perf_counter()
    vectors = encoder.encode_ids(corpus.words)
    sentence_ids = [w for ws in corpus.sentence_words for w in ws]
    sentences = np.zeros((len(sentence_ids), sc.DIM), np.float16)  # float16 here keeps the build in memory
    for a in range(0, len(sentence_ids), 200_000):
        sentences[a:a + 200_000] = encoder.encode_ids(sentence_ids[a:a + 200_000])
    times["encode"] = time.perf_counter() - t0
    questions = sc.questions(corpus, args.queries, args.seed)
    query_vectors = encoder.encode(questions)
    passages, texts = corpus.passages, corpus.texts
    del corpus, sentence_ids
    (work / "questions.json").write_text(json.dumps(questions), encoding="utf-8")

    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    exact = faiss.IndexFlatIP(sc.DIM)
    exact.add(vectors)
    truth = exact.search(query_vectors, 10)[1]
    del exact

    np.save(work / "truth.npy", truth)
    manifest = Manifest(model=encoder.name, dim=sc.DIM, chunk_size=1000, chunk_overlap=320, docs=str(work / "docs"))
    variants = [("auto", args.threshold)] + ([("exact", args.passages)] if args.exact else [])
    results = {}
    for name, threshold in variants:
        index_dir = work / f"index-{name}"
        t0 = time.perf_counter()
        local.save(index_dir, manifest, passages, vectors, sentences, texts, ann_threshold=threshold)
        results[name] = {"save_s": time.perf_counter() - t0, "disk_mb": disk_mb(index_dir)}
        results[name].update(run_measure(index_dir, work / "questions.json", args))
        if not args.keep:
            shutil.rmtree(index_dir)
    kinds = own_sweep(results, truth)
    for kind in [k for k in args.ann_kinds.split(",") if k and k != results["auto"]["kind"]]:
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # k-means may use both cores (still deterministic)
        t0 = time.perf_counter()
        index = ann.build(vectors, sc.DIM, kind)
        build_s = time.perf_counter() - t0
        faiss.omp_set_num_threads(1)
        found = sweep(index, query_vectors)
        kinds[kind] = {"build_s": build_s, "mb": faiss.serialize_index(index).nbytes / 1e6,
                       "sweep": {k: {**v, "recall10": recall(v["top10"], truth), "top10": None}
                                 for k, v in found.items()}}
        del index
    times["build_rss_mb"] = rss_mb()
    (work / "build.json").write_text(json.dumps({"passages": args.passages, "times": times, "kinds": kinds,
                                                 "built": {n: {k: r[k] for k in ("save_s", "disk_mb")}
                                                           for n, r in results.items()}}), encoding="utf-8")
    report(args, times, finish(results, truth), kinds)


def own_sweep(results: dict, truth: np.ndarray) -> dict:
    """The approximate index's own search settings, with their recall."""
    return {f"{results['auto']['kind']} (the index's)": {
        "sweep": {k: {**v, "recall10": recall(v["top10"], truth), "top10": None}
                  for k, v in results["auto"]["sweep"].items()}}}


def finish(results: dict, truth: np.ndarray) -> dict:
    """The recalls against exact search, from each index's top tens."""
    for r in results.values():
        r["dense_recall10"] = recall(r["dense_top10"], truth)
    return results


def reuse(args) -> None:
    """Measure the kept indexes of an earlier run again (same questions; no building)."""
    work = Path(args.work)
    built = json.loads((work / "build.json").read_text(encoding="utf-8"))
    args.passages, results = built["passages"], {}
    for name, saved in built["built"].items():
        if (work / f"index-{name}").is_dir():
            results[name] = {**saved, **run_measure(work / f"index-{name}", work / "questions.json", args)}
    truth = np.load(work / "truth.npy")
    kinds = {**own_sweep(results, truth), **{k: v for k, v in built["kinds"].items() if "(the index's)" not in k}}
    report(args, built["times"], finish(results, truth), kinds)


def report(args, times: dict, results: dict, kinds: dict) -> None:
    print(f"bench_scale: {args.passages:,} passages, {args.queries} questions; generated in {times['generate']:.1f}s, "
          f"encoded (hash encoder, passages and sentences) in {times['encode']:.1f}s; build peak RSS "
          f"{times.get('build_rss_mb', rss_mb()):.0f} MB")
    names = list(results)
    rows = [("dense index", lambda r: r["kind"]),
            ("save (dense, BM25, tables) s", lambda r: f"{r['save_s']:.1f}"),
            ("build total s", lambda r: f"{r['save_s'] + times['generate'] + times['encode']:.1f}"),
            ("size on disk MB", lambda r: f"{r['disk_mb']:.0f}"),
            ("load s", lambda r: f"{r['load_s']:.2f}"),
            ("RSS after load MB", lambda r: f"{r['rss_load_mb']:.0f}"),
            ("peak RSS MB", lambda r: f"{r['rss_peak_mb']:.0f}"),
            ("first hybrid search s", lambda r: f"{r['first_hybrid_s']:.2f}")]
    for mode in ("hybrid", "dense", "bm25"):
        rows.append((f"{mode} p50 / p95 ms", lambda r, m=mode: f"{r[m]['p50']:.1f} / {r[m]['p95']:.1f}"))
    rows += [("hash query encoding p50 ms", lambda r: f"{r['hybrid']['encode_p50']:.2f}"),
             ("dense recall@10 vs exact", lambda r: f"{r['dense_recall10']:.3f}"),
             ("best-sentence recall@10",
              lambda r: f"{r['sentence_recall10']:.3f}" if "sentence_recall10" in r else "exact")]
    if "exact" in results:
        exact = np.array(results["exact"]["hybrid"]["top10"])
        rows.append(("hybrid top-10 shared with exact", lambda r: f"{recall(r['hybrid']['top10'], exact):.3f}"))
    if "real_encode_p50" in results["auto"]:
        rows.append(("real query encoding p50 / p95 ms",
                     lambda r: f"{r['real_encode_p50']:.1f} / {r['real_encode_p95']:.1f}"))
        rows.append(("hybrid p50 + real encoding p50 ms", lambda r: f"{r['hybrid']['p50'] + r['real_encode_p50']:.1f}"))
        rows.append(("hybrid p50 / p95, real encoder ms", lambda r: f"{r['hybrid_real_p50']:.1f} / {r['hybrid_real_p95']:.1f}"))
        rows.append(("English q. real encoding p50 / p95 ms", lambda r: f"{r['english_encode_p50']:.1f} / {r['english_encode_p95']:.1f}"))
    width = max(len(label) for label, _ in rows) + 2
    print("".ljust(width) + "".join(n.rjust(18) for n in names))
    for label, cell in rows:
        print(label.ljust(width) + "".join(str(cell(results[n])).rjust(18) for n in names))
    for kind, k in kinds.items():
        built = f": built in {k['build_s']:.1f}s, {k['mb']:.0f} MB" if "build_s" in k else ""
        print(f"{kind} over the same vectors{built}; dense recall@10 and search p50 / p95 ms by setting:")
        for setting, v in k["sweep"].items():
            print(f"    {setting:16s} recall@10 {v['recall10']:.3f}   {v['p50']:.2f} / {v['p95']:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="/tmp/bench-scale")
    parser.add_argument("--exact", action="store_true", help="also build the corpus with exact search")
    parser.add_argument("--threshold", type=int, help=f"passages searched exactly (default {ann.ANN_THRESHOLD})")
    parser.add_argument("--ann-kinds", default="", help="approximate indexes to compare, e.g. hnsw,ivf")
    parser.add_argument("--exact-sentences", type=int, default=30,
                        help="questions whose best sentence is also found by a full scan")
    parser.add_argument("--real-encoder", action="store_true", help="also time the real query encoder")
    parser.add_argument("--keep", action="store_true", help="keep the index directories")
    parser.add_argument("--reuse", action="store_true", help="measure the indexes an earlier --keep run left in --work")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--questions-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        questions = json.loads(Path(args.questions_file).read_text(encoding="utf-8"))
        print(json.dumps(measure(Path(args.measure), questions, args.seed, args.exact_sentences, args.real_encoder)))
    elif args.reuse:
        reuse(args)
    else:
        build(args)


if __name__ == "__main__":
    main()
