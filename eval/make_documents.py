"""Render seed-like `.txt` documents as PDF, DOCX and HTML: fixtures for the converters' tests and benchmarks.

The structure comes from `rag.ingest.load.parse`: the first line is the title, every line outside a
block is a heading (its level is its depth in the heading path of the blocks under it), every other
line is a paragraph. `render_pdf` (fpdf2) prints the title and headings in bigger bold type, paragraphs
wrapped to the page width with a little space between them, and, unless told not to, a running header
with the title and a "Page N" footer on every page; `outline=True` adds a bookmark per heading. It uses
DejaVu Sans when the machine has it (so curly quotes and accents print), else Helvetica with the text
folded to Latin-1. `render_docx` (python-docx) uses the Title, "Heading N" and Normal styles;
`render_html` puts h1-h6 and p in an <article> amid the boilerplate an HTML converter must drop (a
menu, a cookie banner, a sidebar, a footer). Nothing here is committed as a binary: tests render what
they need.

    python eval/make_documents.py SRC_FOLDER OUT_FOLDER --format pdf|docx|html [--outline] [--no-running-header]
"""

from __future__ import annotations

import argparse
import html
import io
import subprocess
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.ingest.load import parse

BODY_PT, TITLE_PT = 10.5, 20.0
HEADING_PT = {1: 17.0, 2: 15.0, 3: 13.5, 4: 12.5}  # deeper levels: the body size, bold
_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF")
_FOLD = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "\u00a0": " "})


def structure(document_text: str) -> tuple[str, list[tuple[int, str]]]:
    """(title, [(level, line), ...]): level 0 for a paragraph line, 1.. for a heading (1 is the top)."""
    doc = parse("document.txt", document_text)
    lines, pos = [], 0
    for raw in document_text.split("\n"):
        if raw.strip():
            lines.append((pos, raw.strip()))
        pos += len(raw) + 1
    if not lines:
        return doc.title, []
    body_starts = [(b.start, b.end, b.heading) for b in doc.blocks]
    titled = lines[0][1].lstrip("#").strip() == doc.title
    out: list[tuple[int, str]] = []
    for start, line in lines[1:] if titled else lines:
        if any(s <= start < e for s, e, _ in body_starts):
            out.append((0, line))
            continue
        after = next((h for s, _, h in body_starts if s > start), ())
        name = line.lstrip("#").strip() if line.startswith("#") else line
        level = after.index(name) if name in after[1:] else (max((lv for lv, _ in out), default=0) or 1)
        out.append((max(level, 1), line))
    return doc.title, out


@lru_cache(maxsize=1)
def _dejavu() -> tuple[str, str] | None:
    """Paths of DejaVu Sans regular and bold, or None."""
    candidates = [Path(d) for d in _FONT_DIRS]
    try:
        found = subprocess.run(["fc-list", ":family=DejaVu Sans", "file"], capture_output=True, text=True,
                               timeout=10, check=False).stdout
        candidates += [Path(line.split(":")[0]).parent for line in found.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    for folder in candidates:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return str(regular), str(bold)
    return None


def _latin1(text: str) -> str:
    text = text.translate(_FOLD)
    return "".join(c if ord(c) < 256 else unicodedata.normalize("NFKD", c).encode("latin-1", "ignore").decode("latin-1")
                   or "?" for c in text)


def render_pdf(document_text: str, out_path: str | Path | None = None, *, running_header: bool = True,
               outline: bool = False, unicode_font: bool = True) -> bytes:
    """The document as a PDF (A4, one column); written to `out_path` when given. Returns the bytes."""
    from fpdf import FPDF

    title, lines = structure(document_text)
    fonts = _dejavu() if unicode_font else None
    family = "DejaVu" if fonts else "Helvetica"
    fix = (lambda s: s) if fonts else _latin1

    class Pdf(FPDF):
        def header(self):
            if running_header:
                self.set_font(family, "", 8)
                self.cell(0, 5, fix(title), new_x="LMARGIN", new_y="NEXT", align="R")
                self.ln(4)

        def footer(self):
            if running_header:
                self.set_y(-15)
                self.set_font(family, "", 8)
                self.cell(0, 8, f"Page {self.page_no()}", align="C")

    pdf = Pdf(format="A4")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=22)
    if fonts:
        pdf.add_font(family, "", fonts[0])
        pdf.add_font(family, "B", fonts[1])
    pdf.set_title(fix(title))
    pdf.set_font(family, "", BODY_PT)
    pdf.add_page()
    depth = 0
    if outline:
        pdf.start_section(fix(title), 0)
    pdf.set_font(family, "B", TITLE_PT)
    _write(pdf, fix(title), TITLE_PT)
    pdf.ln(4)
    for level, line in lines:
        if level:
            size = HEADING_PT.get(level, BODY_PT)
            if pdf.will_page_break(size * 0.5 + 12):  # keep a heading with the text under it
                pdf.add_page()
            if outline:
                depth = min(level, depth + 1)
                pdf.start_section(fix(line), depth)
            pdf.ln(2)
            pdf.set_font(family, "B", size)
            _write(pdf, fix(line), size)
            pdf.ln(1.5)
        else:
            pdf.set_font(family, "", BODY_PT)
            _write(pdf, fix(line), BODY_PT)
            pdf.ln(2)
    data = bytes(pdf.output())
    if out_path is not None:
        Path(out_path).write_bytes(data)
    return data


