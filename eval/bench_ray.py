"""A build in one process against the same build on a local Ray with 2 workers (issue 13 part 7).

Builds the SQuAD-dev documents (48 Wikipedia articles, /work/shared/benchmarks/squad-dev/docs) from
scratch with the default model three ways, each into its own fresh index folder:
  - one process: `build_index(docs, dir)` (OpenVINO, a stream of one thread per core);
  - Ray, cold: `build_index(docs, dir, ray=True)`, which starts a local Ray (one worker per core), reads
    and chunks in Ray tasks, embeds in one actor per core (each loading the model), and stops Ray: what
    `rag index DOCS --ray` costs;
  - Ray, warm: the same with a Ray already started by the caller (`ray.init` first; not timed), so
    only the per-build costs remain (worker model loads, moving texts and vectors).
It prints the seconds of each (and of each stage, from the build's progress callback), passages per
second, the overhead against one process, and how far the Ray index is from the one-process index
(passages identical, largest vector difference). Figures are printed, not asserted.

On a machine with 2 cores there is nothing to gain: one process already runs the encoder on both
cores, and 2 Ray workers of one thread each share the same 2 cores, plus Ray's start, its worker
processes and a model load per worker. The point measured here is what distribution costs, and
that the result is the same; the speed-up comes with more machines (docs/scaling.md).

    python eval/bench_ray.py [--docs /work/shared/benchmarks/squad-dev/docs] [--workers 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOCS = Path("/work/shared/benchmarks/squad-dev/docs")


class Stages:
    """A progress callback remembering when each stage first and last reported."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.total: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter() - self.t0
        self.first.setdefault(stage, now)
        self.last[stage] = now
        self.total[stage] = total

    def span(self, stage: str) -> float:
        return self.last.get(stage, 0.0) - self.first.get(stage, 0.0)


def build(docs: Path, index: Path, ray) -> tuple[object, float, Stages]:
    from rag.index.build import build_index

    stages = Stages()
    t0 = time.perf_counter()
    summary = build_index(docs, index, ray=ray, progress=stages)
    return summary, time.perf_counter() - t0, stages


def compare(one: Path, two: Path) -> tuple[bool, float]:
    import numpy as np

    from rag.index import local

    a, b = local.load(one), local.load(two)
    same = a.passages == b.passages
    worst = float(np.abs(a.vectors() - b.vectors()).max(initial=0.0)) if same else float("nan")
    if same:
        for i in range(len(a.passages)):
            worst = max(worst, float(np.abs(a.passage_sentences(i) - b.passage_sentences(i)).max(initial=0.0)))
    return same, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the warm local Ray (default 2)")
    args = parser.parse_args(argv)
    if not args.docs.is_dir():
        print(f"bench_ray: no documents folder {str(args.docs)!r}", file=sys.stderr)
        return 1
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray

    from rag.index.embed import query_embedder
    from rag.settings import DEFAULT_MODEL

    query_embedder()  # the ONNX export, once, before any timing (it is cached on disk)
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        runs = {}
        runs["one process"] = build(args.docs, work / "one", None)
        runs["Ray, cold (starts Ray)"] = build(args.docs, work / "cold", True)
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR, _system_config={"worker_niceness": 0})  # as rag's own local Ray
        ray_start = time.perf_counter() - t0
        try:
            runs[f"Ray, warm ({args.workers} workers)"] = build(args.docs, work / "warm", True)
        finally:
            ray.shutdown()
        checks = {name: compare(work / "one", work / folder) for name, folder in
                  ((n, f) for n, f in zip(list(runs)[1:], ("cold", "warm")))}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = runs["one process"][0]
    texts = runs["one process"][2].total.get("embed", 0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.docs}: {summary.files} files, {summary.passages} passages, {texts} texts embedded "
          f"(passage contexts + sentences); {cores} cores; model {DEFAULT_MODEL} (ONNX Runtime)")
    names = list(runs)
    base = runs["one process"][1]
    rows = [
        ("build seconds (wall)", lambda r: f"{r[1]:.2f}"),
        ("  read + chunk s", lambda r: f"{r[2].span('read'):.2f}"),
        ("  embed s", lambda r: f"{r[2].span('embed'):.2f}"),
        ("  save s", lambda r: f"{r[2].span('save'):.2f}"),
        ("passages/s", lambda r: f"{r[0].passages / r[1]:.1f}"),
        ("texts embedded/s", lambda r: f"{texts / r[1]:.1f}"),
        ("overhead vs one process", lambda r: f"{r[1] - base:+.2f}s ({(r[1] / base - 1) * 100:+.0f}%)"),
    ]
    width = max(len(n) for n in names) + 2
    print(f"{'':26}" + "".join(f"{n:>{width}}" for n in names))
    for label, cell in rows:
        print(f"{label:26}" + "".join(f"{cell(runs[n]):>{width}}" for n in names))
    print(f"{'same passages':26}{'-':>{width}}" + "".join(f"{str(checks[n][0]):>{width}}" for n in names[1:]))
    print(f"{'max |vector difference|':26}{'-':>{width}}"
          + "".join(f"{checks[n][1]:>{width}.2e}" for n in names[1:]))
    print(f"(the warm Ray took {ray_start:.2f}s to start, not counted above; the cold build's read stage "
          f"includes starting Ray)")
    load = os.getloadavg()[1] if hasattr(os, "getloadavg") else 0.0
    print(f"load average over the last 5 minutes: {load:.1f} on {cores} cores")
    print(f"On {cores} cores one process already encodes on every core; the Ray workers share the same "
          f"cores, so on an idle machine the Ray figures are its overhead (start, worker processes, a model "
          f"load per worker, moving texts and vectors), not a speed-up. The gain needs more cores or machines.")
    if load > cores and min(runs[n][1] for n in names[1:]) < base:
        print(f"Ray came out faster here only because the machine was oversubscribed (load {load:.1f} on "
              f"{cores} cores): one process's ONNX Runtime threads wait for each other when one is descheduled, "
              f"single-threaded workers do not. Rerun on an idle machine for the overhead.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
