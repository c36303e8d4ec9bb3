"""A Milvus index opened again by another process (a Milvus Lite file) or after its server restarted finds
its collections released: loading it loads them, and it searches as before."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, FakeEmbedder
from milvus_server import milvus_server
from rag.index.build import build_index
from rag.search.retriever import Retriever

READ_BACK = """
import json, sys
from rag.search.retriever import Retriever
r = Retriever.load(store=sys.argv[1], check_sources=False)
print(json.dumps([len(r.passages), [p.id for p in r.search("cats purr", k=3, mode="bm25")]]))
"""
BUILD = """
import sys
from conftest import FakeEmbedder
from rag.index.build import build_index
build_index(sys.argv[2], store=sys.argv[1], embedder=FakeEmbedder())
"""


def python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})\n{code}", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def read_back(uri: str) -> list:
    done = python(READ_BACK, uri)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return json.loads(done.stdout)


def test_a_milvus_lite_file_is_read_by_another_process(toy_docs, tmp_path):
    uri = f"milvus:{tmp_path / 'index.db'}"
    built = python(BUILD, uri, str(toy_docs))  # a process of its own: a Milvus Lite file serves one at a time
    assert built.returncode == 0, built.stderr
    first, again = read_back(uri), read_back(uri)
    assert first == again and first[0] > 0 and first[1]


def test_a_milvus_lite_file_in_use_is_one_line(toy_docs, tmp_path):
    uri = f"milvus:{tmp_path / 'index.db'}"
    build_index(toy_docs, store=uri, embedder=FakeEmbedder())  # this process now holds the file
    done = subprocess.run([sys.executable, "-m", "rag.serve.cli", "search", "cats", "--store", uri], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "one process at a time" in done.stderr
    assert Retriever.load(store=uri, check_sources=False).passages  # and it is still fine here


def test_an_index_is_searched_after_its_server_restarted(toy_docs, tmp_path):
    data = tmp_path / "data"
    with milvus_server(data) as server:
        uri = server.uri("restart")
        build_index(toy_docs, store=uri, embedder=FakeEmbedder())
        before = Retriever.load(store=uri, check_sources=False)
        want = [len(before.passages), [p.id for p in before.search("cats purr", k=3, mode="bm25")]]
    with milvus_server(data) as again:  # the same data, a new server process
        assert read_back(again.uri("restart")) == want
