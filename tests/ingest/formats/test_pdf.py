"""rag.ingest.formats.pdf on PDFs drawn here with fpdf2 (and the seeds rendered by eval/make_documents.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import ROOT, SEEDS
from fpdf import FPDF

from rag.errors import UnreadableFile
from rag.ingest.formats import convert as convert_any
from rag.ingest.formats.pdf import convert
from rag.ingest.load import parse

_spec = importlib.util.spec_from_file_location("make_documents", ROOT / "eval" / "make_documents.py")
make_documents = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_documents)

BODY = 11
GAP = object()  # a paragraph's worth of vertical space


def draw(*pages, header: str | None = None, footer: str | None = None, outline=(), **fpdf_args) -> bytes:
    """A PDF (Helvetica) with one page per argument. A page lists lines: a string (body text), GAP, or
    (text, size, bold). `header`/`footer` are printed on every page ("{n}" becomes the page number);
    `outline` is (page, level, title) bookmarks, placed at the top of their page."""
    pdf = FPDF(format="A4", **fpdf_args)
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(False)
    for n, lines in enumerate(pages, 1):
        pdf.add_page()
        for page, level, title in outline:
            if page == n:
                pdf.start_section(title, level)
        if header:
            pdf.set_font("Helvetica", "", 8)
            pdf.cell(0, 5, header.format(n=n), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
        for line in lines:
            if line is GAP:
                pdf.ln(3)
                continue
            text, size, bold = (line, BODY, False) if isinstance(line, str) else line
            pdf.set_font("Helvetica", "B" if bold else "", size)
            pdf.cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
        if footer:
            pdf.set_y(-15)
            pdf.set_font("Helvetica", "", 8)
            pdf.cell(0, 5, footer.format(n=n), align="C")
    return bytes(pdf.output())


def fill(text: str) -> list[str]:
    """`text` wrapped the way a typesetter would, to the body width of `draw`."""
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.set_font("Helvetica", "", BODY)
    return make_documents.wrap(pdf.get_string_width, text, pdf.epw - 2 * pdf.c_margin)


LOREM = ("Japan and the European Union share values such as freedom, democracy and the rule of law, and they "
         "cooperate closely on trade, security, climate change and the digital economy in many forums.")
OTHER = ("The second paragraph talks about something else entirely: ministers met in Brussels in June and "
         "agreed to hold the next summit in Tokyo, where they will sign a partnership on green energy.")


def test_text_order_and_paragraphs():
    one, two = fill(LOREM), fill(OTHER)
    assert len(one) > 1 and len(two) > 1
    ex = convert(draw(one + [GAP] + two), "a.pdf")
    assert ex.text == f"{LOREM}\n{OTHER}"
    assert ex.pages == (0,)


def test_without_spacing_a_paragraph_ends_where_the_next_word_would_have_fitted():
    links = "The agreement texts are at https://www.mofa.go.jp/policy/economy/fta/japan-eu-economic-partnership.html"
    lines = fill(links)
    assert lines[0] == "The agreement texts are at"  # a line that ends early: the link did not fit after it
    ex = convert(draw(fill(LOREM) + lines + fill(OTHER)), "a.pdf")
    assert ex.text.split("\n") == [LOREM, links, OTHER]


def test_headings_from_font_size_and_weight():
    page = [("Annual Report", 20, True), GAP, ("Trade and Investment", 15, True), *fill(LOREM),
            ("Bilateral agreements", BODY, True), *fill(OTHER), ("Outlook", 15, True), "Growth continues."]
    ex = convert(draw(page), "a.pdf")
    lines = ex.text.split("\n")
    assert lines == ["Annual Report", "Trade and Investment", LOREM, "Bilateral agreements", OTHER, "Outlook",
                     "Growth continues."]
    found = {ex.text[offset:].split("\n", 1)[0]: level for offset, level in ex.headings}
    assert found == {"Annual Report": 1, "Trade and Investment": 2, "Bilateral agreements": 3, "Outlook": 2}


def test_headings_from_the_outline_even_in_body_type():
    page = ["Overview", *fill(LOREM), "Details of the agreement", *fill(OTHER)]
    outline = [(1, 0, "Overview"), (1, 1, "Details of the agreement"), (1, 1, "A bookmark with no line")]
    ex = convert(draw(page, outline=outline), "a.pdf")
    assert ex.text.split("\n") == ["Overview", LOREM, "Details of the agreement", OTHER]
    assert ex.headings == ((0, 1.0), (len("Overview") + len(LOREM) + 2, 2.0))


def test_running_header_footer_and_page_numbers_removed():
    lines = fill(LOREM + " " + OTHER)
    pages = [lines[:2], lines[2:4], lines[4:]]
    ex = convert(draw(*pages, header="ACME Foreign Policy Review 2024", footer="Page {n} of 3"), "a.pdf")
    assert ex.text == f"{LOREM} {OTHER}"
    single = convert(draw(fill(LOREM), footer="- {n} -"), "b.pdf")  # one page: a lone number is still dropped
    assert single.text == LOREM


def test_numbered_headings_atop_pages_are_no_running_header():
    openings = ("It begins here.", "Then it goes on.", "And so it ends.")
    chapter = [[(f"Chapter {n}", 15, True), opening] for n, opening in enumerate(openings, 1)]
    pages = [page for n in range(3) for page in (chapter[n], [f"Page two of chapter {n + 1}."])]
    ex = convert(draw(*pages, header="Annual Review", footer="{n}"), "a.pdf")
    assert ex.text.split("\n")[:4] == ["Chapter 1", "It begins here.", "Page two of chapter 1.", "Chapter 2"]
    assert len(ex.text.split("\n")) == 9 and "Annual Review" not in ex.text


def test_hyphenated_words_rejoined_and_real_hyphens_kept():
    page = ["The inter-", "national order and the Asia-", "Pacific region, from 2025-", "2026 on."]
    ex = convert(draw(page), "a.pdf")
    assert ex.text == "The international order and the Asia-Pacific region, from 2025-2026 on."


def test_paragraph_across_a_page_break_is_one_line_and_pages_point_into_it():
    lines = fill(LOREM + " " + OTHER)
    k = next(i for i, line in enumerate(lines) if "second paragraph" in line)  # OTHER's first words: on page 2
    ex = convert(draw(lines[:k], lines[k:], [], ["Final words."]), "a.pdf")
    assert ex.text == f"{LOREM} {OTHER}\nFinal words."
    assert len(ex.pages) == 4 and list(ex.pages) == sorted(ex.pages)
    assert ex.pages[0] == 0 and ex.text[ex.pages[1]:].startswith(lines[k])
    assert ex.pages[2] == ex.pages[3] == ex.text.index("Final words.")  # the empty page 3 starts where 4 does
    doc = parse("a.pdf", ex.text, pages=ex.pages)
    assert doc.page_at(ex.text.index("The second paragraph")) == 2  # a sentence printed on page 2 cites page 2
    assert doc.page_at(ex.text.index("Japan and")) == 1 and doc.page_at(ex.text.index("Final")) == 4


def _encrypted() -> bytes:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.cell(0, 6, "confidential")
    return bytes(pdf.output())


def _drawing_only() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    return bytes(pdf.output())


def _image_only() -> bytes:
    from PIL import Image

    pdf = FPDF()
    pdf.add_page()
    pdf.image(Image.new("L", (60, 40), 128), x=20, y=20, w=120)
    return bytes(pdf.output())


def _numbered_scan() -> bytes:
    """Image-only pages whose only text is the page number a scanner's software printed."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=9)
    for n in range(1, 4):
        pdf.add_page()
        pdf.rect(20, 20, 150, 200, style="F")
        pdf.set_xy(100, 285)
        pdf.cell(text=f"Page {n}")
    return bytes(pdf.output())


