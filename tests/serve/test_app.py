"""app.py in-process with the fake embedder: start-up (bad paths and settings are one line, not a traceback;
a restart serves the index it finds at once and updates it in the background), a quiet console, and the
chat, API and upload handlers around one shared Pipeline (an upload returns at once and is indexed in the
background). (The running app is tested in test_app_e2e.py and test_browser.py.)"""

from __future__ import annotations

import logging
import threading

import gradio as gr
import pytest

import app
from conftest import FakeEmbedder
from rag.pipeline import Pipeline
from rag.serve.render import ALL_DOCS, EMPTY_SOURCES


@pytest.fixture(autouse=True)
def restore_logging():
    """app.main configures the root logger; put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def gate(monkeypatch):
    """Builds (encode calls with more than one text) wait until `gate.set()`; questions do not."""
    gate = threading.Event()
    real = FakeEmbedder.encode

    def encode(self, texts):
        texts = list(texts)
        if len(texts) > 1:
            assert gate.wait(30), "the test never opened the gate"
        return real(self, texts)

    monkeypatch.setattr(FakeEmbedder, "encode", encode)
    yield gate
    gate.set()


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
    monkeypatch.setattr(Pipeline, "warm_up", lambda self, language=True: asked.append((self, language)))
    monkeypatch.setattr(app, "warm_up_language", lambda: asked.append("language"))
    assert app.main(["--docs", str(toy_docs), "--index", str(tmp_path / "index")]) == 0
    err = capsys.readouterr().err
    assert "Reading files: 6/6 done" in err and "Saving the index: 1/1 done" in err
    assert "Index ready:" in err and "6 added" in err and "Traceback" not in err
    [(demo, host, port)] = served
    assert isinstance(demo, gr.Blocks) and (host, port) == ("127.0.0.1", 7860)
    assert fake_model == ["all-MiniLM-L6-v2"] * 2  # loaded once for questions and once (per process) for builds
    for _ in range(100):  # spaCy is loaded on a thread of its own once the chat is served
        if "language" in asked:
            break
        threading.Event().wait(0.05)
    assert asked == [(asked[0][0], False), "language"]


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


def test_upload_returns_at_once_and_is_indexed_in_the_background(handlers, tmp_path, gate):
    good = tmp_path / "incoming" / "otters.md"
    good.parent.mkdir()
    good.write_text("# Otters\n\nSea otters hold hands while sleeping.\n", encoding="utf-8")
    pipeline = handlers["pipeline"]
    message, doc_update, files, info, report, timer = handlers["upload"]([str(good)], None)
    assert report.pending  # the build is held at the gate (closed: had it waited, it would never return)
    assert "Saved 1 document: **otters.md**. It is being indexed in the background" in message
    assert "questions are answered from the documents indexed before" in message and files is None
    assert timer.active is True and "Updating it in the background" in info
    # meanwhile a question is answered from the index as it was, and the timer says how it is going
    chat, _, sources = handlers["respond"]("Do sea otters hold hands?", [], [], 3, "bm25", ALL_DOCS)
    assert chat[-1]["role"] == "assistant" and "otters.md" not in sources
    ticking, _, info, timer = handlers["follow"](report)
    assert "Indexing:" in ticking and "being indexed" in ticking and timer == gr.update()
    gate.set()
    report.future.result(10)
    message, doc_update, info, timer = handlers["follow"](report)
    assert "Added 1 document: **otters.md**. It is searchable now." in message and timer.active is False
    assert ("Otters — otters.md", "otters.md") in doc_update["choices"] and info == "Index: 7 documents, 11 passages."
    assert pipeline.search("otters", mode="bm25")[0].doc == "otters.md"
    assert handlers["upload"]([], None)[2] is None


def test_an_upload_over_the_budget_is_refused_with_a_reason(handlers, tmp_path, monkeypatch, gate):
    from rag.serve import uploads

    monkeypatch.setattr(uploads, "UPLOAD_BUDGET_BYTES", 100)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "first.txt").write_text("Herons " * 12, encoding="utf-8")  # 84 bytes
    (incoming / "second.txt").write_text("Egrets " * 12, encoding="utf-8")
    message, *_, first, _ = handlers["upload"]([str(incoming / "first.txt")], None)
    assert first.pending and first.saved == ["first.txt"]
    message, *_, second, timer = handlers["upload"]([str(incoming / "second.txt")], None)
    assert second.saved == [] and not second.pending and timer.active is False
    assert "still being indexed (at most 1 KB of text may wait at a time); try again" in message
    gate.set()
    first.future.result(10)
    message, *_, third, _ = handlers["upload"]([str(incoming / "second.txt")], None)
    assert third.saved == ["second.txt"]  # the budget is free again
    third.future.result(10)


def test_main_restarted_on_unchanged_documents_serves_the_index_without_an_update(
        toy_docs, tmp_path, capsys, fake_model, monkeypatch, gate):
    served = []
    monkeypatch.setattr(app, "launch", lambda demo, host, port, **kw: served.append(demo))
    monkeypatch.setattr(Pipeline, "warm_up", lambda self, language=True: None)
    monkeypatch.setattr(app, "warm_up_language", lambda: None)
    opened = []
    real_build_demo = app.build_demo
    monkeypatch.setattr(app, "build_demo", lambda pipeline: opened.append(pipeline) or real_build_demo(pipeline))
    args = ["--docs", str(toy_docs), "--index", str(tmp_path / "index")]
    gate.set()
    assert app.main(args) == 0
    capsys.readouterr()
    gate.clear()  # an update would wait here; none should start
    assert app.main(args) == 0
    assert opened[-1].updating is None and not opened[-1].indexing.busy
    err = capsys.readouterr().err
    assert f"Index ready: 6 documents, 10 passages; up to date with {str(toy_docs)!r}" in err
    assert "in the background" not in err and len(served) == 2


def test_main_restarted_serves_the_old_index_at_once_and_updates_it_in_the_background(
        toy_docs, tmp_path, capsys, fake_model, monkeypatch, gate):
    served = []
    monkeypatch.setattr(app, "launch", lambda demo, host, port, **kw: served.append(demo))
    monkeypatch.setattr(Pipeline, "warm_up", lambda self, language=True: None)
    demos = []
    real_build_demo = app.build_demo
    monkeypatch.setattr(app, "build_demo", lambda pipeline: demos.append(pipeline) or real_build_demo(pipeline))
    args = ["--docs", str(toy_docs), "--index", str(tmp_path / "index")]
    gate.set()
    assert app.main(args) == 0  # the first start builds before serving
    assert "Index ready:" in capsys.readouterr().err
    gate.clear()
    (toy_docs / "otters.md").write_text("# Otters\n\nSea otters hold hands while sleeping.\n", encoding="utf-8")
    assert app.main(args) == 0  # as after a crash: a document the index does not have yet
    assert len(served) == 2  # served while the update waits at the gate (closed: main would never return)
    pipeline = demos[-1]
    assert pipeline.indexing.busy and "otters.md" not in pipeline.docs
    assert "otters.md" not in {p.doc for p in pipeline.ask("Do sea otters hold hands?", mode="bm25").passages}
    err = capsys.readouterr().err
    assert "Index ready: 6 documents, 10 passages; bringing it up to date with" in err and "in the background" in err
    gate.set()
    pipeline.updating.result(120)
    assert pipeline.ask("Do sea otters hold hands?", mode="bm25").passages[0].doc == "otters.md"
    err = capsys.readouterr().err
    for _ in range(600):  # the summary is printed by the update's done-callback, just after its result is set
        if "1 added" in err:
            break
        threading.Event().wait(0.05)
        err += capsys.readouterr().err
    assert "1 added" in err


def test_the_console_stays_quiet(capsys):
    import bm25s  # noqa: F401 - sets its own logger to DEBUG when imported

    app.quiet_logging()
    logging.getLogger("bm25s").setLevel(logging.DEBUG)
    logging.getLogger("bm25s").debug("Building index from tokens")
    logging.getLogger("abbreviations").info("chatty")
    logging.getLogger("rag.app").warning("a real problem")
    err = capsys.readouterr().err
    assert "Building index" not in err and "chatty" not in err and "WARNING rag.app: a real problem" in err


def test_the_queue_takes_a_burst_of_a_thousand(handlers):
    demo = app.build_demo(handlers["pipeline"])
    assert demo._queue.max_size == app.QUEUE_SIZE >= 1000 + app.CONCURRENCY


def test_uploads_of_the_repositorys_seeds_go_to_the_ignored_uploads_folder(monkeypatch, tmp_path):
    from rag.settings import DEFAULT_DOCS, DEFAULT_UPLOADS

    assert app.uploads_folder(app.ROOT / DEFAULT_DOCS) == app.ROOT / DEFAULT_UPLOADS
    monkeypatch.chdir(app.ROOT)
    assert app.uploads_folder(DEFAULT_DOCS) == app.ROOT / DEFAULT_UPLOADS
    assert app.uploads_folder(tmp_path) is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / DEFAULT_DOCS).mkdir()
    assert app.uploads_folder(DEFAULT_DOCS) is None  # another folder that is called seeds
    ignored = (app.ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert f"/{DEFAULT_UPLOADS}/" in ignored


@pytest.mark.parametrize("seeds", [True, False])
def test_main_opens_the_pipeline_with_the_uploads_folder_only_for_the_seeds(monkeypatch, tmp_path, capsys, seeds):
    from rag import RagError
    from rag.settings import DEFAULT_DOCS, DEFAULT_UPLOADS

    opened = []

    def open_(*args, **kwargs):
        opened.append((args, kwargs))
        raise RagError("stop here")

    monkeypatch.setattr(app.Pipeline, "open", open_)
    docs = str(app.ROOT / DEFAULT_DOCS) if seeds else str(tmp_path)
    assert app.main(["--docs", docs, "--index", str(tmp_path / "index")]) == 1
    [(args, kwargs)] = opened
    assert args[1] == docs and kwargs["uploads"] == (app.ROOT / DEFAULT_UPLOADS if seeds else None)
    assert "app: error: stop here" in capsys.readouterr().err


def test_a_reader_that_cannot_be_loaded_stops_the_app_with_one_line(toy_docs, tmp_path, capsys):
    (tmp_path / "notce").mkdir()
    (tmp_path / "notce" / "config.json").write_text("{}", encoding="utf-8")  # a folder, but no cross-encoder
    for reader in (tmp_path / "nosuch", tmp_path / "notce"):
        assert app.main(["--docs", str(toy_docs), "--index", str(tmp_path / "index"), "--reader", str(reader)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("app: error: reader") and str(reader) in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "index").exists()  # refused before any index work
