"""rag.index.distributed: a build on a local Ray of 2 workers gives the index a build in one process
gives (passages, vectors, sentence vectors, texts, manifest, and on the seeds with the real model the
same top 10 for every question of eval/qa.jsonl); incremental rebuilds embed only what changed;
progress is shown; errors (no Ray, an embedder that cannot travel, a worker's failure) are one line.

One Ray is started for the module (2 CPUs) and shut down at its end; `rag index --ray` starts its own
in a subprocess, which is also checked for a quiet console."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SEEDS, TOY_FILES, FakeEmbedder, write_files
from rag.errors import RagError
from rag.index import local
from rag.index.build import build_index
from rag.serve.cli import build_parser, main
from rag.settings import MODES

# Enough text for several embedding steps (EMBED_STEP texts each), so both workers get some.
LONG = "\n\n".join(
    f"Section {i}\n\n" + " ".join(f"Paragraph {i} sentence {j} tells of lanterns, rivers and clocks number {i * j}."
                                  for j in range(12))
    for i in range(60))
FILES = {**TOY_FILES, "long.txt": LONG, "empty.txt": "", "headings.md": "# Only a heading\n"}


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs (2 workers) for the whole module; builds with ray=True use it."""
    import ray

    import conftest

    for attempt in range(2):  # a node that did not come up in Ray's 30 s (seen once, on a cold machine): again
        try:
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)
            break
        except Exception:
            ray.shutdown()
            if attempt:
                raise
    for module in (conftest, sys.modules[__name__]):  # the workers cannot import the test modules: send their classes
        ray.cloudpickle.register_pickle_by_value(module)
    yield ray
    for module in (conftest, sys.modules[__name__]):
        ray.cloudpickle.unregister_pickle_by_value(module)
    ray.shutdown()


def corpus(folder: Path) -> Path:
    docs = write_files(folder, FILES)
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02 not text \xff\xfe\x00" * 20)
    return docs


def assert_same_index(one: Path, two: Path, tolerance: float = 0.0) -> tuple[float, float]:
    """The two indexes hold the same passages, texts and manifest, and vectors within `tolerance`;
    returns the largest differences of passage and sentence vectors."""
    a, b = local.load(one), local.load(two)
    assert a.passages == b.passages
    assert (a.manifest.model, a.manifest.dim, a.manifest.files, a.manifest.skipped) == \
        (b.manifest.model, b.manifest.dim, b.manifest.files, b.manifest.skipped)
    assert {p.doc for p in a.passages} == {p.doc for p in b.passages}
    for doc in {p.doc for p in a.passages}:
        assert a.document_text(doc) == b.document_text(doc)
    vectors = float(np.abs(a.vectors() - b.vectors()).max(initial=0.0))
    sentences = max((float(np.abs(a.passage_sentences(i) - b.passage_sentences(i)).max(initial=0.0))
                     for i in range(len(a.passages))), default=0.0)
    assert vectors <= tolerance and sentences <= tolerance
    return vectors, sentences


def test_same_index_as_one_process(local_ray, tmp_path):
    docs = corpus(tmp_path / "docs")
    one = build_index(docs, tmp_path / "one", embedder=FakeEmbedder())
    seen: list[tuple[str, int, int]] = []
    two = build_index(docs, tmp_path / "two", embedder=FakeEmbedder(), ray=True,
                      progress=lambda *step: seen.append(step))
    assert_same_index(tmp_path / "one", tmp_path / "two")  # the fake embedder is exact
    assert (two.files, two.added, two.passages, two.embedded, two.skipped, two.warnings) == \
        (one.files, one.added, one.passages, one.embedded, one.skipped, one.warnings)
    assert {doc for doc, _ in two.skipped} == {"binary.txt", "empty.txt", "headings.md"}
    # progress: every file read, every text embedded (several steps), then the save
    reads = [done for stage, done, total in seen if stage == "read"]
    embeds = [(done, total) for stage, done, total in seen if stage == "embed"]
    assert reads[0] == 0 and reads[-1] == len(FILES) + 1 and reads == sorted(reads)
    assert embeds[0][0] == 0 and embeds[-1][0] == embeds[-1][1] > 512 and len(embeds) >= 4
    assert [d for d, _ in embeds] == sorted(d for d, _ in embeds)
    assert seen[-1] == ("save", 1, 1)


def test_incremental_rebuild_embeds_only_changed_files(local_ray, tmp_path):
    docs = corpus(tmp_path / "docs")
    index = tmp_path / "index"
    build_index(docs, index, embedder=FakeEmbedder(), ray=True)
    (docs / "cat.txt").write_text("The Cat\n\nCats nap in sunny windows.\n", encoding="utf-8")
    (docs / "dog.txt").unlink()
    (docs / "owl.txt").write_text("The Owl\n\nOwls hoot at night and turn their heads.\n", encoding="utf-8")
    seen: list[tuple[str, int, int]] = []
    s = build_index(docs, index, embedder=FakeEmbedder(), ray=True, progress=lambda *step: seen.append(step))
    assert (s.added, s.changed, s.removed) == (1, 1, 1)
    assert s.embedded == 2  # one passage each for cat.txt and owl.txt
    embedded_texts = max(total for stage, _, total in seen if stage == "embed")
    assert embedded_texts == 4  # their two contexts and two sentences, nothing of the unchanged files
    build_index(docs, tmp_path / "fresh", embedder=FakeEmbedder())  # from scratch, in one process
    assert_same_index(index, tmp_path / "fresh")

    seen.clear()
    again = build_index(docs, index, embedder=FakeEmbedder(), ray=True, progress=lambda *step: seen.append(step))
    assert again.embedded == 0 and not again.wrote
    assert not [step for step in seen if step[0] == "embed"]


