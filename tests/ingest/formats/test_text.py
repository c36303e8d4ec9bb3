"""rag.ingest.formats.text (a text file in any encoding, universal newlines, binary refused) and
rag.ingest.formats detect/sniff/convert (the format from the content first, the name second)."""

from __future__ import annotations

import codecs
import io
import subprocess
import sys

import pytest
from conftest import ROOT, SEED_2025, SEEDS

from rag.errors import UnreadableFile
from rag.ingest.formats import Extracted, by_name, convert, detect, sniff
from rag.ingest import formats
from rag.ingest.formats import text as text_format

SEED = (SEEDS / SEED_2025).read_text(encoding="utf-8")
SAMPLE = "Café crème — “quoted” and 10 € in Zürich.\nSecond line.\n"


def word_file() -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph("A Word file whatever its name says.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_utf8_is_the_files_own_text():
    data = SAMPLE.encode("utf-8")
    assert text_format.convert(data, "a.txt") == Extracted(SAMPLE)


def test_utf8_byte_order_mark_is_kept_as_today():
    # spans index the file's own characters: the mark stays at offset 0 (parse skips it)
    assert text_format.convert(codecs.BOM_UTF8 + b"Title\nBody.\n", "a.txt").text == "\ufeffTitle\nBody.\n"


@pytest.mark.parametrize(("encoding", "sample"), [
    ("latin-1", "Café crème brûlée, déjà vu à Zürich, naïve Ångström.\n"),
    ("cp1252", "The café’s menu: crème brûlée, “fresh” daily.\nHe said “hello” – it costs 10 €.\n"),
    ("cp1252", SEED[:3000].replace("'", "’")),
], ids=["latin-1", "cp1252", "cp1252-seed-start"])
def test_western_legacy_encodings_are_decoded(encoding, sample):
    assert text_format.convert(sample.encode(encoding), "a.txt").text == sample


@pytest.mark.parametrize("sample", [
    SEED.replace("'", "’"),
    "Café crème brûlée, déjà vu à Zürich, naïve Ångström.\n“Quoted” – 10 € – smart punctuation.\n",
], ids=["seed-curly-apostrophes", "accent-dense"])
def test_windows_1252_that_charset_normalizer_ranks_second_is_decoded(sample):
    assert text_format.convert(sample.encode("cp1252"), "a.txt").text == sample


@pytest.mark.parametrize("sample, encoding", [
    ("Привет мир, это текст на русском языке.", "cp1251"),
    ("Ελληνικά κείμενο εδώ για δοκιμή", "cp1253"),
    ("Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig.", "cp1250"),
], ids=["cyrillic", "greek", "polish"])
def test_other_code_pages_are_not_taken_for_windows_1252(sample, encoding):
    assert text_format.convert(sample.encode(encoding), "a.txt").text == sample


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_decoded(encoding):
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    data = bom + SAMPLE.encode(encoding)  # "utf-16" and "utf-32" write their own mark
    assert text_format.convert(data, "a.txt").text == SAMPLE


@pytest.mark.parametrize("data", [b"\x00\x01\x02\x03binary\x00data", bytes(range(256)) * 4, b"GIF89a\x01\x00\x00\x00"],
                         ids=["nul", "all-bytes", "gif"])
def test_binary_is_refused(data):
    with pytest.raises(UnreadableFile) as err:
        text_format.convert(data, "blob.txt")
    assert err.value.path == "blob.txt" and "binary" in err.value.reason


def test_utf16_without_its_mark_is_refused_as_binary():
    with pytest.raises(UnreadableFile, match="binary"):
        text_format.convert("plain words".encode("utf-16-le"), "a.txt")


def test_universal_newlines():
    assert text_format.convert(b"one\r\ntwo\rthree\nfour", "a.txt").text == "one\ntwo\nthree\nfour"
    assert text_format.convert("a\r\nb\r".encode("utf-16"), "a.txt").text == "a\nb\n"


def test_sniff_reads_the_content():
    assert sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj") == "pdf"
    assert sniff(word_file()) == "docx"
    assert sniff(b"<!DOCTYPE html><html><body><p>x</p></body></html>") == "html"
    assert sniff(codecs.BOM_UTF8 + b"\n<html lang='en'><body>x</body></html>") == "html"
    assert sniff(b"Just text about <html> tags.") is None
    assert sniff(b"PK\x03\x04 a zip that is no Word file") is None


@pytest.mark.parametrize(("name", "fmt"), [("notes.TXT", "text"), ("a/b/readme.md", "text"), ("x.markdown", "text"),
                                           ("r.pdf", "pdf"), ("w.docx", "docx"), ("p.htm", "html"),
                                           ("p.xhtml", "html"), ("x.doc", None), ("noext", None)])
def test_by_name(name, fmt):
    assert by_name(name) == fmt


def test_a_pdf_or_word_file_named_txt_is_detected_by_its_content():
    assert detect(b"%PDF-1.4\n1 0 obj << >> endobj", "report.txt") == "pdf"
    assert detect(word_file(), "report.txt") == "docx"
    assert detect(b"plain words", "report.txt") == "text"


def test_a_word_file_named_txt_is_converted_as_word():
    assert convert(word_file(), "report.txt").text == "A Word file whatever its name says.\n"


@pytest.mark.parametrize(("name", "suffix"),
                         [("photo.jpg", ".jpg"), ("sheet.XLSX", ".xlsx"), ("Makefile", "no suffix")])
def test_an_unknown_suffix_is_an_unsupported_file_type(name, suffix):
    with pytest.raises(UnreadableFile) as err:
        detect(b"some bytes", name)
    assert err.value.reason.startswith(f"unsupported file type ({suffix}); supported: .txt, .md")


@pytest.mark.parametrize("cut", [10, 200, -30])
def test_a_truncated_docx_is_unreadable(cut):
    data = word_file()[:cut]
    with pytest.raises(UnreadableFile) as err:
        convert(data, "report.docx")
    assert err.value.path == "report.docx" and "Word" in err.value.reason and "\n" not in str(err.value)


def test_a_pdf_named_pdf_that_is_none_is_unreadable():
    with pytest.raises(UnreadableFile, match="not a readable PDF file"):
        detect(b"plain words", "paper.pdf")


def test_the_query_path_imports_no_converter_library():
    code = ("import sys, rag.ingest.load, rag.ingest.formats; "
            "print(sorted(m for m in ('docx', 'trafilatura', 'lxml.html') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---- detection and conversion failures ----

def test_a_text_that_mentions_the_pdf_marker_is_still_text():
    data = b"Notes\nA PDF file starts with %PDF-1.7 and ends with %%EOF.\n"
    assert formats.sniff(data) is None and formats.detect(data, "notes.md") == "text"
    assert formats.convert(data, "notes.md").text == data.decode()
    assert formats.detect(b"\xef\xbb\xbf %PDF-1.4 ...", "x.bin") == "pdf"  # a real header, after a mark and a space
    assert formats.detect(b"junk before %PDF-1.4 ...", "x.pdf") == "pdf"  # readers accept bytes before the header


def test_an_old_office_file_or_an_encrypted_docx_says_so():
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
    for name in ("locked.docx", "old.doc"):
        with pytest.raises(UnreadableFile, match="old-style Office file .* password-protected Word file"):
            formats.detect(ole, name)


def test_a_converter_failing_in_an_unforeseen_way_is_one_reason_not_a_crash(monkeypatch):
    import rag.ingest.formats.text as text_module

    def broken(data, name):
        raise AttributeError("'NoneType' object has no attribute 'body'\nmore lines")

    monkeypatch.setattr(text_module, "convert", broken)
    with pytest.raises(UnreadableFile) as err:
        formats.convert(b"hello", "a.txt")
    assert err.value.reason == "could not be read as a text file (AttributeError: 'NoneType' object has no attribute 'body')"
