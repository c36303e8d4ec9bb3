"""`rag ask --reader` and `rag eval --reader` (rag.serve.cli) with a tiny CrossEncoder built in the test, on the
toy index with the fake embedder: the reader's scores reach the passages and the answer, a reader that finds
no answer abstains, and a reader that is not there is one line and exit 2, before any index work."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from conftest import ROOT, TOY_FILES

from answer.tiny_cross_encoder import build_cross_encoder
from rag.serve.cli import main

QUESTION = "Do fish breathe through gills?"


@pytest.fixture(scope="module")
def readers(tmp_path_factory):
    """Two tiny cross-encoders: one that gives every pair the logit +4 (an answer), one -4 (none)."""
    folder = tmp_path_factory.mktemp("readers")
    texts = list(TOY_FILES.values()) + [QUESTION]
    return {"sure": build_cross_encoder(folder / "sure", texts, bias=4.0),
            "never": build_cross_encoder(folder / "never", texts, bias=-4.0)}


def error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rag: error:") and "Traceback" not in err, err
    return lines[0]


def test_ask_with_a_reader_folder_answers_end_to_end(readers, toy_index, toy_docs, capfd, fake_model):
    argv = ["ask", QUESTION, "--index", str(toy_index), "--reader", str(readers["sure"])]
    assert main([*argv, "--json"]) == 0
    out, err = capfd.readouterr()
    assert err == ""  # the model loads without a progress bar or a library warning
    data = json.loads(out)
    assert data["abstained"] is False and "[1]" in data["answer"]
    c = data["citations"][0]
    assert c["doc"] == "fish.md" and (toy_docs / c["doc"]).read_text(encoding="utf-8")[c["start"]:c["end"]] == c["quote"]
    sure = 1 / (1 + math.exp(-4.0))
    assert [p["score"] for p in data["passages"]] == [pytest.approx(sure)] * len(data["passages"])  # the reader's
    assert main(argv) == 0
    assert f'"{c["quote"]}"' in capfd.readouterr().out


def test_ask_with_a_reader_that_finds_no_answer_abstains(readers, toy_index, capsys, fake_model):
    assert main(["ask", QUESTION, "--index", str(toy_index), "--reader", str(readers["never"])]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The documents do not answer this.") and "Closest passages" in out


@pytest.mark.parametrize("command", ["ask", "eval"])
@pytest.mark.parametrize("reader", ["nosuch", "EMPTY"])
def test_a_reader_that_is_not_there_is_one_line_and_exit_2(toy_docs, tmp_path, capsys, fake_model, command, reader):
    if reader == "EMPTY":
        reader = str(tmp_path / "empty")
        (tmp_path / "empty").mkdir()
    index = tmp_path / "new-index"
    where = ["--index", str(index), "--docs", str(toy_docs)]
    argv = ["ask", QUESTION, *where] if command == "ask" else ["eval", "--qa", str(tmp_path / "qa.jsonl"), *where]
    (tmp_path / "qa.jsonl").write_text(json.dumps({"question": QUESTION, "answers": ["gills"]}) + "\n", encoding="utf-8")
    code = main([*argv, "--reader", reader])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert repr(reader) in error_line(err)
    assert fake_model == [] and not index.exists()  # no model, no index work


def test_a_bad_question_is_refused_before_the_reader_loads(tmp_path, capsys, fake_model):
    assert main(["ask", "   ", "--index", str(tmp_path / "index"), "--reader", "nosuch"]) == 1
    assert "the question is empty" in error_line(capsys.readouterr().err)


def test_subprocess_unknown_reader_is_exactly_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "rag.serve.cli", "ask", QUESTION, "--index", str(tmp_path / "index"),
                           "--reader", "nosuch"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert error_line(proc.stderr).startswith("rag: error: reader 'nosuch' is neither a model folder nor a model "
                                              "in the Hugging Face cache")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "index").exists()
