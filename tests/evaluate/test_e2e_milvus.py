"""End to end, the real model: the seeds indexed in Milvus (a Milvus Lite server in its own process on
127.0.0.1) answer every question of `eval/qa.jsonl` exactly as the local index does (same answers, same
citations, same passages), `rag eval --store` gives the local figures, and `rag ask --store` prints the
local answer."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, SEEDS
from milvus_server import milvus_server
from rag import Assistant, Retriever, build_index
from rag.evaluate.run import run_eval

pytestmark = pytest.mark.e2e
QA = ROOT / "eval" / "qa.jsonl"


@pytest.fixture(scope="module")
def milvus_seeds(tmp_path_factory, real_embedder):
    """The seeds' index in a Milvus Lite server: its URI."""
    with milvus_server(tmp_path_factory.mktemp("milvus-e2e") / "data") as server:
        uri = server.uri("seeds")
        summary = build_index(SEEDS, store=uri, embedder=real_embedder)
        assert summary.embedded == summary.passages > 0
        yield uri


def questions() -> list[str]:
    return [json.loads(line)["question"] for line in QA.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_question_is_answered_as_the_local_index_answers_it(milvus_seeds, seed_index, real_embedder):
    local = Assistant(Retriever.load(seed_index, embedder=real_embedder))
    milvus = Assistant.load(store=milvus_seeds)
    milvus.retriever._embedder = real_embedder  # the same encoder on both sides (the default one is ONNX)
    for question in questions():
        want, got = local.ask(question), milvus.ask(question)
        assert (got.text, got.abstained, got.reason) == (want.text, want.abstained, want.reason), question
        assert [(c.doc, c.start, c.end, c.quote) for c in got.citations] == \
               [(c.doc, c.start, c.end, c.quote) for c in want.citations], question
        assert [p.id for p in got.passages] == [p.id for p in want.passages], question


def test_rag_eval_through_milvus_gives_the_local_figures(milvus_seeds, seed_index):
    local = run_eval(QA, SEEDS, seed_index, configs=["hybrid"])["configs"]["hybrid"]
    milvus = run_eval(QA, SEEDS, milvus_seeds, configs=["hybrid"])["configs"]["hybrid"]
    for key in ("recall@1", "recall@5", "mrr@10", "answer_accuracy", "citation_accuracy", "abstention_precision",
                "abstention_recall"):
        if key in local:
            assert milvus[key] == pytest.approx(local[key], abs=1e-9), key


def test_rag_ask_with_store_prints_the_local_answer(milvus_seeds, seed_index):
    question = "Which fighter jets did France announce for Ukraine?"
    run = lambda *where: subprocess.run([sys.executable, "-m", "rag.serve.cli", "ask", question, "--json", *where],
                                        cwd=ROOT, capture_output=True, text=True, timeout=300)
    local, milvus = run("--index", str(seed_index)), run("--store", milvus_seeds)
    assert milvus.returncode == 0, milvus.stderr
    assert json.loads(milvus.stdout)["answer"] == json.loads(local.stdout)["answer"]
    assert "[1]" in json.loads(milvus.stdout)["answer"] and milvus.stderr == ""