def _no_pages() -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out, offsets = b"%PDF-1.4\n", []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, obj)
    xref = b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + (b"xref\n0 3\n0000000000 65535 f \n%strailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                  % (xref, len(out)))


@pytest.mark.parametrize(("make", "reason"), [
    (_encrypted, "encrypted (password-protected); decrypt it first"),
    (lambda: draw(fill(LOREM))[:900], "damaged or truncated PDF (PDFium: not in PDF format or corrupted)"),
    (_drawing_only, "no text layer: a scan? OCR is not supported"),
    (_image_only, "no text layer: a scan? OCR is not supported"),
    (_numbered_scan, "no text layer: a scan? OCR is not supported"),
    (_no_pages, "no pages (an empty PDF)"),
    (lambda: b"", "empty file (0 bytes)"),
    (lambda: b"%PDF-1.7\n\x00\x01garbage" * 20, "damaged or truncated PDF (PDFium: not in PDF format or corrupted)"),
], ids=["encrypted", "truncated", "drawing", "image", "numbered-scan", "no-pages", "empty", "garbage"])
def test_unreadable_files_say_why(make, reason):
    with pytest.raises(UnreadableFile) as err:
        convert(make(), "x.pdf")
    assert err.value.reason == reason and err.value.path == "x.pdf"


def test_readable_with_an_owner_password_only():
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner")  # restricts printing, not reading
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.cell(0, 6, "Open to all readers.")
    assert convert(bytes(pdf.output()), "a.pdf").text == "Open to all readers."


def test_dispatched_by_content_and_title_from_metadata():
    pdf_bytes = make_documents.render_pdf("Report 2024\nIntroduction\nThe text of the report.\n", running_header=False)
    ex = convert_any(pdf_bytes, "report.bin")
    assert ex.text == "Report 2024\nIntroduction\nThe text of the report." and ex.title == "Report 2024"


def test_pypdfium2_is_imported_only_when_a_pdf_is_read():
    code = "import sys, rag.ingest.formats.pdf, rag.ingest.load; print('pypdfium2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("seed", sorted(p.name for p in SEEDS.glob("*.txt")))
def test_seeds_round_trip(seed):
    """A seed printed as a PDF reads back as its own lines. The one thing a PDF cannot tell is a paragraph
    that ends on a full last line at the foot of a page: it is read as running on, so an output line may
    join seed lines, and only across a page break."""
    source = (SEEDS / seed).read_text(encoding="utf-8")
    want = [" ".join(line.split()) for line in source.split("\n") if line.strip()]
    plain = convert(make_documents.render_pdf(source), seed)
    marked = convert(make_documents.render_pdf(source, outline=True), seed)
    assert marked.text == plain.text and marked.headings == plain.headings  # outline and fonts agree
    got, pos, i = plain.text.split("\n"), 0, 0
    for line in got:
        j = i + 1
        while line != " ".join(want[i:j]) and j < len(want) and len(" ".join(want[i:j])) < len(line):
            j += 1
        assert line == " ".join(want[i:j]), f"line {i + 1} of {seed}"
        if j > i + 1:  # joined lines: only where a page break falls inside
            assert any(pos < p < pos + len(line) for p in plain.pages), f"line {i + 1} of {seed}"
        pos, i = pos + len(line) + 1, j
    assert i == len(want) and len(got) >= len(want) - 1
    headings = {plain.text[o:].split("\n", 1)[0] for o, _ in plain.headings}
    title, structure = make_documents.structure(source)
    assert headings == {title} | {line for level, line in structure if level}
    doc, seed_doc = parse(seed, plain.text, dict(plain.headings), pages=plain.pages), parse(seed, source)
    assert {b.heading for b in doc.blocks} == {b.heading for b in seed_doc.blocks}
    assert doc.page_at(len(plain.text) - 1) == len(plain.pages) > 1
