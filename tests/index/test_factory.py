"""rag.index.factory: a location picks its store; a Milvus URI without the cluster extra is one line naming it;
`--store` reaches every command and the app as their index."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.index.factory import is_uri, open_store
from rag.index.local import LocalStore


def test_a_path_is_a_local_index_directory(tmp_path: Path):
    store = open_store(tmp_path / "index")
    assert isinstance(store, LocalStore) and store.path == tmp_path / "index"
    assert isinstance(open_store(str(tmp_path / "index")), LocalStore)


def test_a_store_is_used_as_it_is(tmp_path: Path):
    store = LocalStore(tmp_path / "index")
    assert open_store(store) is store


@pytest.mark.parametrize("location,expected", [
    ("milvus://127.0.0.1:19530/rag", True), ("milvus:rag.db", True), ("index", False),
    ("milvusdata/index", False), (Path("milvus:x"), False)])
def test_milvus_uris_are_told_from_paths(location, expected):
    assert is_uri(location) is expected


def test_a_milvus_uri_without_the_cluster_extra_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # as if pymilvus were not installed
    for name in [m for m in sys.modules if m == "rag.index.milvus" or m.startswith("rag.index.milvus.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(RagError) as caught:
        open_store("milvus://127.0.0.1:19530/rag")
    message = str(caught.value)
    assert "\n" not in message and "pymilvus" in message and ".[cluster]" in message


@pytest.mark.parametrize("argv", [
    ["index", "docs", "--store", "milvus:x.db"], ["search", "q", "--store", "milvus:x.db"],
    ["ask", "q", "--store", "milvus:x.db"], ["eval", "--store", "milvus:x.db"]])
def test_store_takes_the_place_of_index_on_every_command(argv, monkeypatch):
    from rag.serve import cli

    seen = {}
    for command in ("cmd_index", "cmd_search", "cmd_ask", "cmd_eval"):
        monkeypatch.setattr(cli, command, lambda args: seen.setdefault("index", args.index) and 0)
    assert cli.main(argv) == 0
    assert seen["index"] == "milvus:x.db"


def test_the_app_takes_store_in_place_of_index():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import app

    assert app.parse_args(["--store", "milvus://127.0.0.1:19530/rag"]).index == "milvus://127.0.0.1:19530/rag"
    assert app.parse_args(["--index", "elsewhere"]).index == "elsewhere"
