"""app.py's start-up, in-process with the fake embedder: bad paths and settings are one line, not a traceback.
(The running app is tested in test_app_e2e.py and test_browser.py.)"""

from __future__ import annotations

import pytest

import app
import rag.embed
from conftest import FakeEmbedder


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr(rag.embed, "SentenceTransformerEmbedder", lambda *a, **kw: FakeEmbedder())


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
