"""rag.index.local across generations: a load gets one generation whole while builds swap the directory
(also racing builds in another process), waits out the instant a swap leaves no directory, and reports a
corrupted file at once; a build deletes what killed builds of its index left, and only that; fresh builds
are byte-identical whatever PYTHONHASHSEED."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from conftest import ROOT, FakeEmbedder
from rag.errors import IndexStateError
from rag.index import generations as gen
from rag.index import local as store
from rag.index.build import build_index
from rag.ingest.sentences import split_sentences

GEN_TEXT = "Generation {g}\n\nThe marker genmark{g:04d} tags build {g} with code{c}.\n"


def gen_text(g: int) -> str:
    """gen.txt of generation g: one passage whose words (hence vector and BM25 terms) name g."""
    return GEN_TEXT.format(g=g, c=g * 7919 % 10007)


def generation(index) -> int:
    """The generation of a loaded index, checked whole: its passages, vectors, sentence vectors, BM25 terms and
    manifest all agree (AssertionError otherwise); every generation has the same number of passages."""
    fake = FakeEmbedder()
    [p] = [p for p in index.passages if p.doc == "gen.txt"]
    g = int(re.search(r"genmark(\d+)", p.text).group(1))
    assert p.text == gen_text(g).split("\n\n")[1].strip()
    np.testing.assert_allclose(index.vectors(), fake.encode([q.context() for q in index.passages]), atol=1e-6)
    sentences = [q.text[s:e] for q in index.passages for s, e in split_sentences(q.text)]
    stored = np.vstack([index.passage_sentences(i) for i in range(len(index.passages))])
    np.testing.assert_allclose(stored, fake.encode(sentences), atol=0.01)  # int8 codes
    assert [t for t in index.term_stats().vocabulary if t.startswith("genmark")] == [f"genmark{g:04d}"]
    assert index.manifest.files["gen.txt"]["sha256"] == hashlib.sha256(gen_text(g).encode()).hexdigest()
    return g


def others(index: Path) -> list[str]:
    """Everything beside `index` that a build of it made, but the index and its lock file."""
    return sorted(p.name for p in index.parent.iterdir() if p.name.startswith(f".{index.name}.")
                  and p != store.lock_path(index))


@pytest.fixture
def generations(toy_docs, tmp_path):
    """The toy corpus plus gen.txt, indexed as generation 1, and `build(g, index)` for generation g."""
    def build(g: int, index: Path = tmp_path / "index"):
        (toy_docs / "gen.txt").write_text(gen_text(g), encoding="utf-8")
        build_index(toy_docs, index, embedder=FakeEmbedder())
        return index

    return build(1), build


def run_script(script: str, *args, seed: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    if seed is not None:
        env["PYTHONHASHSEED"] = seed
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ---- a load gets one generation, whole ----

@pytest.mark.parametrize("read", [1, 2, 5, -1, 0])  # files read before the swap (manifest first; -1: all but one; 0: all)
def test_a_swap_during_a_load_gives_one_generation_whole(generations, monkeypatch, read):
    index, build = generations
    files = 1 + len(store.read_manifest(index).checksums)
    read = read % files or files
    real, count = gen._read_in, []

    def read_then_swap(index_dir, handle, name):
        data = real(index_dir, handle, name)
        count.append(name)
        if len(count) == read:
            build(2)  # a whole build (it loads the index too) and its swap, in the middle of this load
        return data

    monkeypatch.setattr(gen, "_read_in", read_then_swap)
    loaded = store.load(index)
    monkeypatch.undo()
    assert generation(loaded) == (2 if read < files else 1)  # read everything before the swap: the old one, whole
    assert len(loaded.passages) == len(store.load(index).passages)  # the two generations are the same size


def test_a_load_waits_out_the_missing_directory_between_a_swaps_renames(generations, monkeypatch, tmp_path):
    """The directory vanishes after the reader looked for it (a build's first rename) and comes back a moment
    later (its second): the load waits for it while the build holds the lock, and gets the new generation."""
    index, build = generations
    new = build(2, tmp_path / "new")
    real, calls = gen._recover, []

    def recover_then_swap_starts(index_dir, **kwargs):
        real(index_dir, **kwargs)
        if not calls:
            os.replace(index, gen._displaced(index))
            threading.Timer(0.3, os.replace, (new, index)).start()
        calls.append(index_dir)

    monkeypatch.setattr(gen, "_recover", recover_then_swap_starts)
    t0 = time.monotonic()
    with FileLock(store.lock_path(index)):
        loaded = store.load(index)
    assert generation(loaded) == 2 and time.monotonic() - t0 < gen.SWAP_WAIT / 2 and len(calls) >= 2


def test_a_corrupted_file_is_reported_at_once_not_read_again(toy_index, monkeypatch):
    monkeypatch.setattr(gen, "SWAP_WAIT", 60.0)
    (toy_index / store.DENSE).write_bytes(b"garbage")
    real, names = gen._read_in, []
    monkeypatch.setattr(gen, "_read_in", lambda d, h, name: names.append(name) or real(d, h, name))
    t0 = time.monotonic()
    with pytest.raises(IndexStateError, match="dense.faiss does not match its checksum"):
        store.load(toy_index)
    assert time.monotonic() - t0 < 5 and names.count(store.MANIFEST) == 1


RACE_SCRIPT = """
import sys
from pathlib import Path
from conftest import FakeEmbedder
from rag.index.build import build_index
docs, index, builds, text = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
for g in range(2, builds + 2):
    (docs / "gen.txt").write_text(text.format(g=g, c=g * 7919 % 10007), encoding="utf-8")
    build_index(docs, index, embedder=FakeEmbedder())
"""


def test_loads_racing_builds_in_another_process_get_one_generation_whole(generations, toy_docs):
    index, _ = generations
    builds = 12
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-c", RACE_SCRIPT, str(toy_docs), str(index), str(builds), GEN_TEXT],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, failures, deadline = [], [], time.monotonic() + 180
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                seen.append(generation(store.load(index)))
            except (IndexStateError, AssertionError) as exc:
                failures.append(str(exc).splitlines()[0])
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert failures == []
    assert len(set(seen)) >= 2, seen  # the loads did overlap the builds
    assert seen == sorted(seen)  # never an older generation after a newer one
    assert generation(store.load(index)) == builds + 1 and others(index) == []


# ---- a build deletes what killed builds of its index left, and nothing else ----

def test_save_deletes_what_crashed_saves_of_this_index_left_and_nothing_else(generations, tmp_path):
    index, build = generations
    crashed = [".index.tmp-abcd_123", ".index.tmp-partial1", ".index.old"]
    kept = [".other.tmp-abcdefgh", ".index2.tmp-abcdefgh", ".index.tmp-abc", ".index.tmp-abcdefgh.bak",
            ".index.tmp-ABCDEFGH", "index.tmp-abcdefgh", ".index.tmp-notes123", ".target"]
    for name in crashed + kept:
        shutil.copytree(index, tmp_path / name)
    (tmp_path / ".index.tmp-empty000").mkdir()  # killed just after mkdtemp
    (tmp_path / ".index.tmp-partial1" / store.DENSE).unlink()  # killed mid-write
    (tmp_path / ".index.tmp-notes123" / "todo.txt").write_text("not an index file", encoding="utf-8")
    (tmp_path / ".index.tmp-file0000").write_text("a file, not a directory", encoding="utf-8")
    (tmp_path / ".index.tmp-link0000").symlink_to(tmp_path / ".target")
    kept += [".index.tmp-file0000", ".index.tmp-link0000"]
    assert [p.name for p in store.leftovers(index)] == sorted(crashed + [".index.tmp-empty000"])
    build(2)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".index.lock") == sorted(kept + ["docs", "index"])
    assert all((tmp_path / name / store.MANIFEST).is_file() for name in kept if "file" not in name)  # untouched
    assert generation(store.load(index)) == 2


def test_a_build_with_nothing_to_do_still_deletes_leftovers(generations, toy_docs):
    index, _ = generations
    for name in (".index.tmp-abcdefgh", ".index.old"):
        shutil.copytree(index, index.parent / name)
    before = {p.relative_to(index): p.read_bytes() for p in index.rglob("*") if p.is_file()}
    summary = build_index(toy_docs, index, embedder=FakeEmbedder())
    assert not summary.wrote and others(index) == []
    assert {p.relative_to(index): p.read_bytes() for p in index.rglob("*") if p.is_file()} == before


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from conftest import FakeEmbedder
from rag.index import lexical
from rag.index.build import build_index
docs, index, where = sys.argv[1], sys.argv[2], sys.argv[3]
real = os.replace
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
def replace(src, dst):
    if where == "between the renames" and Path(dst) == Path(index):
        die()
    real(src, dst)
    if where == "after the swap" and Path(dst) == Path(index):
        die()
os.replace = replace
if where == "writing":
    lexical.save = die
build_index(docs, index, embedder=FakeEmbedder())
"""


@pytest.mark.parametrize("where, survivor, left", [
    ("writing", 1, [".index.tmp-"]),
    ("between the renames", 1, [".index.old", ".index.tmp-"]),
    ("after the swap", 2, [".index.old"]),
])
def test_a_killed_build_leaves_one_whole_generation_and_the_next_build_cleans_up(generations, toy_docs, where,
                                                                                 survivor, left):
    index, build = generations
    (toy_docs / "gen.txt").write_text(gen_text(2), encoding="utf-8")
    result = run_script(KILL_SCRIPT, toy_docs, index, where)
    assert result.returncode == -9, result.stderr
    assert [re.sub(r"tmp-.*", "tmp-", name) for name in others(index)] == left
    assert generation(store.load(index)) == survivor  # with the build gone, a reader puts the old one back
    build(2)
    assert generation(store.load(index)) == 2 and others(index) == []


# ---- fresh builds are byte-identical whatever PYTHONHASHSEED ----

DETERMINISM_SCRIPT = """
import sys
from bm25s import get_unique_tokens
from conftest import TOY_FILES, FakeEmbedder
from rag.index import lexical
from rag.index.build import build_index
build_index(sys.argv[1], sys.argv[2], embedder=FakeEmbedder())
print(" ".join(get_unique_tokens(lexical.tokenize(list(TOY_FILES.values())), show_progress=False)))
"""


def test_fresh_builds_are_byte_identical_whatever_the_hash_seed(toy_docs, tmp_path):
    runs = {seed: run_script(DETERMINISM_SCRIPT, toy_docs, tmp_path / seed / "index", seed=seed) for seed in ("1", "2")}
    assert all(r.returncode == 0 for r in runs.values()), [r.stderr for r in runs.values()]
    assert runs["1"].stdout != runs["2"].stdout  # the seeds do reorder bm25s's own vocabulary (set order)
    files = [{p.relative_to(tmp_path / seed / "index").as_posix(): p.read_bytes()
              for p in sorted((tmp_path / seed / "index").rglob("*")) if p.is_file()} for seed in runs]
    assert {store.PASSAGES, store.DENSE, store.MANIFEST, store.SENTENCES, "bm25/vocab.index.json"} <= set(files[0])
    assert sorted(files[0]) == sorted(files[1])
    assert [name for name in files[0] if files[0][name] != files[1][name]] == []
