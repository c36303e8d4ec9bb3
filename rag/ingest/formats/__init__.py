"""Turn a file's bytes into the text the index stores and cites: one converter module per format.

Every converter is `convert(data: bytes, name: str) -> Extracted` and writes its text the way the
seeds are written: one paragraph a line (a paragraph's own line breaks joined, words hyphenated at a
line end rejoined), each heading on a line of its own, no blank lines, nothing a reader would not
quote (navigation, running headers and footers, page numbers). `Extracted.headings` marks the
heading lines the format itself declares (PDF outline or font, Word heading styles, HTML h1-h6) with
their level; `Extracted.pages` is where each page starts in the text (PDF only). A file that is no
document raises `UnreadableFile` with a reason a person understands.

`detect` tells the format from the content first (a PDF or a Word file whatever its name) and the
name second; `convert` dispatches. The libraries are imported on first use of their format. Does not
split into blocks (`rag.ingest.load.parse` does, honouring `headings`), chunk or index.
"""

from __future__ import annotations

import importlib
import logging
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePath

from rag.errors import UnreadableFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Extracted:
    text: str  # what is indexed and cited: `passage.text == text[passage.start:passage.end]`
    headings: tuple[tuple[int, float], ...] = ()  # (offset where a heading line starts, level: 1 is the top)
    pages: tuple[int, ...] = ()  # page n (1-based) starts at offset pages[n - 1]; () for formats without pages
    title: str | None = None  # the document's own title, when the format records one


# format -> (suffixes, converter module under rag.ingest.formats)
FORMATS = {
    "text": ((".txt", ".md", ".markdown", ".text"), "text"),
    "pdf": ((".pdf",), "pdf"),
    "docx": ((".docx",), "docx"),
    "html": ((".html", ".htm", ".xhtml"), "html"),
}
SUFFIXES = tuple(s for suffixes, _ in FORMATS.values() for s in suffixes)
_HTML_START = (b"<!doctype html", b"<html", b"<?xml")


def supported() -> str:
    """The supported suffixes, for messages: ".txt, .md, ... or .html"."""
    return ", ".join(SUFFIXES[:-1]) + " or " + SUFFIXES[-1]


_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an old Office file (.doc, .xls) or an encrypted .docx
FORMAT_NAMES = {"text": "text", "pdf": "PDF", "docx": "Word (.docx)", "html": "web page"}


def sniff(data: bytes) -> str | None:
    """The format the content itself shows (a PDF, a Word file, an HTML page), or None."""
    head = data[:1024]
    if head.lstrip(b"\xef\xbb\xbf \t\r\n\x00").startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(BytesIO(data)) as z:
                if "word/document.xml" in z.namelist():
                    return "docx"
        except (zipfile.BadZipFile, OSError, ValueError):
            pass
        return None
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(_HTML_START) and (b"<html" in head.lower() or b"<body" in head.lower()):
        return "html"
    return None


def by_name(name: str) -> str | None:
    """The format a file name's suffix names, or None."""
    suffix = PurePath(name).suffix.lower()
    return next((fmt for fmt, (suffixes, _) in FORMATS.items() if suffix in suffixes), None)


def detect(data: bytes, name: str) -> str:
    """The format of a file: what its content shows, else what its name says; UnreadableFile when
    neither is a supported format."""
    fmt = sniff(data)
    if fmt is not None:
        return fmt
    fmt = by_name(name)
    if fmt == "pdf" and b"%PDF-" in data[:1024]:  # a PDF with bytes before its header: readers accept it
        return fmt
    if data.startswith(_OLE):
        raise UnreadableFile(name, "an old-style Office file (.doc, .xls) or a password-protected Word file; "
                                   "save it as .docx without a password")
    if fmt in ("pdf", "docx"):
        raise UnreadableFile(name, f"not a readable {FORMAT_NAMES[fmt]} file (damaged or truncated?)")
    if fmt is None:
        suffix = PurePath(name).suffix.lower() or "no suffix"
        raise UnreadableFile(name, f"unsupported file type ({suffix}); supported: {supported()}")
    return fmt


def convert(data: bytes, name: str, fmt: str | None = None) -> Extracted:
    """The text of a file of format `fmt` (`detect`ed when None); UnreadableFile says why there is none,
    also when a converter's library fails on a strange file in a way it did not foresee."""
    fmt = fmt or detect(data, name)
    module = importlib.import_module(f"{__name__}.{FORMATS[fmt][1]}")
    try:
        return module.convert(data, name)
    except UnreadableFile:
        raise
    except Exception as exc:  # noqa: BLE001 - one strange file must not stop a build: it is skipped, with why
        log.debug("converting %s failed", name, exc_info=True)
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UnreadableFile(name, f"could not be read as a {FORMAT_NAMES[fmt]} file "
                                   f"({type(exc).__name__}{': ' + detail if detail else ''})") from None
