"""rag.serve.uploads: files a person uploads in the web chat are checked (their format sniffed from the
content, converted before they are saved), saved under a safe name with their format's suffix and mode
0644 inside the pipeline's uploads folder only, and indexed through the pipeline (`add_documents`). (The
upload part of the old tests of rag/ui.py; the pipeline's side of an upload - concurrent questions,
failed indexing, the swap - is in tests/test_pipeline.py.) PDF and Word files are made at test time
(fixture_files)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import FakeEmbedder, write_files
from fixture_files import (
    EXECUTABLE, WINDOWS_EXE, converter_available, damaged_docx_bytes, docx_bytes, pdf_bytes, scan_pdf_bytes,
    zip_bytes,
)

from rag.errors import InputError
from rag.pipeline import Pipeline
from rag.serve import uploads
from rag.serve.render import ALL_DOCS, doc_choices, sources_html

CORPUS = {
    "cat.txt": "The Cat\n\nCats are small furry pets that purr and chase mice around the kitchen.\n",
    "fish.md": "# Fish 2022\n\n## Habitat\n\nFish swim in rivers, lakes and oceans and breathe through gills.\n",
}


# -- uploads -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("notes.txt", "notes.txt"),
    ("../evil.txt", "evil.txt"),
    ("../../etc/passwd.md", "passwd.md"),
    ("..\\..\\windows\\evil.txt", "evil.txt"),
    ("C:\\Users\\x\\report.MD", "report.md"),
    ("/abs/path/file.txt", "file.txt"),
    (".hidden.txt", "hidden.txt"),
    ("...dots.txt", "dots.txt"),
    ("my report (final) v2.txt", "my_report_final_v2.txt"),
    ("résumé.md", "resume.md"),
    ("a\x00b.txt", "ab.txt"),
    ("<script>x.txt", "script_x.txt"),
])
def test_safe_filename(name, expected):
    assert uploads.safe_filename(name) == expected


def test_safe_filename_limits_length_and_rejects_nothing_left():
    long = uploads.safe_filename("x" * 500 + ".txt")
    assert len(long) <= uploads.MAX_NAME_CHARS and long.endswith(".txt")
    assert uploads.safe_filename("notes.txt.exe") == "notes.txt.exe"  # the extension check is check_upload's
    for bad in ["", "..", "../", ".txt", "///", "日本.txt", "-_-.md"]:
        with pytest.raises(InputError):
            uploads.safe_filename(bad)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "incoming" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_check_upload_accepts_text_in_any_encoding_as_the_folder_does(tmp_path):
    path = write(tmp_path, "ok.md", "# Título\n\nÜber text.\n".encode())
    assert uploads.check_upload(path) == ("ok.md", "# Título\n\nÜber text.\n".encode(), "text", 23)
    exactly = write(tmp_path, "big.txt", b"a" * uploads.MAX_UPLOAD_BYTES)
    assert uploads.check_upload(exactly).name == "big.txt"
    latin1 = write(tmp_path, "latin1.txt", "Le café était très crème, à côté de la fenêtre.".encode("latin-1"))
    assert uploads.check_upload(latin1)[:3] == ("latin1.txt", latin1.read_bytes(), "text")
    utf16 = write(tmp_path, "utf16.txt", "Hello from UTF-16 with a byte-order mark.".encode("utf-16"))
    assert uploads.check_upload(utf16).name == "utf16.txt"
    page = write(tmp_path, "page.htm", b"<!doctype html><html><body><h1>Page</h1><p>Cranes fly south.</p></body></html>")
    assert uploads.check_upload(page)[::2] == ("page.htm", "html")


@pytest.mark.parametrize("name, data, reason", [
    ("doc.pdf", b"%PDF-1.4 text", "PDF"),
    ("run.exe", b"MZ", r"unsupported file type \(\.exe\); supported: \.txt, .*\.pdf, \.docx, .* or \.xhtml"),
    ("notes.txt.exe", b"hello", r"unsupported file type \(\.exe\)"),
    ("README", b"hello", r"unsupported file type \(no suffix\)"),
    ("bin.txt", b"hello\x00\x01\x02world", "binary"),
    ("empty.txt", b"", "the file is empty"),
    ("blank.md", b"  \n\n ", "the file is empty"),
    ("empty.pdf", b"", "the file is empty"),
    pytest.param("huge.txt", b"a" * (uploads.MAX_UPLOAD_BYTES + 1),
                 r"too big \(256 KB; the limit is 256 KB, what can be indexed in a minute or two\)", id="huge"),
    pytest.param("huge.pdf", b"%PDF-1.4\n" + b"0" * uploads.MAX_DOCUMENT_BYTES,
                 r"too big \(5.0 MB; the limit is 5.0 MB for a PDF, Word or HTML file and 256 KB for a text file\)",
                 id="huge-pdf"),
    pytest.param("app.pdf", EXECUTABLE, r"not a readable PDF file \(damaged or truncated\?\)", id="elf-as-pdf"),
    pytest.param("setup.pdf", WINDOWS_EXE, r"not a readable PDF file", id="exe-as-pdf"),
    pytest.param("archive.pdf", zip_bytes(), r"not a readable PDF file", id="zip-as-pdf"),
    pytest.param("archive.docx", zip_bytes(), r"not a readable Word \(\.docx\) file", id="zip-as-docx"),
    pytest.param("app.txt", EXECUTABLE, "binary", id="elf-as-txt"),
    pytest.param("archive.txt", zip_bytes(), "binary", id="zip-as-txt"),
    pytest.param("scan.pdf", scan_pdf_bytes(), r"no text layer: a scan\? OCR is not supported", id="scan"),
])
def test_check_upload_rejects_with_a_clear_reason(tmp_path, name, data, reason):
    path = write(tmp_path, name, data)
    with pytest.raises(InputError, match=reason) as info:
        uploads.check_upload(path)
    assert str(info.value).startswith(name + ":") and "\n" not in str(info.value)


def test_save_uploads_keeps_good_files_and_reports_bad_ones(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "existing.txt").write_text("Already here.\n", encoding="utf-8")
    files = [
        (write(tmp_path, "good.txt", b"Good text about zebras.\n"), None),
        (write(tmp_path, "evil.txt", b"Traversal attempt.\n"), "../evil.txt"),
        (write(tmp_path, "binary.txt", b"\x00\x01"), None),
        (write(tmp_path, "bad.md", b"\x00\xfe bad"), None),
        (write(tmp_path, "x.pdf", b"pdf"), None),
        (write(tmp_path, "existing.txt", b"Overwrite attempt.\n"), None),
        (write(tmp_path, "dup.txt", b"One.\n"), "GOOD.txt"),  # same name as one in this batch
    ]
    outside_before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if docs not in p.parents)
    report = uploads.save_uploads(files, docs)
    assert report.saved == ["good.txt", "evil.txt"]
    rejected = dict(report.rejected)
    assert set(rejected) == {"binary.txt", "bad.md", "x.pdf", "existing.txt", "GOOD.txt"}
    assert "binary" in rejected["binary.txt"] and "binary" in rejected["bad.md"] and "PDF" in rejected["x.pdf"]
    assert "already exists" in rejected["existing.txt"] and "already exists" in rejected["GOOD.txt"]
    assert (docs / "existing.txt").read_text(encoding="utf-8") == "Already here.\n"
    assert (docs / "evil.txt").read_text(encoding="utf-8") == "Traversal attempt.\n"
    assert sorted(p.name for p in docs.iterdir()) == ["evil.txt", "existing.txt", "good.txt"]  # no temp files left
    outside_after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if docs not in p.parents)
    assert outside_after == outside_before  # nothing written outside docs/
    message = report.message()
    assert "Added 2 documents" in message and "Rejected:" in message and "binary.txt" in message


def test_upload_report_message_agrees_in_number():
    assert "1 document: **a.txt**. It is searchable now." in uploads.UploadReport(saved=["a.txt"]).message()
    two = uploads.UploadReport(saved=["a.txt", "b.md"]).message()
    assert "2 documents: **a.txt**, **b.md**. They are searchable now." in two


def test_upload_report_message_escapes_names():
    report = uploads.UploadReport(rejected=[("<img src=x onerror=alert(1)>.pdf", "not a readable PDF file")])
    assert "<img" not in report.message()
    assert uploads.UploadReport().message() == "No files were uploaded."


def test_shown_name_is_the_cleaned_base_name():
    assert uploads.shown_name("/tmp/gradio/abc/notes.txt") == "notes.txt"
    assert uploads.shown_name("/tmp/x", "..\\dir\\evil\u202e.txt") == "evil.txt"
    assert uploads.shown_name("/tmp/x", "") == "(no name)"  # a name was given, and nothing is left of it
    assert uploads.shown_name("/tmp/x", None) == "x"
    assert uploads.shown_name("/tmp/x", "/") == "/"  # nothing better to show


def test_a_file_that_vanished_is_rejected_by_name(tmp_path):
    with pytest.raises(InputError, match=r"^gone.txt: could not be read \("):
        uploads.check_upload(tmp_path / "gone.txt")


# -- add_documents: upload into a pipeline --------------------------------------------------------

@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_files(tmp_path / "docs", CORPUS)


@pytest.fixture
def pipeline(corpus, tmp_path) -> Pipeline:
    return Pipeline.open(tmp_path / "index", corpus, embedder=FakeEmbedder(), min_relevance=0.3)


def test_upload_makes_a_document_searchable_at_once(pipeline, tmp_path):
    stages = []
    new = write(tmp_path, "otters.md",
                b"# Otters\n\nSea otters hold hands while sleeping so they do not drift apart.\n")
    bad = write(tmp_path, "image.txt", b"\x89PNG\x00\x00")
    report = uploads.add_documents(pipeline, [(new, None), (bad, None)], progress=lambda s, d, t: stages.append(s))
    assert report.saved == ["otters.md"] and [n for n, _ in report.rejected] == ["image.txt"]
    assert "otters.md" in pipeline.docs and "1 added" in report.summary and "1 added" in str(pipeline.summary)
    assert {"read", "embed", "save"} <= set(stages)
    assert pipeline.describe().startswith("3 documents, ")
    answer = pipeline.ask("otters hold hands sleeping drift", mode="bm25")
    assert answer.passages[0].doc == "otters.md" and not answer.abstained
    assert "Sea otters hold hands" in sources_html(answer)
    labels = {v: k for k, v in doc_choices(pipeline.retriever.passages)}
    assert labels["otters.md"] == "Otters — otters.md" and ALL_DOCS in labels
    assert "Added 1 document: **otters.md**. It is searchable now." in report.message()


def test_a_bad_upload_changes_nothing(pipeline, corpus, tmp_path):
    before_files = sorted(p.name for p in corpus.iterdir())
    before_assistant, before_summary = pipeline.assistant, pipeline.summary
    report = uploads.add_documents(pipeline, [(write(tmp_path, "bad.txt", b"\xc3\x28\x00\x00"), None),
                                              (write(tmp_path, "escape.exe", b"x"), "../../escape.exe")])
    assert report.saved == [] and [n for n, _ in report.rejected] == ["bad.txt", "escape.exe"]
    assert report.summary == "" and report.error == ""
    assert sorted(p.name for p in corpus.iterdir()) == before_files
    assert pipeline.assistant is before_assistant and pipeline.summary is before_summary
    assert not (tmp_path.parent / "escape.exe").exists()


def test_uploading_a_name_already_in_the_folder_is_refused(pipeline, corpus, tmp_path):
    report = uploads.add_documents(pipeline, [(write(tmp_path, "CAT.TXT", b"Not a cat.\n"), None)])
    assert report.saved == [] and "already exists" in dict(report.rejected)["CAT.TXT"]
    assert (corpus / "cat.txt").read_text(encoding="utf-8") == CORPUS["cat.txt"]


# -- formats: sniffed from the content, converted before saving, mode 0644 ----------------------------

def test_a_pdf_named_txt_is_saved_as_a_pdf(tmp_path):
    converter_available("pdf")
    docs = tmp_path / "docs"
    report = uploads.save_uploads([(write(tmp_path, "report.txt", pdf_bytes()), None),
                                   (write(tmp_path, "scan", pdf_bytes()), "README"),
                                   (write(tmp_path, "notes.exe", pdf_bytes()), None)], docs)
    assert report.saved == ["report.pdf", "README.pdf", "notes.exe.pdf"] and report.rejected == []
    assert (docs / "report.pdf").read_bytes().startswith(b"%PDF-") and not (docs / "report.txt").exists()
    assert report.renamed == [("report.txt", "report.pdf"), ("README", "README.pdf"), ("notes.exe", "notes.exe.pdf")]
    assert "*report.txt is a PDF file: saved as report.pdf.*" in report.message()


def test_text_budget_counts_the_text_not_the_bytes(tmp_path):
    converter_available("pdf")
    path = write(tmp_path, "harbour.pdf", pdf_bytes())
    checked = uploads.check_upload(path)
    assert checked.fmt == "pdf" and checked.name == "harbour.pdf"
    assert 200 < checked.text_bytes < 400 < len(checked.data)  # a PDF's bytes are mostly layout and fonts
    report = uploads.save_uploads([(path, None)], tmp_path / "docs", budget=checked.text_bytes)
    assert report.saved == ["harbour.pdf"] and report.size == checked.text_bytes
    again = uploads.save_uploads([(write(tmp_path, "again.pdf", pdf_bytes()), None)], tmp_path / "docs2",
                                 budget=checked.text_bytes - 1)
    assert again.saved == [] and "still being indexed" in dict(again.rejected)["again.pdf"]


def test_too_much_text_in_a_small_file_is_refused(tmp_path, monkeypatch):
    converter_available("pdf")
    monkeypatch.setattr(uploads, "MAX_UPLOAD_TEXT", 100)
    with pytest.raises(InputError, match=r"^harbour.pdf: too much text \(\d+ KB; the limit is 1 KB of text a file, "):
        uploads.check_upload(write(tmp_path, "harbour.pdf", pdf_bytes()))


def test_word_files_are_accepted_and_damaged_ones_refused_with_the_converters_reason(tmp_path):
    converter_available("docx")
    good = uploads.check_upload(write(tmp_path, "notes.docx", docx_bytes()))
    assert good.fmt == "docx" and good.name == "notes.docx" and good.text_bytes > 0
    renamed = uploads.check_upload(write(tmp_path, "notes.txt", docx_bytes()))
    assert renamed.name == "notes.docx"
    with pytest.raises(InputError) as info:
        uploads.check_upload(write(tmp_path, "broken.docx", damaged_docx_bytes()))
    message = str(info.value)
    assert message.startswith("broken.docx: ") and "\n" not in message and len(message) < 300


def test_a_converter_that_crashes_is_a_one_line_refusal(tmp_path, monkeypatch, caplog):
    import rag.ingest.formats.pdf

    def crash(data, name):
        raise ZeroDivisionError("deep inside a library")

    monkeypatch.setattr(rag.ingest.formats.pdf, "convert", crash)
    with pytest.raises(InputError, match=r"^odd.pdf: could not be read as a PDF file \(ZeroDivisionError: deep inside a library\)$"):
        uploads.check_upload(write(tmp_path, "odd.pdf", b"%PDF-1.7\n" + b"x" * 100))


def test_saved_files_are_readable_by_all_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        report = uploads.save_uploads([(write(tmp_path, "notes.md", b"# Notes\n\nCranes fly south.\n"), None)],
                                      tmp_path / "docs")
    finally:
        os.umask(old)
    assert report.saved == ["notes.md"]
    assert stat.S_IMODE((tmp_path / "docs" / "notes.md").stat().st_mode) == 0o644
    assert [p.name for p in (tmp_path / "docs").iterdir()] == ["notes.md"]  # no temporary file left


def test_uploads_go_to_the_uploads_folder_when_the_pipeline_has_one(corpus, tmp_path):
    folder = tmp_path / "uploads"
    pipeline = Pipeline.open(tmp_path / "index2", corpus, uploads=folder, embedder=FakeEmbedder(), min_relevance=0.3)
    assert pipeline.upload_dir.resolve() == folder.resolve()
    before = sorted(p.name for p in corpus.iterdir())
    report = uploads.add_documents(pipeline, [(write(tmp_path, "otters.md", b"# Otters\n\nSea otters hold hands "
                                                                             b"while sleeping.\n"), None)])
    assert report.saved == ["otters.md"] and report.error == "", report
    assert (folder / "otters.md").exists() and sorted(p.name for p in corpus.iterdir()) == before
    assert "uploads/otters.md" in pipeline.docs
    assert pipeline.search("otters hold hands", mode="bm25")[0].doc == "uploads/otters.md"
    assert pipeline.source_file("uploads/otters.md") == (folder / "otters.md").resolve()


def test_without_an_uploads_folder_uploads_go_to_the_documents_folder(pipeline, corpus):
    assert pipeline.upload_dir.resolve() == corpus.resolve()


def test_limits_text_names_every_limit():
    text = uploads.limits_text()
    assert "256 KB a text file" in text and "5.0 MB a PDF, Word or HTML file" in text
    assert "256 KB of text each" in text and "512 KB of text waiting" in text
