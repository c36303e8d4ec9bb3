"""Benchmark chunking and indexing of big files: the linear line numbering against the old quadratic one.

Generates one deterministic text file per size (headings, short and long paragraphs, lines wrapped
inside paragraphs), then prints, side by side for each size: chunking time and `build_index` time
(load -> chunk -> embed -> store) with today's code, and the same with the old line numbering, which
counted the newlines from the start of the file for every passage (`text.count("\\n", 0, start)`).
Both give the same passages (checked here). The encoder is a fake (a hash of each text: deterministic,
about a microsecond a text), so the figures are this code's, not a model's. Figures are printed, not
asserted: these machines are noisy.

    python eval/bench_big_files.py [--sizes 1,2,4]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rag.index.sources
from rag.index.build import build_index
from rag.ingest.chunk import ChunkSettings, chunk_document
from rag.ingest.load import MB, parse

WORDS = ["council", "harbour", "ferry", "treaty", "minister", "visit", "summit", "trade", "energy", "security",
         "cooperation", "region", "europe", "asia", "ocean", "policy", "meeting", "agreement", "partner", "island",
         "river", "talks", "climate", "health", "science"]


class HashEncoder:
    """A fake, deterministic embedder: each text's vector is its BLAKE2b digest, centred and normalised."""

    name, dim = "fake-blake2b", 64

    def encode(self, texts) -> np.ndarray:
        raw = b"".join(hashlib.blake2b(t.encode("utf-8"), digest_size=self.dim).digest() for t in texts)
        v = np.frombuffer(raw, np.uint8).reshape(-1, self.dim).astype(np.float32) - 127.5
        return v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-6)


def generate_text(n_bytes: int, seed: int = 0) -> str:
    """About `n_bytes` of report-like text: a title, numbered sections, paragraphs of 1 to 20 sentences
    (some over the chunk size), a few wrapped over several lines."""
    rng, parts, size, section = random.Random(seed), ["Generated Report 2024\n\n"], 0, 0
    while size < n_bytes:
        if rng.random() < 0.05:
            section += 1
            part = f"Section {section} {rng.choice(WORDS).title()} and {rng.choice(WORDS)}\n\n"
        else:
            sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 20))).capitalize() + "."
                         for _ in range(rng.choice((1, 2, 3, 8, 20)))]
            joiner = "\n" if rng.random() < 0.2 else " "
            part = joiner.join(sentences) + "\n\n"
        parts.append(part)
        size += len(part)
    return "".join(parts)


def chunk_quadratic(document, settings: ChunkSettings | None = None):
    """The old peer: the same passages, each line counted from the start of the file."""
    passages = chunk_document(document, settings or ChunkSettings())
    return [replace(p, line=document.text.count("\n", 0, p.start) + 1) for p in passages]


@contextmanager
def old_line_numbers():
    """Builds inside use the quadratic peer."""
    saved = rag.index.sources.chunk_document
    rag.index.sources.chunk_document = chunk_quadratic
    try:
        yield
    finally:
        rag.index.sources.chunk_document = saved


def timed(fn):
    """fn's result and its seconds as "wall/CPU" (CPU: this process's, which other load does not inflate)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, f"{time.perf_counter() - t0:.2f}/{time.process_time() - c0:.2f}s"


def measure(text: str, folder: Path, label: str) -> tuple[str, str, int]:
    """(chunking seconds, build seconds, passages) of `text` as one file."""
    document = parse("big.txt", text)
    chunk = chunk_quadratic if label == "old" else chunk_document
    passages, chunk_s = timed(lambda: chunk(document))
    docs = folder / label / "docs"
    docs.mkdir(parents=True)
    (docs / "big.txt").write_text(text, encoding="utf-8")
    summary, build_s = timed(lambda: build_index(docs, folder / label / "index", embedder=HashEncoder(),
                                                 max_file_bytes=len(text.encode("utf-8")) + 1))
    assert summary.passages == len(passages) and summary.skipped == ()
    return chunk_s, build_s, len(passages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,2,4", help="file sizes in MB, comma-separated (default 1,2,4)")
    sizes = [float(s) for s in parser.parse_args().sizes.split(",")]
    print("seconds as wall/CPU; chunk: chunk_document alone; build: build_index (read, chunk, embed, store)")
    print(f"{'size':>6} {'passages':>8} | {'chunk new':>12} {'chunk old':>12} | {'build new':>12} {'build old':>12}")
    for mb in sizes:
        text = generate_text(int(mb * MB))
        document = parse("big.txt", text)
        assert chunk_document(document) == chunk_quadratic(document), "the new line numbers differ"
        with tempfile.TemporaryDirectory() as tmp:
            chunk_new, build_new, n = measure(text, Path(tmp), "new")
            with old_line_numbers():
                chunk_old, build_old, _ = measure(text, Path(tmp), "old")
        print(f"{mb:>4g}MB {n:>8} | {chunk_new:>12} {chunk_old:>12} | {build_new:>12} {build_old:>12}", flush=True)


if __name__ == "__main__":
    main()