def render_docx(document_text: str, out_path: str | Path | None = None) -> bytes:
    """The document as a Word file: the Title style, "Heading N" styles, Normal paragraphs. Returns the bytes."""
    import docx

    title, lines = structure(document_text)
    document = docx.Document()
    document.core_properties.title = title
    document.add_heading(title, 0)
    for level, line in lines:
        if level:
            document.add_heading(line, min(level, 9))
        else:
            document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    data = buffer.getvalue()
    if out_path is not None:
        Path(out_path).write_bytes(data)
    return data


def render_html(document_text: str, out_path: str | Path | None = None) -> bytes:
    """The document as a web page: the text in an <article> (h1 the title, h2-h6 the headings, p the
    paragraphs), a menu, a cookie banner, a sidebar and a footer around it. Returns the UTF-8 bytes."""
    title, lines = structure(document_text)
    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>"]
    for level, line in lines:
        tag = f"h{min(level + 1, 6)}" if level else "p"
        body.append(f"<{tag}>{esc(line)}</{tag}>")
    article = "\n".join(body)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{esc(title)} | Ministry Portal</title>
<script>window.dataLayer = window.dataLayer || [];</script></head>
<body>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience on our site.
<button>Accept all cookies</button> <button>Settings</button></div>
<header class="site-header"><a class="logo" href="/">Ministry Portal</a>
<nav class="main-menu"><ul><li><a href="/">Home</a></li><li><a href="/policy/">Policy</a></li>
<li><a href="/press/">Press releases</a></li><li><a href="/about/">About us</a></li></ul></nav></header>
<main>
<nav class="breadcrumb"><a href="/">Home</a> &gt; <a href="/policy/">Policy</a> &gt; {esc(title)}</nav>
<article>
{article}
</article>
<aside class="sidebar"><h2>Related pages</h2><ul><li><a href="/a/">Regional affairs</a></li>
<li><a href="/b/">Press conferences</a></li><li><a href="/c/">Visa information</a></li></ul></aside>
</main>
<footer class="site-footer"><p>Copyright 2025 Ministry Portal. All rights reserved.</p>
<p><a href="/privacy/">Privacy policy</a> | <a href="/contact/">Contact</a> | <a href="/sitemap/">Sitemap</a></p></footer>
</body>
</html>
"""
    data = page.encode("utf-8")
    if out_path is not None:
        Path(out_path).write_bytes(data)
    return data


def wrap(width_of, text: str, width: float) -> list[str]:
    """`text` broken into lines no wider than `width` at spaces only (a word wider than a line is cut),
    so that a hyphen printed at a line end is one the text has."""
    lines, line = [], ""
    for word in text.split():
        while width_of(word) > width:  # a long URL: cut it where the line is full
            cut = max(1, max(n for n in range(1, len(word) + 1) if n == 1 or width_of(word[:n]) <= width))
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}" if line else word
        if line and width_of(candidate) > width:
            lines.append(line)
            candidate = word
        line = candidate
    return lines + [line] if line else lines


def _write(pdf, text: str, size: float) -> None:
    for line in wrap(pdf.get_string_width, text, pdf.epw - 2 * pdf.c_margin):  # a cell pads its text
        pdf.cell(pdf.epw, size * 0.5, line, new_x="LMARGIN", new_y="NEXT")


RENDERERS = {"pdf": render_pdf, "docx": render_docx, "html": render_html}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render every .txt file of a folder as PDF, DOCX or HTML.")
    ap.add_argument("src", type=Path, help="folder of seed-like .txt files")
    ap.add_argument("out", type=Path, help="folder to write the rendered files to (created)")
    ap.add_argument("--format", choices=sorted(RENDERERS), default="pdf")
    ap.add_argument("--outline", action="store_true", help="PDF: a bookmark per heading")
    ap.add_argument("--no-running-header", action="store_true", help="PDF: no running header and page footer")
    args = ap.parse_args(argv)
    sources = sorted(args.src.glob("*.txt"))
    if not sources:
        ap.error(f"no .txt files in {str(args.src)!r}")
    args.out.mkdir(parents=True, exist_ok=True)
    for src in sources:
        target = args.out / f"{src.stem}.{args.format}"
        text = src.read_text(encoding="utf-8")
        if args.format == "pdf":
            render_pdf(text, target, running_header=not args.no_running_header, outline=args.outline)
        else:
            RENDERERS[args.format](text, target)
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
