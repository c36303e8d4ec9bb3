"""The read-only file route (`rag.serve.files`, GET /source/<doc>) on the real app: `app.launch` serves
`app.build_demo` on 127.0.0.1 with the route (fake embedder), and raw HTTP asks for documents and for
everything that is not one. Each indexed document is served with the type its content has (a PDF
inline, a Word file as a download, text and HTML as sandboxed text/plain); anything else is a bare
404: unknown names, "..", absolute paths, percent-encoded tricks, symlinks out of the folders, folders."""

from __future__ import annotations

import http.client
import importlib.util
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from conftest import FakeEmbedder, write_files
from fixture_files import docx_bytes, pdf_bytes

import app as app_module
from rag.pipeline import Pipeline
from rag.serve import files
from rag.serve.render import source_url

SECRET = "top secret: never served\n"
PAGE = ("<!doctype html><html><head><title>Cranes</title></head><body><h1>Cranes</h1>"
        "<p>Cranes fly south in winter.</p><script>alert('xss')</script></body></html>")
DOCS = {
    "cat.txt": "The Cat\n\nCats are small furry pets that purr and chase mice around the kitchen.\n",
    "sub/deep notes.md": "# Deep\n\nDeep notes about moles digging tunnels under the garden lawn.\n",
    "page.html": PAGE,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    docs = write_files(root / "docs", DOCS)
    (docs / "latin1.txt").write_bytes("Le café était très crème, à côté de la fenêtre.\n".encode("cp1252"))
    (docs / "report.pdf").write_bytes(pdf_bytes())
    if importlib.util.find_spec("rag.ingest.formats.docx") is not None:  # the converter is being written
        (docs / "letter.docx").write_bytes(docx_bytes())
    (docs / "program.exe").write_bytes(b"MZ\x90\x00" + b"\x00" * 100)  # in the folder, never indexed
    (root / "secret.txt").write_text(SECRET, encoding="utf-8")
    (root / "outside").mkdir()
    (root / "outside" / "other.txt").write_text(SECRET, encoding="utf-8")
    os.symlink(root / "secret.txt", docs / "escape.txt")
    os.symlink(root / "outside", docs / "linked")
    uploads = write_files(root / "uploads", {"otters.md": "# Otters\n\nSea otters hold hands while sleeping.\n"})
    pipeline = Pipeline.open(root / "index", docs, uploads=uploads, embedder=FakeEmbedder(), min_relevance=0.3)
    demo = app_module.build_demo(pipeline)
    port = free_port()
    app_module.launch(demo, "127.0.0.1", port, block=False, routes=files.source_routes(pipeline))
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", port=port, docs=docs, root=root, pipeline=pipeline)
    demo.close()


def raw_get(served, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """`path` sent exactly as written (no client-side normalisation of '..' or percent-escapes)."""
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def get(served, doc: str, **kwargs) -> httpx.Response:
    return httpx.get(served.url + source_url(doc), timeout=10, **kwargs)


def test_the_app_still_serves_the_chat_and_the_api(served):
    assert httpx.get(served.url, timeout=10).status_code == 200
    assert "/ask" in httpx.get(served.url + "gradio_api/info", timeout=10).json()["named_endpoints"]


def test_text_is_served_as_sandboxed_utf8_text(served):
    r = get(served, "cat.txt")
    assert r.status_code == 200 and r.text == DOCS["cat.txt"]
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-security-policy"].startswith("sandbox")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["content-disposition"].startswith("inline")
    latin1 = get(served, "latin1.txt")  # decoded the way the index reads it, sent as UTF-8
    assert latin1.text == "Le café était très crème, à côté de la fenêtre.\n"
    deep = get(served, "sub/deep notes.md")
    assert deep.status_code == 200 and deep.text == DOCS["sub/deep notes.md"]
    assert deep.url.raw_path == b"/source/sub/deep%20notes.md"


def test_html_is_never_served_as_a_page(served):
    assert "page.html" in served.pipeline.docs
    r = get(served, "page.html")
    assert r.status_code == 200 and r.text == PAGE  # shown as its source: the script is text
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "sandbox" in r.headers["content-security-policy"] and r.headers["x-content-type-options"] == "nosniff"


def test_a_pdf_is_served_inline_with_range_support(served):
    assert "report.pdf" in served.pipeline.docs
    r = get(served, "report.pdf")
    assert r.status_code == 200 and r.content == (served.docs / "report.pdf").read_bytes()
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("inline") and 'filename="report.pdf"' in r.headers[
        "content-disposition"]
    assert r.headers["x-content-type-options"] == "nosniff"
    part = get(served, "report.pdf", headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == r.content[:8] and part.content.startswith(b"%PDF-")
    head = httpx.head(served.url + "source/report.pdf", timeout=10)
    assert head.status_code == 200 and head.headers["content-type"] == "application/pdf"


def test_a_word_file_is_a_download(served):
    if "letter.docx" not in served.pipeline.docs:
        pytest.skip("the docx converter is not in this tree yet, so letter.docx is not indexed")
    r = get(served, "letter.docx")
    assert r.status_code == 200 and r.content == (served.docs / "letter.docx").read_bytes()
    assert r.headers["content-type"] == files.DOCX_TYPE
    assert r.headers["content-disposition"].startswith("attachment")


def test_uploads_are_served_from_the_uploads_folder(served):
    r = get(served, "uploads/otters.md")
    assert r.status_code == 200 and "Sea otters" in r.text


@pytest.mark.parametrize("path", [
    "/source/missing.txt",
    "/source/",
    "/source/sub",  # a folder: no listing
    "/source/sub/",
    "/source/uploads",
    "/source/program.exe",  # in the folder, but no indexed document
    "/source/escape.txt",  # a symlink to a file outside the folder
    "/source/linked/other.txt",  # through a symlinked folder outside
    "/source/../secret.txt",
    "/source/../../../../etc/passwd",
    "/source/%2e%2e/secret.txt",
    "/source/%2E%2E%2Fsecret.txt",
    "/source/sub/..%2f..%2fsecret.txt",
    "/source/sub/../../secret.txt",
    "/source/..%5csecret.txt",
    "/source/./cat.txt",
    "/source//etc/passwd",
    "/source/%2Fetc%2Fpasswd",
    "/source/%2fetc/passwd",
    "/source/cat.txt%00.pdf",
    "/source/cat.txt/",
    "/source/../index/manifest.json",
    "/source/%252e%252e/secret.txt",  # double-encoded: a name with '%2e' in it, which no document has
    "/source/" + "a/" * 600 + "b.txt",
])
def test_anything_but_an_indexed_document_is_a_bare_404(served, path):
    status, headers, body = raw_get(served, path)
    assert status == 404, (path, status, body[:200])
    assert SECRET.encode() not in body and b"secret" not in body and b"passwd" not in body
    if path.startswith("/source/"):
        assert body == b"Not Found" and headers["x-content-type-options"] == "nosniff"


def test_the_route_itself_lists_nothing(served):
    r = httpx.get(served.url + "source", timeout=10, follow_redirects=True)
    assert r.status_code == 404 and r.content == b"Not Found"


def test_only_get_and_head(served):
    status, _, _ = raw_get(served, "/source/cat.txt", method="POST")
    assert status == 405
    status, _, _ = raw_get(served, "/source/cat.txt", method="DELETE")
    assert status == 405


def test_a_document_that_went_away_is_a_404(served):
    (served.docs / "gone.txt").write_text("Here for a moment.\n", encoding="utf-8")
    served.pipeline.refresh()
    assert get(served, "gone.txt").status_code == 200
    (served.docs / "gone.txt").unlink()
    assert get(served, "gone.txt").status_code == 404


def test_resolve_refuses_implausible_names_before_asking_the_pipeline():
    asked = []
    pipeline = SimpleNamespace(source_file=lambda doc: asked.append(doc))
    for doc in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\\b", "a\x00b", "x" * 1001, "a/."]:
        assert files.resolve(pipeline, doc) is None
    assert asked == []
    assert files.plausible("sub/deep notes.md") and files.plausible("uploads/x.pdf") and files.plausible("..a")


def test_a_path_outside_the_folders_is_refused_even_if_the_pipeline_returned_it(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text(SECRET, encoding="utf-8")
    pipeline = SimpleNamespace(source_file=lambda doc: outside, docs_dir=docs, upload_dir=docs)
    assert files.resolve(pipeline, "secret.txt") is None
    assert files.source_response(pipeline, "secret.txt").status_code == 404
    inside = docs / "ok.txt"
    inside.write_text("fine\n", encoding="utf-8")
    pipeline.source_file = lambda doc: inside
    assert files.resolve(pipeline, "ok.txt") == inside.resolve()
    assert files.source_response(pipeline, "ok.txt").status_code == 200
    pipeline.source_file = lambda doc: Path(docs)  # a folder
    assert files.resolve(pipeline, "docs") is None
