"""rag.serve.uploads: files a person uploads in the web chat are checked, saved under a safe name inside
the documents folder only, and indexed through the pipeline (`add_documents`). (The upload part of the
old tests of rag/ui.py; the pipeline's side of an upload - concurrent questions, failed indexing, the
swap - is in tests/test_pipeline.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FakeEmbedder, write_files
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


def test_check_upload_accepts_utf8_text(tmp_path):
    path = write(tmp_path, "ok.md", "# Título\n\nÜber text.\n".encode())
    assert uploads.check_upload(path) == ("ok.md", "# Título\n\nÜber text.\n".encode())
    exactly = write(tmp_path, "big.txt", b"a" * uploads.MAX_UPLOAD_BYTES)
    assert uploads.check_upload(exactly)[0] == "big.txt"


@pytest.mark.parametrize("name, data, reason", [
    ("doc.pdf", b"%PDF-1.4 text", r"only \.txt and \.md files are accepted \(this is \.pdf\)"),
    ("run.exe", b"MZ", r"only \.txt and \.md"),
    ("notes.txt.exe", b"hello", r"this is \.exe"),
    ("README", b"hello", "without an extension"),
    ("bin.txt", b"hello\x00\x01\x02world", "binary"),
    ("latin1.txt", "café".encode("latin-1"), r"not valid UTF-8 text \(bad byte at position 3\)"),
    ("utf16.txt", "hello".encode("utf-16"), "not valid UTF-8|binary"),
    ("empty.txt", b"", "empty"),
    ("blank.md", b"  \n\n ", "empty"),
    pytest.param("huge.txt", b"a" * (uploads.MAX_UPLOAD_BYTES + 1),
                 r"too big \(256 KB; the limit is 256 KB, what can be indexed in a minute or two\)", id="huge"),
])
def test_check_upload_rejects_with_a_clear_reason(tmp_path, name, data, reason):
    path = write(tmp_path, name, data)
    with pytest.raises(InputError, match=reason) as info:
        uploads.check_upload(path)
    assert str(info.value).startswith(name + ":")


def test_save_uploads_keeps_good_files_and_reports_bad_ones(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "existing.txt").write_text("Already here.\n", encoding="utf-8")
    files = [
        (write(tmp_path, "good.txt", b"Good text about zebras.\n"), None),
        (write(tmp_path, "evil.txt", b"Traversal attempt.\n"), "../evil.txt"),
        (write(tmp_path, "binary.txt", b"\x00\x01"), None),
        (write(tmp_path, "bad.md", b"\xff\xfe bad"), None),
        (write(tmp_path, "x.pdf", b"pdf"), None),
        (write(tmp_path, "existing.txt", b"Overwrite attempt.\n"), None),
        (write(tmp_path, "dup.txt", b"One.\n"), "GOOD.txt"),  # same name as one in this batch
    ]
    outside_before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if docs not in p.parents)
    report = uploads.save_uploads(files, docs)
    assert report.saved == ["good.txt", "evil.txt"]
    rejected = dict(report.rejected)
    assert set(rejected) == {"binary.txt", "bad.md", "x.pdf", "existing.txt", "GOOD.txt"}
    assert "binary" in rejected["binary.txt"] and "UTF-8" in rejected["bad.md"]
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
    report = uploads.UploadReport(rejected=[("<img src=x onerror=alert(1)>.pdf", "only .txt and .md files")])
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
    report = uploads.add_documents(pipeline, [(write(tmp_path, "bad.txt", b"\xc3\x28"), None),
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
