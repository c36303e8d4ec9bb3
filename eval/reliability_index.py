"""Reliability probes of the local index directory, on a temporary copy of seeds/ with a fast fake encoder.

    python eval/reliability_index.py            # from the project root; about a minute, exits 1 on any failure
    python eval/reliability_index.py --quick    # fewer trials

Every build adds `generation.txt` naming its generation g (one passage, so every generation has as many
passages as the last): a loaded index is checked whole when its passages, vectors, sentence vectors,
BM25 vocabulary and manifest all name the same g.
  kill -9 mid-build     10 builds killed at random moments (seeded); after each the index must load as the
                        previous or the new generation, whole, and after the next build nothing may be left
                        beside it (`.index.tmp-*`, `.index.old`)
  kill -9 at save steps the same, killed exactly while writing, between the swap's renames, after the swap
  loads racing builds   50 builds in a subprocess while this process loads in a loop
  PYTHONHASHSEED        fresh builds under seeds 1, 2 and 3 must give byte-identical files
`probes()` returns one row per probe: trials, failures (a load that raised, a mixed or unexpected
generation, leftovers, differing files) and lost (of those, a load that gave a mix of generations, an
older one than expected, or no index at all). Importable by path (`importlib`); the subprocesses
are this script run with `--child`. Does not use the real model or touch the project's own index.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
_WORD = re.compile(r"\w+")
SAVE_STEPS = ("writing", "between the renames", "after the swap")


class FakeEncoder:
    """Bag-of-hashed-words vectors (tests/conftest.py's FakeEmbedder): deterministic and fast."""

    name, dim = "fake-hash", 128

    def vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            v[int(hashlib.md5(word.encode("utf-8")).hexdigest(), 16) % self.dim] += 1.0
        norm = float(np.linalg.norm(v))
        return v / norm if norm else v

    def encode(self, texts) -> np.ndarray:
        return np.array([self.vector(t) for t in texts], dtype=np.float32).reshape(-1, self.dim)


def gen_text(g: int) -> str:
    return f"Generation {g}\n\nThe marker genmark{g:04d} tags build {g} with code{g * 7919 % 10007}.\n"


def write_generation(docs: Path, g: int) -> None:
    (docs / "generation.txt").write_text(gen_text(g), encoding="utf-8")


def generation(index) -> int:
    """The generation of a loaded index; ValueError when its parts name different ones."""
    from rag.ingest.sentences import split_sentences

    fake = FakeEncoder()
    [(i, p)] = [(i, p) for i, p in enumerate(index.passages) if p.doc == "generation.txt"]
    g = int(re.search(r"genmark(\d+)", p.text).group(1))
    sentences = fake.encode([p.text[s:e] for s, e in split_sentences(p.text)])
    parts = {"vector": np.allclose(index.vectors()[i], fake.vector(p.context()), atol=1e-6),
             "sentences": np.allclose(index.passage_sentences(i), sentences, atol=0.01),  # int8-stored
             "bm25": [t for t in index.term_stats().vocabulary if t.startswith("genmark")] == [f"genmark{g:04d}"],
             "manifest": index.manifest.files["generation.txt"]["sha256"] == hashlib.sha256(gen_text(g).encode()).hexdigest()}
    wrong = [name for name, ok in parts.items() if not ok]
    if wrong:
        raise ValueError(f"passages of generation {g} with another generation's {', '.join(wrong)}")
    return g


def leftovers(index: Path) -> list[str]:
    return sorted(p.name for p in index.parent.iterdir() if p.name.startswith(f".{index.name}.")
                  and p.name != f".{index.name}.lock")


def corpus(work: Path, name: str) -> tuple[Path, Path]:
    """A copy of seeds/ plus generation 0, and where its index goes (built once, in this process)."""
    from rag.index.build import build_index

    docs = work / name / "docs"
    shutil.copytree(ROOT / "seeds", docs)
    write_generation(docs, 0)
    build_index(docs, work / name / "index", embedder=FakeEncoder())
    return docs, work / name / "index"


def child(*args: str, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.Popen([sys.executable, str(SCRIPT), "--child", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(proc: subprocess.Popen, timeout: float = 120) -> None:
    if not select.select([proc.stdout], [], [], timeout)[0] or proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"build subprocess did not start: {proc.communicate()[1][-500:]}")


def killed_builds(work: Path, steps: tuple[str, ...] | None, trials: int, rng: random.Random) -> dict:
    """Builds of generation g killed (at random moments, or at `steps`); the index must be g-1 or g, whole."""
    from rag.index import local
    from rag.index.build import build_index

    docs, index = corpus(work, "steps" if steps else "kills")
    window, seen, failures, lost, notes = 0.0, {"previous": 0, "new": 0}, 0, 0, []
    if not steps:  # how long an unhurried build takes in a subprocess
        write_generation(docs, 1)
        proc = child("build", str(docs), str(index))
        wait_ready(proc)
        t0 = time.perf_counter()
        proc.stdout.readline()  # "built"
        window = time.perf_counter() - t0
        proc.communicate()
    first = 1 if steps else 2
    left_after_kill = left_after_build = finished = 0
    for g in range(first, first + trials):
        write_generation(docs, g)
        proc = child("build", str(docs), str(index), *([steps[(g - first) % len(steps)]] if steps else []))
        wait_ready(proc)
        if not steps:
            time.sleep(rng.uniform(0, window))
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
        finished += proc.returncode == 0
        left_after_kill += bool(leftovers(index))
        try:
            got = generation(local.load(index))
            if got not in (g - 1, g):
                raise ValueError(f"generation {got}, expected {g - 1} or {g}")
            seen["new" if got == g else "previous"] += 1
        except Exception as exc:  # noqa: BLE001 - counted and named in the note
            failures, lost = failures + 1, lost + 1
            notes.append(f"g{g}: {str(exc).splitlines()[0][:120]}")
            continue
        build_index(docs, index, embedder=FakeEncoder())
        left_after_build += bool(leftovers(index))
        if leftovers(index) or generation(local.load(index)) != g:
            failures += 1
            notes.append(f"g{g}: left {leftovers(index)} after the next build")
    how = f"at {', '.join(steps)}" if steps else f"0-{window:.2f}s into a {window:.2f}s build ({finished} had finished)"
    note = (f"killed {how}: then {seen['previous']} previous, {seen['new']} new generation, whole; "
            f"leftovers after {left_after_kill} kills, after {left_after_build} next builds")
    return {"probe": "kill -9 at save steps" if steps else "kill -9 mid-build (random moments)",
            "trials": trials, "failures": failures, "lost": lost, "note": "; ".join([note] + notes[:3])}


def racing_loads(work: Path, builds: int, limit: float = 240.0) -> dict:
    """`builds` builds in a subprocess while this process loads the index in a loop."""
    from rag.index import generations, local

    docs, index = corpus(work, "race")
    opened, real_open = [0], generations._open_dir
    # count how many loads had to read a new generation or wait out a swap
    generations._open_dir = lambda *a: opened.__setitem__(0, opened[0] + 1) or real_open(*a)
    proc = child("race", str(docs), str(index), str(builds))
    wait_ready(proc)
    loads, failed, lost, retried, seen, times, notes = 0, 0, 0, 0, [], [], []
    deadline = time.monotonic() + limit
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            loads, before, t0 = loads + 1, opened[0], time.perf_counter()
            try:
                loaded = local.load(index)
                times.append(time.perf_counter() - t0)
                retried += opened[0] - before > 1
                got = generation(loaded)
                if seen and got < seen[-1]:
                    raise ValueError(f"generation {got} after {seen[-1]}")
                seen.append(got)
            except ValueError as exc:
                failed, lost = failed + 1, lost + 1
                notes.append(str(exc).splitlines()[0][:120])
            except Exception as exc:  # noqa: BLE001 - a failed load, counted and named
                failed += 1
                notes.append(str(exc).splitlines()[0][:120])
    finally:
        generations._open_dir = real_open
        if proc.poll() is None:
            proc.kill()
            notes.append(f"builds stopped after {limit:.0f}s")
        _, err = proc.communicate()
    if proc.returncode:
        failed += 1
        notes.append(f"build subprocess exit {proc.returncode}: {err.strip().splitlines()[-1:]}")
    p50 = statistics.median(times) * 1000 if times else 0.0
    note = (f"{builds} builds; {len(set(seen))} generations seen; {retried} loads re-read after a swap; "
            f"{failed} failed, {lost} mixed or older; load p50 {p50:.0f} ms")
    return {"probe": "loads racing builds", "trials": loads, "failures": failed, "lost": lost,
            "note": "; ".join([note] + notes[:3])}


def hash_seeds(work: Path, seeds: tuple[str, ...] = ("1", "2", "3")) -> dict:
    """Fresh builds of one folder under different PYTHONHASHSEED: their files must be byte-identical."""
    docs = work / "hash" / "docs"
    shutil.copytree(ROOT / "seeds", docs)
    write_generation(docs, 0)
    files = []
    for seed in seeds:
        index = work / "hash" / seed / "index"
        proc = child("build", str(docs), str(index), env={"PYTHONHASHSEED": seed})
        wait_ready(proc)
        _, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"build under PYTHONHASHSEED={seed} failed: {err[-500:]}")
        files.append({p.relative_to(index).as_posix(): p.read_bytes() for p in sorted(index.rglob("*")) if p.is_file()})
    differ = [sorted(n for n in set(f) | set(files[0]) if f.get(n) != files[0].get(n)) for f in files[1:]]
    note = (f"{len(files[0])} files (passages, FAISS, BM25, sentences, manifest) identical under seeds {', '.join(seeds)}"
            if not any(differ) else f"differ: {', '.join(sorted({n for d in differ for n in d}))}")
    return {"probe": "builds under PYTHONHASHSEED 1/2/3", "trials": len(differ), "failures": sum(map(bool, differ)),
            "lost": 0, "note": note}


def probes(quick: bool = False) -> list[dict]:
    """Every probe, as rows {"probe", "trials", "failures", "lost", "note"} (a minute or so; `quick`: fewer)."""
    rng = random.Random(20250601)
    with tempfile.TemporaryDirectory(prefix="reliability-index-") as tmp:
        work = Path(tmp)
        return [killed_builds(work, None, 4 if quick else 10, rng),
                killed_builds(work, SAVE_STEPS, len(SAVE_STEPS), rng),
                racing_loads(work, 15 if quick else 50),
                hash_seeds(work)]


def run_child(args: list[str]) -> None:
    """A build subprocess: `build DOCS INDEX [STEP]` (killing itself at STEP) or `race DOCS INDEX N`. Says
    "ready" once everything a build needs is imported, and "built" (then exits at once) when done."""
    import faiss  # noqa: F401 - imported (and warmed up) before "ready": a random kill lands in the build

    from rag.index import lexical
    from rag.index.build import build_index
    from rag.ingest.chunk import chunk_document
    from rag.ingest.load import parse

    lexical.build(["Warm up the tokenizer, stemmer and bm25s."])
    chunk_document(parse("warm.txt", "Warm up\n\nThe chunker.\n"))
    mode, docs, index = args[0], Path(args[1]), Path(args[2])
    step = args[3] if mode == "build" and len(args) > 3 else None
    real_replace = os.replace

    def die(*_args, **_kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    def replace(src, dst):
        if step == "between the renames" and Path(dst) == index:
            die()
        real_replace(src, dst)
        if step == "after the swap" and Path(dst) == index:
            die()

    os.replace = replace
    if step == "writing":
        lexical.save = die
    print("ready", flush=True)
    for g in range(1, int(args[3]) + 1) if mode == "race" else [None]:
        if g is not None:
            write_generation(docs, g)
        build_index(docs, index, embedder=FakeEncoder())
    print("built", flush=True)
    os._exit(0)  # no interpreter teardown: "built" is the end


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        run_child(argv[1:])
        return 0
    t0 = time.perf_counter()
    rows = probes(quick="--quick" in argv)
    print(f"{'probe':36} {'trials':>6} {'failures':>8} {'lost':>4}  note")
    for r in rows:
        print(f"{r['probe']:36} {r['trials']:>6} {r['failures']:>8} {r['lost']:>4}  {r['note']}")
    print(f"({time.perf_counter() - t0:.0f}s)")
    return 1 if any(r["failures"] or r["lost"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
