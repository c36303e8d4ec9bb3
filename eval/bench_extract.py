"""Extraction benchmark: how fast, and in what order, each PDF library gives the text of the same files.

The seeds are rendered with eval/make_documents.py (a running header and a "Page N" footer on every
page), each repeated to about half of `--pages` pages, and read by: our converter
(`rag.ingest.formats.pdf`, the full pipeline: lines, paragraphs, headings, running headers), raw
pypdfium2 (`get_text_range` per page, nothing else), pypdf (`extract_text`) and pdfplumber
(`extract_text`). For each: pages per second (best of a few runs), and on the seeds rendered once, how
much of the source survives: seed lines whose start is found in reading order, seed lines found whole
as one output line (a paragraph kept one line), and running headers or footers left in. Our DOCX and
HTML converters are timed in documents per second when `rag/ingest/formats/docx.py` / `html.py` import.
Each library's licence is read from its installed metadata.

`--pdf FILE ...` times the extractors on PDFs of your own too, with the words each one gives (a library
that loses the spaces between words gives far fewer).

    pip install -e ".[compare]"   # the peers, pypdf and pdfplumber (a missing one is skipped)
    python eval/bench_extract.py [--pages 200] [--pdf FILE ...]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import io
import os
import re
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_documents

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("pypdfium2", "pypdf", "pdfplumber", "pdfminer.six", "python-docx", "trafilatura", "charset-normalizer", "fpdf2")


def ours(data: bytes) -> str:
    from rag.ingest.formats.pdf import convert

    return convert(data, "bench.pdf").text


def pdfium_raw(data: bytes) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        out = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            out.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return "\n".join(out)
    finally:
        pdf.close()


def pypdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def pdfplumber_text(data: bytes) -> str:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        return "\n".join(page.extract_text() or "" for page in pdf.pages)


EXTRACTORS = {  # name -> (function, library)
    "ours (pypdfium2, full)": (ours, "pypdfium2"),
    "pypdfium2 get_text_range": (pdfium_raw, "pypdfium2"),
    "pypdf extract_text": (pypdf_text, "pypdf"),
    "pdfplumber extract_text": (pdfplumber_text, "pdfplumber"),
}


def licence(dist: str) -> str:
    try:
        meta = metadata.metadata(dist)
    except metadata.PackageNotFoundError:
        return "not installed"
    text = meta.get("License-Expression") or (meta.get("License") or "").split("\n")[0]
    classifiers = [c.rsplit(" :: ", 1)[-1] for c in meta.get_all("Classifier") or () if c.startswith("License ::")]
    return f"{text or ', '.join(classifiers) or '?'} ({meta['Version']})"


def repeated(text: str, pages: int) -> str:
    """The seed with its body repeated until it prints on about `pages` pages (about 2,800 characters a page)."""
    title, body = text.split("\n", 1)
    times = max(1, round(pages * 2800 / max(len(body), 1)))
    return title + "\n" + "\n".join([body.strip("\n")] * times) + "\n"


def page_count(data: bytes) -> int:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        return len(pdf)
    finally:
        pdf.close()


def timed(fn, files: list[bytes], budget: float = 2.0) -> float:
    """Best seconds for one pass over `files`: up to three passes, fewer when a pass is slow."""
    best, spent = float("inf"), 0.0
    for _ in range(3):
        gc.collect()
        start = time.perf_counter()
        for data in files:
            fn(data)
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if spent > budget:
            break
    return best


def _fold(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").split())


def fidelity(text: str, sources: list[str]) -> tuple[int, int, int, int]:
    """(seed lines whose first 40 characters are found in order, seed lines found whole as an output
    line, seed lines in all, running header or footer lines left in)."""
    flat, lines = _fold(text), {_fold(line) for line in text.splitlines()}
    in_order = whole = total = 0
    pos = 0
    for source in sources:
        for line in source.split("\n")[1:]:
            line = _fold(line)
            if not line:
                continue
            total += 1
            at = flat.find(line[:40], pos)
            if at >= 0:
                in_order, pos = in_order + 1, at
            whole += line in lines
    running = sum(1 for line in text.splitlines() if re.fullmatch(r"\s*(Page \d+|Diplomatic Bluebook 20\d\d)\s*", line))
    return in_order, whole, total, running - len(sources)  # the title line itself is no running header


def bench_others(seeds: list[str]) -> None:
    for fmt, render in (("docx", make_documents.render_docx), ("html", make_documents.render_html)):
        try:
            module = importlib.import_module(f"rag.ingest.formats.{fmt}")
        except ImportError as exc:
            print(f"  {fmt}: skipped, rag/ingest/formats/{fmt}.py does not import ({exc})")
            continue
        files = [render(seed) for seed in seeds] * 10
        seconds = timed(lambda data, m=module, name=f"bench.{fmt}": m.convert(data, name), files)
        kb = sum(map(len, files)) / len(files) / 1024
        print(f"  {fmt}: {len(files) / seconds:8.1f} documents/s  ({len(files)} documents of {kb:.0f} KB on average)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=200, help="about how many PDF pages to time (default 200)")
    ap.add_argument("--pdf", type=Path, nargs="*", default=[], help="PDF files of your own to time as well")
    args = ap.parse_args(argv)
    seeds = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; rendering the seeds with fpdf2 ...")
    started = time.perf_counter()
    big = [make_documents.render_pdf(repeated(seed, args.pages // len(seeds))) for seed in seeds]
    small = [make_documents.render_pdf(seed) for seed in seeds]
    pages = sum(map(page_count, big))
    print(f"  {len(big)} PDFs of {pages} pages in all, plus the {len(small)} seeds as they are "
          f"({sum(map(page_count, small))} pages), in {time.perf_counter() - started:.1f} s\n")
    head = f"{'extractor':26} {'pages/s':>8} {'in order':>9} {'whole':>7} {'running':>8}  licence"
    print(head + "\n" + "-" * (len(head) + 30))
    for name, (fn, lib) in EXTRACTORS.items():
        if importlib.util.find_spec(lib) is None:
            print(f"{name:26} skipped: {lib} is not installed (pip install -e \".[compare]\")")
            continue
        seconds = timed(fn, big)
        in_order, whole, total, running = fidelity("\n".join(fn(d) for d in small), seeds)
        print(f"{name:26} {pages / seconds:8.1f} {in_order:>4}/{total:<4} {whole:>3}/{total:<3} {running:>8}  "
              f"{licence(lib)}")
    print("\n  in order: seed lines whose start is found, in order; whole: seed lines that are one output line\n"
          "  (a paragraph unbroken); running: running-header and 'Page N' lines left in the text.")
    for path in args.pdf:
        data = path.read_bytes()
        print(f"\n{path.name}: {page_count(data)} pages")
        for name, (fn, lib) in EXTRACTORS.items():
            if importlib.util.find_spec(lib) is None:
                continue
            words = len(fn(data).split())
            print(f"  {name:26} {page_count(data) / timed(fn, [data]):8.1f} pages/s {words:8} words")
    print("\nOther formats (our converters):")
    bench_others(seeds)
    print("\nLicences:")
    for dist in LIBRARIES:
        print(f"  {dist:14} {licence(dist)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