class Unpicklable(FakeEmbedder):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()


class Broken(FakeEmbedder):
    def encode(self, texts):
        raise RagError("the encoder broke on purpose")


def test_an_embedder_that_cannot_travel_is_one_line(local_ray, tmp_path):
    docs = write_files(tmp_path / "docs", TOY_FILES)
    with pytest.raises(RagError, match="cannot be sent to the Ray workers") as caught:
        build_index(docs, tmp_path / "index", embedder=Unpicklable(), ray=True)
    assert "\n" not in str(caught.value) and "Unpicklable" in str(caught.value)
    assert not (tmp_path / "index" / "manifest.json").exists()


def test_a_workers_error_comes_back_as_one_line(local_ray, tmp_path):
    docs = write_files(tmp_path / "docs", TOY_FILES)
    with pytest.raises(RagError) as caught:
        build_index(docs, tmp_path / "index", embedder=Broken(), ray=True)
    assert str(caught.value) == "the encoder broke on purpose"


def test_missing_ray_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails
    docs = write_files(tmp_path / "docs", TOY_FILES)
    with pytest.raises(RagError, match=r"pip install -e '\.\[cluster\]'") as caught:
        build_index(docs, tmp_path / "index", embedder=FakeEmbedder(), ray=True)
    assert "\n" not in str(caught.value)
    assert main(["index", str(docs), "--index", str(tmp_path / "index"), "--ray"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rag: error:") and ".[cluster]" in err[0]


class FlakyRay:
    """Stands in for the ray module: `init` fails the first `failures` times, as a node that did not come up."""

    def __init__(self, failures: int):
        self.failures, self.calls = failures, []

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs):
        self.calls.append("init")
        if self.failures:
            self.failures -= 1
            raise Exception("The current node timed out during startup.")

    def shutdown(self):
        self.calls.append("shutdown")


def test_a_local_ray_that_did_not_come_up_is_started_again_once():
    from rag.index import distributed

    executor = distributed.RayExecutor()
    executor.ray = FlakyRay(1)
    assert executor._connect() is executor.ray and executor.joined
    assert executor.ray.calls == ["init", "shutdown", "init"]
    executor.ray, executor.joined = FlakyRay(2), False
    with pytest.raises(RagError, match="^could not start or join a local Ray: Exception: The current node timed "
                                       "out during startup.$"):
        executor._connect()
    executor.ray, executor.joined = FlakyRay(1), False
    executor.address = "ray://head:10001"  # a cluster's address is tried once
    with pytest.raises(RagError, match="could not start or join Ray at 'ray://head:10001'"):
        executor._connect()
    assert executor.ray.calls == ["init"]


def test_the_ray_option(tmp_path, capsys):
    parse = build_parser().parse_args
    assert parse(["index"]).ray is None
    assert parse(["index", "docs", "--ray"]).ray is True
    assert parse(["index", "--ray=ray://head:10001", "docs"]).ray == "ray://head:10001"
    docs = write_files(tmp_path / "docs", TOY_FILES)
    assert main(["index", "--ray", str(docs)]) == 1  # argparse took the folder for the address
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a folder" in err[0] and "rag index DOCS --ray" in err[0]


@pytest.mark.e2e
@pytest.mark.parametrize("store", ["index", "milvus"])
def test_cli_starts_a_quiet_local_ray_and_stops_it(tmp_path, store):
    """`rag index DOCS --ray` with the real model, into the local index or a Milvus Lite file: its own
    local Ray, nothing printed but the summary."""
    docs = write_files(tmp_path / "docs", TOY_FILES)
    where = ["--index", str(tmp_path / "index")] if store == "index" else ["--store", f"milvus:{tmp_path / 'm.db'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "rag.serve.cli", "index", str(docs), *where, "--ray"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "6 files, 10 passages, 10 embedded; 6 added" in lines[0], proc.stdout
    from rag.index.factory import open_store

    manifest = open_store(where[1]).read_manifest()
    assert manifest.model == "all-MiniLM-L6-v2" and manifest.passages == 10


@pytest.mark.e2e
def test_seeds_with_the_real_model_give_the_same_index_and_results(local_ray, tmp_path):
    from rag import Retriever
    from rag.index.embed import query_embedder

    one = build_index(SEEDS, tmp_path / "one")  # the default model (ONNX Runtime), in this process
    two = build_index(SEEDS, tmp_path / "two", ray=True)  # the same model, loaded once by each worker
    assert (two.passages, two.embedded) == (one.passages, one.embedded)
    vectors, sentences = assert_same_index(tmp_path / "one", tmp_path / "two", tolerance=1e-5)
    encoder = query_embedder()
    a = Retriever.load(tmp_path / "one", embedder=encoder)
    b = Retriever.load(tmp_path / "two", embedder=encoder)
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "qa.jsonl").open(encoding="utf-8")]
    same = 0
    for question in questions:
        for mode in MODES:
            top_a = [(p.doc, p.start, p.end) for p in a.search(question, k=10, mode=mode)]
            top_b = [(p.doc, p.start, p.end) for p in b.search(question, k=10, mode=mode)]
            assert top_a == top_b, (question, mode)
            same += 1
    print(f"\nseeds: {one.passages} passages; max |vector difference| {vectors:.2e} (passages), "
          f"{sentences:.2e} (sentences); identical top-10 for {same}/{len(questions) * len(MODES)} "
          f"(question, mode) pairs")
