"""rag.ingest.formats.docx: a Word body as seed-style lines (headings, lists, tables, tracked changes), no
headers or footers, and damaged files refused in one line; the first seed survives a round trip."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest
from conftest import SEED_2025, SEEDS
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls

from rag.errors import UnreadableFile
from rag.ingest.formats import convert as convert_any
from rag.ingest.formats.docx import convert
from rag.ingest.load import load_document, parse


def saved(document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def report() -> bytes:
    """A report with a Title, headings, a broken line, an empty paragraph, lists, a data table, a layout
    table, and a running header and footer."""
    d = docx.Document()
    d.core_properties.title = "Annual Report (properties)"
    d.sections[0].header.paragraphs[0].text = "RUNNING HEADER"
    d.sections[0].footer.paragraphs[0].text = "Page 1 of 9"
    d.add_paragraph("Annual Report 2024", style="Title")
    d.add_heading("Introduction", level=1)
    p = d.add_paragraph("The first line")
    p.add_run().add_break()
    p.add_run("and the second\tline of one paragraph.")
    d.add_paragraph("")
    d.add_paragraph("   ")
    d.add_heading("Scope", level=2)
    d.add_paragraph("Apples are red.", style="List Bullet")
    d.add_paragraph("Pears are green.", style="List Number")
    data = d.add_table(rows=3, cols=3)
    for r, row in enumerate([("Country", "Year", "Event"), ("Italy", "2024", "Summit"), ("France", "", "Visit")]):
        for c, value in enumerate(row):
            data.cell(r, c).text = value
    layout = d.add_table(rows=1, cols=2)
    layout.cell(0, 0).text = "Left column, first paragraph."
    layout.cell(0, 0).add_paragraph("Left column, second paragraph.")
    layout.cell(0, 1).text = "Right column."
    d.add_paragraph("Closing words.")
    return saved(d)


LINES = [
    "Annual Report 2024",
    "Introduction",
    "The first line and the second line of one paragraph.",
    "Scope",
    "• Apples are red.",
    "• Pears are green.",
    "| Country | Year | Event |",
    "| Italy | 2024 | Summit |",
    "| France | Visit |",
    "Left column, first paragraph.",
    "Left column, second paragraph.",
    "Right column.",
    "Closing words.",
]


def heading_lines(ex) -> list[tuple[str, float]]:
    return [(ex.text[at:ex.text.index("\n", at)], level) for at, level in ex.headings]


def test_body_paragraphs_in_order_as_seed_lines():
    ex = convert(report(), "report.docx")
    assert ex.text == "\n".join(LINES) + "\n"
    assert "RUNNING HEADER" not in ex.text and "Page 1" not in ex.text
    assert ex.pages == ()


def test_title_is_level_1_and_headings_sit_under_it():
    ex = convert(report(), "report.docx")
    assert heading_lines(ex) == [("Annual Report 2024", 1.0), ("Introduction", 2.0), ("Scope", 3.0)]
    assert ex.title == "Annual Report (properties)"


def test_without_a_title_heading_n_is_level_n():
    d = docx.Document()
    d.add_heading("Overview", level=1)
    d.add_paragraph("Text.")
    d.add_heading("Details", level=3)
    d.add_paragraph("More text.")
    ex = convert(saved(d), "a.docx")
    assert heading_lines(ex) == [("Overview", 1.0), ("Details", 3.0)]
    assert ex.title is None


def test_styles_based_on_headings_and_outline_levels_are_headings():
    d = docx.Document()
    from docx.enum.style import WD_STYLE_TYPE

    custom = d.styles.add_style("Chapter Head", WD_STYLE_TYPE.PARAGRAPH)
    custom.base_style = d.styles["Heading 2"]
    d.add_paragraph("A custom heading", style="Chapter Head")
    outlined = d.add_paragraph("An outline-level paragraph")
    outlined._p.get_or_add_pPr().append(parse_xml(f'<w:outlineLvl {nsdecls("w")} w:val="0"/>'))
    body = d.add_heading("Body text styled as a heading but set to body level", level=1)
    body._p.get_or_add_pPr().append(parse_xml(f'<w:outlineLvl {nsdecls("w")} w:val="9"/>'))
    ex = convert(saved(d), "a.docx")
    assert heading_lines(ex) == [("A custom heading", 2.0), ("An outline-level paragraph", 1.0)]


def test_tracked_changes_hidden_text_content_controls_and_table_of_contents():
    d = docx.Document()
    p = d.add_paragraph("Kept ")
    p._p.append(parse_xml(f'<w:ins {nsdecls("w")} w:id="1" w:author="a"><w:r><w:t>inserted</w:t></w:r></w:ins>'))
    p._p.append(parse_xml(f'<w:del {nsdecls("w")} w:id="2" w:author="a"><w:r><w:delText>deleted</w:delText></w:r>'
                          "</w:del>"))
    p._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:rPr><w:vanish/></w:rPr><w:t> hidden</w:t></w:r>'))
    p._p.append(parse_xml(f'<w:hyperlink {nsdecls("w")}><w:r><w:t> and linked</w:t></w:r></w:hyperlink>'))
    p._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:t xml:space="preserve"> text</w:t><w:noBreakHyphen/>'
                          "<w:t>here.</w:t></w:r>"))
    body = d.element.body
    body.insert(0, parse_xml(
        f'<w:sdt {nsdecls("w")}><w:sdtPr><w:docPartObj><w:docPartGallery w:val="Table of Contents"/>'
        '</w:docPartObj></w:sdtPr><w:sdtContent><w:p><w:r><w:t>Contents</w:t></w:r></w:p>'
        '<w:p><w:r><w:t>Introduction</w:t><w:tab/><w:t>3</w:t></w:r></w:p></w:sdtContent></w:sdt>'))
    body.insert(1, parse_xml(
        f'<w:sdt {nsdecls("w")}><w:sdtPr/><w:sdtContent><w:p><w:r><w:t>Inside a content control.</w:t></w:r>'
        '</w:p></w:sdtContent></w:sdt>'))
    ex = convert(saved(d), "a.docx")
    assert ex.text == "Inside a content control.\nKept inserted and linked text-here.\n"


def test_a_row_is_a_line_merged_cells_once_a_lone_cell_a_paragraph():
    d = docx.Document()
    t = d.add_table(rows=4, cols=3)
    t.cell(0, 0).merge(t.cell(0, 1)).text = "Spanning header"
    t.cell(0, 2).text = "Right"
    t.cell(1, 0).text, t.cell(1, 1).text, t.cell(1, 2).text = "a", "b", "c"
    t.cell(2, 0).merge(t.cell(3, 0)).text = "Tall"
    t.cell(2, 1).text, t.cell(3, 1).text = "upper", "lower"
    t2 = d.add_table(rows=1, cols=1)
    t2.cell(0, 0).text = "A note in a box."
    assert convert(saved(d), "a.docx").text == (
        "| Spanning header | Right |\n| a | b | c |\n| Tall | upper |\nlower\nA note in a box.\n")


@pytest.mark.parametrize("text", ["", "   "], ids=["empty", "blank"])
def test_a_document_with_no_text(text):
    d = docx.Document()
    d.add_paragraph(text)
    d.sections[0].header.paragraphs[0].text = "Only a header has words"
    with pytest.raises(UnreadableFile) as err:
        convert(saved(d), "empty.docx")
    assert str(err.value) == "empty.docx: no text"


def rezipped(data: bytes, change) -> bytes:
    """`data` re-zipped with `change(name, bytes)` applied to each member (None drops it)."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            if (member := change(name, src.read(name))) is not None:
                z.writestr(name, member)
    return out.getvalue()


