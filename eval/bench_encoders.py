"""Encoding speed of the default model: ONNX Runtime (fp32 and int8) and OpenVINO (what builds encode
documents with: bf16 where the CPU has it) against sentence-transformers.

For one question at a time (what a search pays) and for batches of 64 of the seeds' passages (what
a build pays), with the same number of threads for both (`--threads`, default 2), the encoders taken
in turn round after round so that a noisy machine slows them alike; prints the median of each. Also
prints how far each ONNX encoder's vectors are from sentence-transformers' (cosine, min and mean).
Figures are printed, not asserted.

    python eval/bench_encoders.py [--rounds 5] [--threads 2] [--index index]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What did the regional coordinator countries agree on at the ASEM meeting?"


def passages(index: Path, n: int) -> list[str]:
    """The first `n` passage texts of an index directory (repeated when it has fewer)."""
    import json

    lines = (index / "passages.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    return (texts * (n // max(1, len(texts)) + 1))[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--index", type=Path, default=ROOT / "index", help="an index of the seeds (default index/)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from rag.index.embed import DEFAULT_MODEL, INT8_MODEL, SentenceTransformerEmbedder, _plain_pooling, resolve_model
    from rag.index.onnx import OnnxEmbedder

    torch.set_num_threads(args.threads)
    folder = Path(resolve_model(DEFAULT_MODEL))
    plain = _plain_pooling(folder)
    encoders = {"sentence-transformers (torch)": SentenceTransformerEmbedder(DEFAULT_MODEL),
                "ONNX Runtime fp32": OnnxEmbedder(DEFAULT_MODEL, folder, *plain, threads=args.threads),
                "ONNX Runtime int8": OnnxEmbedder(INT8_MODEL, folder, *plain, int8=True, threads=args.threads)}
    openvino = OnnxEmbedder(DEFAULT_MODEL, folder, *plain, threads=args.threads, runtime="openvino")
    encoders[f"OpenVINO {openvino.precision}"] = openvino
    batch = passages(args.index, args.batch)
    reference = encoders["sentence-transformers (torch)"].encode(batch)
    query_ms: dict[str, list[float]] = {name: [] for name in encoders}
    batch_s: dict[str, list[float]] = {name: [] for name in encoders}
    for name, encoder in encoders.items():  # warm up
        encoder.encode([QUESTION])
        encoder.encode(batch[:8])
    for _ in range(args.rounds):
        for name, encoder in encoders.items():
            times = []
            for _ in range(10):
                t0 = time.perf_counter()
                encoder.encode([QUESTION])
                times.append(time.perf_counter() - t0)
            query_ms[name].append(statistics.median(times) * 1000)
            t0 = time.perf_counter()
            encoder.encode(batch)
            batch_s[name].append(time.perf_counter() - t0)
    print(f"{args.threads} threads, {args.rounds} rounds, medians; a batch is {len(batch)} of the seeds' passages")
    print(f"{'encoder':32} {'query ms':>9} {'batch s':>8} {'passages/s':>10} {'cos min':>8} {'cos mean':>8}")
    for name, encoder in encoders.items():
        cos = (np.asarray(encoder.encode(batch)) * reference).sum(axis=1)
        seconds = statistics.median(batch_s[name])
        print(f"{name:32} {statistics.median(query_ms[name]):9.2f} {seconds:8.3f} {len(batch) / seconds:10.1f} "
              f"{cos.min():8.5f} {cos.mean():8.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
