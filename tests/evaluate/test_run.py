"""rag.evaluate.run: where `rag eval` keeps the index of a documents folder, and unknown configs. The
real run over the seeds is in tests/answer/test_e2e_answer.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import ROOT, SEEDS
from rag.errors import RagError
from rag.evaluate.run import default_index_for, run_eval


@pytest.mark.parametrize("docs", ["seeds", "./seeds", "seeds/", SEEDS])
def test_default_index_for_the_seeds(monkeypatch, docs):
    monkeypatch.chdir(ROOT)
    assert default_index_for(docs) == Path("index")


def test_default_index_for_another_folder(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.chdir(ROOT)
    first, second = tmp_path / "one" / "docs", tmp_path / "two" / "docs"
    a, b = default_index_for(first), default_index_for(second)
    assert a.parent == b.parent == cache / "rag" / "indexes"
    assert a.name == f"docs-{hashlib.sha256(str(first.resolve()).encode()).hexdigest()[:8]}"
    assert a != b  # same folder name, different folders
    assert default_index_for(first) == a  # stable
    monkeypatch.chdir(tmp_path)
    assert default_index_for(Path("one") / "docs") == a  # relative paths resolve to the same folder


def test_default_index_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(ROOT)
    assert default_index_for(tmp_path / "docs").parent == tmp_path / "home" / ".cache" / "rag" / "indexes"


def test_seeds_seen_from_elsewhere_are_just_another_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # "seeds" means the seeds folder of the current directory
    assert default_index_for(SEEDS).parent == tmp_path / "cache" / "rag" / "indexes"


def test_unknown_config_is_refused_before_any_work(tmp_path, toy_docs):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "What do cats chase?", "answers": ["mice"], "sources": [{"doc": "cat.txt"}]}\n',
                  encoding="utf-8")
    with pytest.raises(RagError, match="unknown config 'fancy'; choose from hybrid, dense, bm25, naive"):
        run_eval(qa, toy_docs, tmp_path / "index", configs=("bm25", "fancy"))
    assert not (tmp_path / "index").exists()


def test_every_config_runs_through_the_pipeline(tmp_path, toy_docs):
    """Ours and the LangChain baseline, over one index and the real model: both retrieve the gold file."""
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "What do cats chase around the kitchen?", "answers": ["mice"], '
                  '"sources": [{"doc": "cat.txt", "quote": "chase mice around the kitchen"}]}\n', encoding="utf-8")
    report = run_eval(qa, toy_docs, tmp_path / "index", configs=("bm25", "naive"))
    assert set(report["configs"]) == {"bm25", "naive"}
    for figures in report["configs"].values():
        assert figures["recall@5"] == 1.0 and figures["answer_accuracy"] == 1.0
    assert report["n"] == report["n_answerable"] == 1


def test_without_the_compare_extra_the_other_configs_still_count(tmp_path, toy_docs, monkeypatch, fake_model):
    import sys

    monkeypatch.setitem(sys.modules, "langchain_community.vectorstores", None)  # as if not installed
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "What do cats chase?", "answers": ["mice"], "sources": [{"doc": "cat.txt"}]}\n',
                  encoding="utf-8")
    seen = []
    report = run_eval(qa, toy_docs, tmp_path / "index", configs=("naive", "bm25"),
                      on_config=lambda r: seen.append((set(r["configs"]), set(r["skipped"]))))
    assert seen == [(set(), {"naive"}), ({"bm25"}, {"naive"})]  # each config handed on as it finishes
    assert "pip install 'rag-assistant[compare]'" in report["skipped"]["naive"]
    assert report["configs"]["bm25"]["recall@1"] == 1.0


def test_rag_eval_saves_the_report_as_it_goes(tmp_path, toy_docs, capsys, fake_model):
    import json

    from rag.serve.cli import main

    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "What do cats chase?", "answers": ["mice"], "sources": [{"doc": "cat.txt"}]}\n',
                  encoding="utf-8")
    out = tmp_path / "report.json"
    assert main(["eval", "--qa", str(qa), "--docs", str(toy_docs), "--index", str(tmp_path / "index"),
                 "--configs", "bm25,dense", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "recall@1" in table and "bm25" in table and "dense" in table
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert set(saved["configs"]) == {"bm25", "dense"} and saved["n"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".eval-")] == []
