"""Cold start: how long `rag ask` takes from process start to printed answer, and what it imports.

Runs `python -m rag.serve.cli ask QUESTION --index INDEX` `--runs` times, each in a fresh process
(after one warm-up run, so the files are in the page cache and the ONNX export exists), and prints
the median, min and max wall time; then the same command once under `python -X importtime`, with
the total of its top-level imports, the slowest of them, and whether torch, transformers or
sentence-transformers were imported at all. Figures are printed, not asserted.

    python eval/bench_cold_start.py [--index index] [--runs 5] [QUESTION]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What is the role of the regional coordinator?"
HEAVY = ("torch", "transformers", "sentence_transformers")


def command(index: str, question: str) -> list[str]:
    return [sys.executable, "-m", "rag.serve.cli", "ask", question, "--index", index]


def top_imports(stderr: str) -> list[tuple[float, str]]:
    """(cumulative ms, module) of each top-level import in `python -X importtime` output."""
    rows = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            rows.append((int(m.group(1)) / 1000, m.group(2)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default=QUESTION)
    parser.add_argument("--index", default="index")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    cmd = command(args.index, args.question)
    # a warm-up run: the page cache, the ONNX export, an index update
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if first.returncode != 0:
        print(first.stderr, file=sys.stderr)
        return first.returncode
    walls = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
        walls.append(time.perf_counter() - t0)
    print(f"cold `rag ask` over {args.runs} runs: median {statistics.median(walls):.2f} s "
          f"(min {min(walls):.2f}, max {max(walls):.2f})")

    traced = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    imports = top_imports(traced.stderr)
    names = {name.strip() for line in traced.stderr.splitlines() for name in line.split("|")[-1:]}
    print(f"imports (python -X importtime, top level): {sum(ms for ms, _ in imports):.0f} ms in all; slowest:")
    for ms, name in sorted(imports, reverse=True)[:8]:
        print(f"  {ms:7.0f} ms  {name}")
    print("heavy libraries imported:", ", ".join(h for h in HEAVY if h in names) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