DAMAGED = {
    "truncated": lambda d: d[: len(d) // 2],
    "not-a-zip": lambda d: b"PK\x03\x04" + b"junk" * 50,
    "empty-file": lambda d: b"",
    "no-document-part": lambda d: rezipped(d, lambda n, b: None if n == "word/document.xml" else b),
    "broken-xml": lambda d: rezipped(d, lambda n, b: b[: len(b) // 2] if n == "word/document.xml" else b),
    "broken-styles": lambda d: rezipped(d, lambda n, b: b"<w:styles" if n == "word/styles.xml" else b),
    "no-content-types": lambda d: rezipped(d, lambda n, b: None if n == "[Content_Types].xml" else b),
    "corrupt-bytes": lambda d: d[:2000] + bytes(200) + d[2200:],
    "encrypted": lambda d: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
}


@pytest.mark.parametrize("damage", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_file_is_refused_in_one_line(damage):
    with pytest.raises(UnreadableFile) as err:
        convert(damage(report()), "broken.docx")
    assert err.value.path == "broken.docx"
    assert err.value.reason.startswith("damaged Word file (") and err.value.reason.endswith(")")
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)


def test_convert_and_load_dispatch_word_files():
    assert convert_any(report(), "report.docx").text == "\n".join(LINES) + "\n"
    document = load_document("docs/report.docx", report())
    assert document.title == "Annual Report 2024" and document.year == 2024
    scope = [document.text[b.start:b.end] for b in document.blocks if b.heading[-1] == "Scope"]
    assert scope[0] == "• Apples are red.\n• Pears are green."  # the list is one block
    assert scope[1].startswith("| Country | Year | Event |\n| Italy | 2024 | Summit |\n| France | Visit |")
    cited = "\n".join(document.text[b.start:b.end] for b in document.blocks)
    assert all(line in cited for line in LINES[2:] if line != "Scope")  # no short row was taken for a heading


# The first seed, written as Word would hold it: Title, Heading N for the lines parse takes as headings.

def seed_outline() -> tuple[str, list[str], dict[str, int]]:
    text = (SEEDS / SEED_2025).read_text(encoding="utf-8")
    depth: dict[str, int] = {}
    for block in parse(SEED_2025, text).blocks:
        for n, name in enumerate(block.heading[1:], 1):
            depth.setdefault(name, n)
    return text, [line for line in text.split("\n") if line.strip()], depth


def test_the_first_seed_round_trips():
    text, lines, depth = seed_outline()
    d = docx.Document()
    d.add_paragraph(lines[0], style="Title")
    for line in lines[1:]:
        d.add_heading(line, level=depth[line]) if line in depth else d.add_paragraph(line)
    ex = convert(saved(d), "seed.docx")

    assert ex.text.split("\n")[:-1] == [" ".join(line.split()) for line in lines]
    assert [name for name, _ in heading_lines(ex)] == [lines[0], *depth]
    assert [level for _, level in heading_lines(ex)] == [1.0, *(n + 1.0 for n in depth.values())]
    seed, back = parse(SEED_2025, text), parse("seed.docx", ex.text, dict(ex.headings), pages=ex.pages, title=ex.title)
    assert (back.title, back.year) == (seed.title, seed.year)
    assert [(b.heading, b.kind) for b in back.blocks] == [(b.heading, b.kind) for b in seed.blocks]
    assert [back.text[b.start:b.end] for b in back.blocks] == [seed.text[b.start:b.end] for b in seed.blocks]
