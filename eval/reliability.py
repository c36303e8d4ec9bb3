"""The reliability suite, one table: what a reviewer reruns to see that nothing crashes, nothing is
lost and nothing waits forever.

    python eval/reliability.py [--quick]

Runs, on temporary copies of `seeds/` with a fast deterministic fake encoder where the model is not
the point: 1,000 fuzzed questions through the Python API and the `rag` command; a folder of bad files
(Latin-1, binary, empty, heading-only, over the size limit) beside good ones; then the index probes of
`eval/reliability_index.py` (kill -9 during builds, loads racing builds, builds under different
PYTHONHASHSEED) and the web probes of `eval/reliability_web.py` (ask beside a build, 20 users x 5
questions beside a build, a soak with memory sampled, a burst), when those scripts are present.
Prints one row per probe: trials, failures, data lost. Bounded in time; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import inspect
import io
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


class HashEncoder:
    """Bag-of-hashed-words vectors: deterministic and fast (the model's quality is not under test)."""

    name, dim = "fake-hash", 64

    def encode(self, texts) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = float(np.linalg.norm(out[i]))
            out[i] /= norm or 1.0
        return out


HOSTILE = ["\udfff", "\ud800", "\x00", "\x1b[31m", "\u202e", "\u2066", "\n", "\t", "\r", "?!?", "é", "猫", "🙂",
           "'", '"', "<script>", "%s", "{}", "\\", "-k", "--json", " "]
WORDS = ["When", "did", "How", "many", "What", "about", "And", "in", "2021", "2025", "NATO", "ASEM", "Ukraine",
         "the", "EU", "Japan", "who", "is", "it", "they"]


def fuzzed(n: int, seed: int = 0) -> list[str]:
    """`n` questions mixing real words, hostile characters and odd lengths (some over the limit)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [rng.choice(WORDS + HOSTILE) for _ in range(rng.randint(0, 12))]
        if rng.random() < 0.02:
            parts.append("x" * rng.choice([2001, 50_000]))
        out.append("".join(p + rng.choice(["", " "]) for p in parts))
    return out


def probe_fuzz(n: int, work: Path) -> dict:
    """Fuzzed questions through Retriever.search, Assistant.ask (with a conversation) and `rag ask`."""
    from rag.errors import InputError
    from rag.pipeline import Pipeline
    from rag.serve import cli

    pipeline = Pipeline.open(work / "fuzz-index", ROOT / "seeds", embedder=HashEncoder())
    crashes, refused = 0, 0
    history: list[tuple[str, str]] = []
    for i, question in enumerate(fuzzed(n)):
        try:
            pipeline.retriever.search(question, k=(i % 7) or None)
            answer = pipeline.ask(question, history=history[-2:])
            history.append((answer.question, answer.text))
        except InputError:
            refused += 1
        except Exception as exc:  # noqa: BLE001 - counting crashes is the point
            crashes += 1
            print(f"  crash on {question[:60]!r}: {type(exc).__name__}: {exc}", file=sys.stderr)
    cli_crashes = 0
    for question in fuzzed(max(1, n // 20), seed=1):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = cli.main(["search", question, "--index", str(work / "fuzz-index"), "--mode", "bm25"])
        if code not in (0, 1) or (code == 1 and err.getvalue().count("\n") != 1):
            cli_crashes += 1
    return {"probe": "fuzzed questions (API + CLI)", "trials": n + max(1, n // 20), "failures": crashes + cli_crashes,
            "lost": 0, "note": f"{refused} refused with one line, the rest answered"}


def probe_bad_files(work: Path) -> dict:
    """Bad files beside good ones: the good ones searchable, nothing stale afterwards, no traceback."""
    from rag.index.store import stale_files
    from rag.pipeline import Pipeline, build_index

    docs = work / "bad-docs"
    shutil.copytree(ROOT / "seeds", docs)
    (docs / "latin1.txt").write_bytes("Caf\xe9 notes\n\nd\xe9j\xe0 vu.\n".encode("latin-1"))
    (docs / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "heading.md").write_text("# Only a heading\n", encoding="utf-8")
    failures = 0
    first = build_index(docs, work / "bad-index", embedder=HashEncoder())
    again = build_index(docs, work / "bad-index", embedder=HashEncoder())
    pipeline = Pipeline.open(work / "bad-index", docs, embedder=HashEncoder())
    failures += again.wrote  # an unchanged folder must not be rewritten
    failures += bool(stale_files(pipeline.retriever.index.manifest))
    failures += not pipeline.search("ASEM", mode="bm25")
    return {"probe": "bad files beside good ones", "trials": 1, "failures": int(failures), "lost": 0,
            "note": f"{len(first.warnings)} skipped with a warning; re-index wrote {again.wrote}"}


def external(name: str, quick: bool) -> list[dict]:
    path = ROOT / "eval" / f"{name}.py"
    if not path.exists():
        return [{"probe": name, "trials": 0, "failures": 0, "lost": 0, "note": "script not present"}]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    takes_quick = "quick" in inspect.signature(module.probes).parameters
    return module.probes(quick=quick) if takes_quick else module.probes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (a smoke run)")
    args = parser.parse_args()
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(probe_fuzz(200 if args.quick else 1000, Path(tmp)))
        rows.append(probe_bad_files(Path(tmp)))
    rows += external("reliability_index", args.quick)
    rows += external("reliability_web", args.quick)
    print(f"{'probe':44} {'trials':>7} {'failures':>9} {'lost':>5}  note")
    for r in rows:
        print(f"{r['probe']:44} {r['trials']:>7} {r['failures']:>9} {r['lost']:>5}  {r['note']}")
    print(f"({time.perf_counter() - t0:.0f}s)")
    return 1 if any(r["failures"] or r["lost"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
