"""Document files made at test time (no committed binaries): PDFs with fpdf2, Word files with
python-docx, and the things that only look like them (a zip, an executable, a scan without text)."""

from __future__ import annotations

import io
import zipfile

import pytest

OTTER_PAGES = [
    "Harbour Report\nThe old harbour was rebuilt in 1998 by the town council after the great storm.",
    "Herons nest in the tall reeds along the eastern shore of the lake every spring and autumn.",
    "Sea otters hold hands while they sleep so that they do not drift apart in the current.",
]


def pdf_bytes(pages: list[str] = OTTER_PAGES) -> bytes:
    """A PDF with a text layer: one page per string (each line a paragraph)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Harbour Report")
    for text in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        for line in text.split("\n"):
            pdf.multi_cell(0, 8, line)
            pdf.ln(6)
    return bytes(pdf.output())


def scan_pdf_bytes() -> bytes:
    """A PDF with pages but no text layer (what a scan without OCR looks like to a text extractor)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_fill_color(120, 120, 120)
    for row in range(20):
        pdf.rect(20, 20 + row * 12, 150, 6, style="F")
    return bytes(pdf.output())


def docx_bytes(paragraphs: tuple[str, ...] = ("Lighthouse keepers log the weather every four hours.",)) -> bytes:
    """A Word file with a heading and `paragraphs`."""
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_heading("Lighthouse Notes", level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bytes() -> bytes:
    """A zip archive that is no Word file."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "not a document\n" * 20)
        z.writestr("data.bin", bytes(range(256)) * 10)
    return out.getvalue()


def damaged_docx_bytes() -> bytes:
    """A zip that claims to be a Word file (word/document.xml) but whose XML is broken."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types")
        z.writestr("word/document.xml", "<w:document><w:body><w:p>broken")
    return out.getvalue()


EXECUTABLE = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56 + bytes(range(256)) * 4
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def converter_available(fmt: str) -> None:
    """Skip the test when the converter of `fmt` is not there yet (rag.ingest.formats.<fmt>)."""
    pytest.importorskip(f"rag.ingest.formats.{fmt}", reason=f"the {fmt} converter is not in this tree yet")
