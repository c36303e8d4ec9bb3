"""app.py in-process with the fake embedder: start-up (bad paths and settings are one line, not a traceback)
and the chat, API and upload handlers around one shared Pipeline. (The running app is tested in
test_app_e2e.py and test_browser.py.)"""

from __future__ import annotations

import gradio as gr
import pytest

import app
from conftest import FakeEmbedder
from rag.pipeline import Pipeline
from rag.serve.render import ALL_DOCS, EMPTY_SOURCES


@pytest.fixture
def handlers(toy_docs, tmp_path):
    """The app's event handlers by name, around a pipeline over the toy corpus."""
    pipeline = Pipeline.open(tmp_path / "index", toy_docs, embedder=FakeEmbedder(), min_relevance=0.3)
    demo = app.build_demo(pipeline)
    fns = {f.api_name: f.fn for f in demo.fns.values()}
    fns["pipeline"] = pipeline
    return fns


def error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("app: error:") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("where", ["under a file", "a folder of documents"])
def test_bad_index_path_is_one_error_line(toy_docs, tmp_path, capsys, fake_model, monkeypatch, where):
    monkeypatch.setattr(app, "launch", lambda *a, **kw: pytest.fail("must not serve"))
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    index = tmp_path / "a-file" / "index" if where == "under a file" else toy_docs
    assert app.main(["--docs", str(toy_docs), "--index", str(index)]) == 1
    line = error_line(capsys.readouterr().err.split("…", 1)[1])  # after the "Loading ..." line
    assert ("a-file" if where == "under a file" else "not an index directory") in line
    assert (toy_docs / "cat.txt").exists()


def test_bad_port_in_the_environment_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setenv("GRADIO_SERVER_PORT", "abc")
    with pytest.raises(SystemExit) as info:
        app.parse_args([])
    assert info.value.code == 2 and "'abc'" in capsys.readouterr().err
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    assert app.parse_args([]).port == 7999 and app.parse_args(["--port", "8001"]).port == 8001


def test_main_builds_the_index_warms_up_and_serves_locally(toy_docs, tmp_path, capsys, fake_model, monkeypatch):
    served = []
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.setattr(app, "launch", lambda demo, host, port, **kw: served.append((demo, host, port)))
    asked = []
    monkeypatch.setattr(Pipeline, "warm_up", lambda self: asked.append(self))
    assert app.main(["--docs", str(toy_docs), "--index", str(tmp_path / "index")]) == 0
    err = capsys.readouterr().err
    assert "Reading files: 6/6 done" in err and "Saving the index: 1/1 done" in err
    assert "Index ready:" in err and "6 added" in err and "Traceback" not in err
    [(demo, host, port)] = served
    assert isinstance(demo, gr.Blocks) and (host, port) == ("127.0.0.1", 7860)
    assert len(asked) == 1 and fake_model == ["all-MiniLM-L6-v2"]  # loaded once, for the build and questions


def test_chat_answers_and_keeps_the_turns_for_follow_ups(handlers):
    chat, turns = [], []
    _, chat, pending = handlers["show_question"]("  Where do fish swim <b>now</b>? ", chat)
    assert chat == [{"role": "user", "content": "Where do fish swim &lt;b&gt;now&lt;/b&gt;?"}]
    chat, turns, sources = handlers["respond"](pending, chat, turns, 3, "hybrid", ALL_DOCS)
    assert chat[-1]["role"] == "assistant" and "**\\[1\\]**" in chat[-1]["content"]
    assert "<mark" in sources and "fish.md" in sources and len(turns) == 1
    chat, turns, _ = handlers["respond"]("And the cat?", chat, turns, 3, "hybrid", ALL_DOCS)
    assert len(turns) == 2 and turns[0][0] == "Where do fish swim <b>now</b>?"
    assert handlers["new_chat"]() == ([], [], EMPTY_SOURCES, "", "")


def test_chat_bad_input_is_said_in_the_chat_and_nothing_is_remembered(handlers):
    chat, turns, sources = handlers["respond"]("cats", [], [], 5, "hybrid", "unicorn.txt")
    assert "no document 'unicorn.txt'" in chat[-1]["content"] and turns == []
    assert sources.startswith('<div class="src-warn">') and "unicorn.txt" in sources


def test_chat_without_a_question_changes_nothing(handlers):
    chat = [{"role": "assistant", "content": "earlier answer"}]
    with pytest.warns(UserWarning, match="Please type a question first."):
        out = handlers["respond"]("  \x00 ", chat, [("q", "a")], 5, "hybrid", ALL_DOCS)
    assert out[0] == chat and out[1] == [("q", "a")] and out[2] == gr.update()


def test_chat_unexpected_errors_are_a_short_apology(handlers, monkeypatch):
    def crash(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(handlers["pipeline"], "ask", crash)
    chat, _, sources = handlers["respond"]("cats", [], [], 5, "hybrid", ALL_DOCS)
    assert "something went wrong (ZeroDivisionError)" in chat[-1]["content"] and "boom" not in sources


def test_api_ask_returns_the_answer_json_or_a_gradio_error(handlers):
    result = handlers["ask"]("Do fish breathe through gills?", k=2, mode="bm25", doc="fish.md",
                             history=[["earlier", "answer"]])
    assert result["abstained"] is False and {p["doc"] for p in result["passages"]} == {"fish.md"}
    assert len(result["passages"]) <= 2 and result["citations"][0]["doc"] == "fish.md"
    for kwargs, message in [({"mode": "sideways"}, "'sideways' is not one of"), ({"k": "x"}, "k of 'x'"),
                            ({"doc": "missing.txt"}, "no document 'missing.txt'")]:
        with pytest.raises(gr.Error, match=message):
            handlers["ask"]("cats", **kwargs)


def test_upload_handler_adds_the_document_and_refreshes_the_filter(handlers, tmp_path):
    good = tmp_path / "incoming" / "otters.md"
    good.parent.mkdir()
    good.write_text("# Otters\n\nSea otters hold hands while sleeping.\n", encoding="utf-8")
    steps = []
    message, doc_update, files, info = handlers["upload"]([str(good)], progress=lambda *a, **kw: steps.append(a))
    assert "Added 1 document: **otters.md**" in message and files is None
    assert ("Otters — otters.md", "otters.md") in doc_update["choices"] and info.startswith("Index: 7 documents")
    assert steps and handlers["pipeline"].search("otters", mode="bm25")[0].doc == "otters.md"
    assert handlers["upload"]([], progress=lambda *a, **kw: None)[2] is None
