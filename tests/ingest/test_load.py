"""rag.ingest.load: titles, years, heading paths, footnotes, captions, continuations, and unreadable files."""

from __future__ import annotations

import pytest

from conftest import SEED_2021, SEED_2025, SEEDS, write_files
from rag.errors import DocumentError
from rag.ingest.formats import supported
from rag.ingest.load import (
    MB, UnreadableFile, check_size, decode_text, list_documents, list_files, load_document, parse, read_text,
)


def load_all(folder):
    """Every readable document under `folder` (as the build reads them), and the files it could not read."""
    docs, unreadable = [], []
    for path in list_files(folder):
        try:
            docs.append(parse(path.relative_to(folder).as_posix(), read_text(path)))
        except DocumentError as exc:
            unreadable.append(str(exc))
    return docs, unreadable


@pytest.fixture(scope="module")
def seeds():
    """Both seed documents, parsed once, by file name."""
    return {p.name: parse(p.name, read_text(p)) for p in sorted(SEEDS.glob("*.txt"))}


def block_with(document, needle: str):
    """The one block whose text contains `needle`."""
    found = [b for b in document.blocks if needle in document.text[b.start:b.end]]
    assert len(found) == 1, f"{needle!r} is in {len(found)} blocks"
    return found[0]


def text_of(document, block) -> str:
    return document.text[block.start:block.end]


# ---- the seeds' structure ----

def test_seed_titles_and_years(seeds):
    assert seeds[SEED_2021].title == "Diplomatic Bluebook 2021"
    assert seeds[SEED_2021].year == 2021
    assert seeds[SEED_2025].title == "Diplomatic Bluebook 2025"
    assert seeds[SEED_2025].year == 2025


def test_title_line_is_not_a_block(seeds):
    for d in seeds.values():
        assert all("Diplomatic Bluebook" not in text_of(d, b) for b in d.blocks)
        assert all(b.heading[0] == d.title for b in d.blocks)


def test_block_spans_are_trimmed_ordered_and_disjoint(seeds):
    for d in seeds.values():
        assert d.blocks
        previous_end = 0
        for b in d.blocks:
            text = text_of(d, b)
            assert text and text == text.strip()
            assert b.start >= previous_end
            previous_end = b.end


def test_numbered_section_headings(seeds):
    d = seeds[SEED_2025]
    b = block_with(d, "The European Union (EU), the North Atlantic Treaty Organization (NATO),(1)")
    assert b.heading == (
        "Diplomatic Bluebook 2025", "Chapter 2", "Japan's Foreign Policy by Region", "Section 5 Europe",
        "1 Overview", "<The Importance of Cooperation with Europe, Which Shares Values and Principles>",
    )


def test_parenthesised_number_headings_replace_their_siblings(seeds):
    d = seeds[SEED_2021]
    osce = "(2) Cooperation with the Organization for Security and Co-operation in Europe (OSCE)"
    nato = "(1) Cooperation with the North Atlantic Treaty Organization (NATO)"
    b = block_with(d, "OSCE is a regional security organization with 57 participating States")
    assert b.heading == (
        "Diplomatic Bluebook 2021", "Chapter 2", "Japan's Foreign Policy by Region",
        "3 Collaboration with European Regional Institutions, and the Asia-Europe Meeting (ASEM)", osce,
    )
    assert block_with(d, "As a military alliance that aims at providing").heading[-1] == nato
    coe = block_with(d, "The CoE is an international organization comprising 47 member states")
    assert coe.heading[-1] == "(3) Cooperation with the Council of Europe (CoE)"
    assert osce not in coe.heading and nato not in coe.heading


def test_angle_bracket_headings(seeds):
    d = seeds[SEED_2025]
    heading = "<Russia's Aggression Against Ukraine and Europe>"
    for needle in ("In response to Russia's aggression against Ukraine, which began in February 2022",
                   "announced the provision of Mirage 2000-5 fighter jets"):
        b = block_with(d, needle)
        assert b.heading[-1] == heading
        assert "<The Importance of Cooperation with Europe, Which Shares Values and Principles>" not in b.heading
    later = block_with(d, "In July, during his visit to Washington, D.C., Prime Minister Kishida")
    assert later.heading[-1] == "<Multilayered, Attentive Diplomacy with Europe>"
    assert heading not in later.heading


def test_square_bracket_headings(seeds):
    d = seeds[SEED_2021]
    for country in ("The Netherlands: In May", "Belgium: In response", "Luxembourg: In May"):
        b = block_with(d, country)
        assert b.heading[-2:] == ("Other European Regions", "[Benelux countries]")
        assert "Nordic countries" not in b.heading
    latvia = block_with(d, "Latvia: Japan and Latvia concurred")
    assert latvia.heading[-1] == "[Baltic countries]" and "[Benelux countries]" not in latvia.heading
    denmark = block_with(d, "Denmark: In August")
    assert denmark.heading[-2:] == ("Other European Regions", "Nordic countries")
    guam = block_with(d, "GUAM was established by four countries")
    assert guam.heading[-1] == "[GUAM (Georgia, Ukraine, Azerbaijan, Moldova)]"


def test_no_heading_line_inside_a_block(seeds):
    for d in seeds.values():
        headings = {h for b in d.blocks for h in b.heading[1:]}
        for b in d.blocks:
            lines = set(text_of(d, b).split("\n"))
            assert not lines & headings


def test_footnote_is_one_block(seeds):
    d = seeds[SEED_2025]
    b = block_with(d, "European Peace Facility: System established in March 2021")
    assert b.kind == "footnote"
    text = text_of(d, b)
    assert text.startswith("- (2) European Peace Facility")
    assert text.endswith("strengthening international security.")
    assert "\n" not in text  # neither the paragraph above nor footnote (3) below
    three = block_with(d, "- (3) EU Military Assistance Mission")
    assert three.kind == "footnote" and three.start > b.end


def test_footnote_keeps_its_url_line(seeds):
    d = seeds[SEED_2025]
    b = block_with(d, "- (1) NATO: North Atlantic Treaty Organization.")
    assert b.kind == "footnote"
    assert text_of(d, b).endswith("details:\nhttps://www.mofa.go.jp/region/europe/nato/index.html")
    # the URL is in no other block
    assert [x for x in d.blocks if "https://www.mofa.go.jp" in text_of(d, x)] == [b]


def test_numbered_footnote_without_parentheses(seeds):
    d = seeds[SEED_2021]
    b = block_with(d, "- 1 Cambodia (host nation)")
    assert b.kind == "footnote"
    assert "The member states of the Asia-Europe Meeting" not in text_of(d, b)


def test_photo_caption_is_kept_with_the_following_paragraph(seeds):
    d = seeds[SEED_2021]
    caption = "(December 10, Singapore; Photo: ASEF)"
    blocks = [b for b in d.blocks if caption in text_of(d, b)]
    assert len(blocks) == 2  # the caption appears twice in the file, each kept with its own paragraph
    first, second = blocks
    assert all(b.kind == "caption" for b in blocks)
    assert text_of(d, first).startswith(caption + "\nThe member states of the Asia-Europe Meeting (ASEM)")
    assert text_of(d, first).endswith("international health, and human rights.")
    assert text_of(d, second).startswith(caption + "\nASEM celebrates the 25th anniversary")
    # the caption never stands alone
    assert all(text_of(d, b) != caption for b in d.blocks)


def test_continuation_line_joins_its_paragraph(seeds):
    d = seeds[SEED_2021]
    b = block_with(d, "Iceland: In May, Foreign Minister Motegi")
    text = text_of(d, b)
    assert b.kind == "paragraph"
    assert "\nThey also exchanged views on the promotion of women's empowerment" in text
    assert text.endswith("to strengthen bilateral relations.")
    # ...but the next country, on its own line without a continuation word, is a new block
    assert "Sweden:" not in text


# ---- other inputs ----

def test_markdown_headings():
    text = "# Guide\n\nIntro text.\n\n## Setup\n\nInstall it.\n\n### Linux\n\nUse apt.\n\n## Usage\n\nRun it.\n"
    d = parse("guide.md", text)
    assert d.title == "Guide" and d.year is None
    got = {text[b.start:b.end]: b.heading for b in d.blocks}
    assert got == {
        "Intro text.": ("Guide",),
        "Install it.": ("Guide", "Setup"),
        "Use apt.": ("Guide", "Setup", "Linux"),
        "Run it.": ("Guide", "Usage"),
    }


def test_toy_markdown_file(toy_docs):
    docs, warnings = load_all(toy_docs)
    fish = next(d for d in docs if d.doc == "fish.md")
    assert fish.title == "Fish"
    assert [b.heading for b in fish.blocks] == [("Fish", "Habitat"), ("Fish", "Food")]


def test_title_year_from_title_line(toy_docs):
    docs, _ = load_all(toy_docs)
    years = {d.doc: d.year for d in docs}
    assert years["report_2021.txt"] == 2021
    assert years["report_2022.txt"] == 2022
    assert years["cat.txt"] is None


def test_plain_text_without_headings():
    text = ("This file has no title line, it just starts.\n\n"
            "Second paragraph is here,\nwrapped onto a second line.\n\n"
            "Third and last paragraph.\n")
    d = parse("field_notes.txt", text)
    assert d.title == "field notes"  # the file name, since the first line is a sentence
    assert d.year is None
    assert [text[b.start:b.end] for b in d.blocks] == [
        "This file has no title line, it just starts.",
        "Second paragraph is here,\nwrapped onto a second line.",
        "Third and last paragraph.",
    ]
    assert all(b.kind == "paragraph" and b.heading == ("field notes",) for b in d.blocks)


def test_crlf_newlines(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "win.txt").write_bytes(b"Windows Report 2020\r\n\r\nFirst paragraph.\r\nThey continue here.\r\n\r\nSecond one.\r\n")
    (docs, warnings) = load_all(folder)
    assert warnings == []
    (d,) = docs
    assert "\r" not in d.text
    assert d.title == "Windows Report 2020" and d.year == 2020
    assert [d.text[b.start:b.end] for b in d.blocks] == ["First paragraph.\nThey continue here.", "Second one."]


def test_empty_and_blank_files(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.txt").write_text("\n   \n\n", encoding="utf-8")
    docs, warnings = load_all(folder)
    assert warnings == []
    assert sorted(d.doc for d in docs) == ["blank.txt", "empty.txt"]
    assert all(d.blocks == () and d.year is None for d in docs)


def test_binary_and_undecodable_are_refused_naming_the_file_and_latin1_is_read(toy_docs):
    (toy_docs / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (toy_docs / "garbled.txt").write_bytes(bytes(range(128, 256)) * 2)
    (toy_docs / "latin1.txt").write_bytes("Caf\xe9 au lait\n\nd\xe9j\xe0 vu.\n".encode("latin-1"))
    docs, warnings = load_all(toy_docs)
    assert sorted(d.doc for d in docs) == sorted(
        ["cat.txt", "dog.txt", "animals/bird.txt", "fish.md", "latin1.txt", "report_2021.txt", "report_2022.txt"])
    assert len(warnings) == 2
    (binary,) = [w for w in warnings if "image.txt" in w]
    (garbled,) = [w for w in warnings if "garbled.txt" in w]
    assert "binary" in binary and "not text in any encoding" in garbled
    assert all("\n" not in w for w in warnings)
    assert next(d for d in docs if d.doc == "latin1.txt").text == "Caf\xe9 au lait\n\nd\xe9j\xe0 vu.\n"


def test_read_text_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(bytes(range(128, 256)))
    with pytest.raises(DocumentError, match="bad.txt"):
        read_text(bad)


def test_list_files_is_recursive_sorted_and_skips_hidden(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    for rel in ("z.txt", "a.md", "b/c.txt", "NOTES.TXT", ".hidden.txt", ".git/x.txt", "data.csv", "doc.pdf"):
        (tmp_path / rel).write_text("x", encoding="utf-8")
    names = [p.relative_to(tmp_path).as_posix() for p in list_files(tmp_path)]
    assert names == ["NOTES.TXT", "a.md", "b/c.txt", "data.csv", "doc.pdf", "z.txt"]  # every type: a build says why


def test_list_documents_adds_extra_folders_under_their_prefix(tmp_path):
    write_files(tmp_path / "docs", {"a.txt": "x", "uploads/old.txt": "x", "b/c.txt": "x"})
    write_files(tmp_path / "up", {"new.txt": "x", "d/e.md": "x", ".hidden.txt": "x"})
    found = list_documents(tmp_path / "docs", {"uploads": tmp_path / "up", "gone": tmp_path / "missing"})
    assert [(doc, path.relative_to(tmp_path).as_posix()) for doc, path in found] == [
        ("a.txt", "docs/a.txt"), ("b/c.txt", "docs/b/c.txt"),
        ("uploads/d/e.md", "up/d/e.md"), ("uploads/new.txt", "up/new.txt")]


def test_missing_folder(tmp_path):
    with pytest.raises(DocumentError, match="does not exist"):
        load_all(tmp_path / "nowhere")


def test_file_instead_of_folder(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("hello", encoding="utf-8")
    with pytest.raises(DocumentError, match="not a folder"):
        load_all(f)


# ---- captions next to footnotes and headings ----


@pytest.mark.parametrize("text", [
    pytest.param("Title line\n\nSome text here.\n\n(Photo: ASEF)\n- (1) A footnote here.\nA paragraph follows here.\n", id="caption-then-footnote"),
    pytest.param("Title line\n\nSome text here.\n\n(Photo: ASEF)\nNew Section\nBody under the new section.\n", id="caption-then-heading"),
    pytest.param("Title line\n\nSome text here.\n\n(Photo: ASEF)\nA paragraph follows here.\n", id="caption-then-paragraph"),
])
def test_caption_blocks_do_not_overlap_or_swallow_headings(text):
    d = parse("x.txt", text)
    spans = [(b.start, b.end) for b in d.blocks]
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        assert e1 <= s2, f"blocks overlap: {text[s1:e1]!r} and {text[s2:e2]!r}"
    headings = {h for b in d.blocks for h in b.heading[1:]}
    for b in d.blocks:
        assert not set(text[b.start:b.end].split("\n")) & headings, f"heading inside {text[b.start:b.end]!r}"
    caption = [b for b in d.blocks if text[b.start:b.end].startswith("(Photo: ASEF)")]
    assert len(caption) == 1 and caption[0].kind == "caption"


def test_utf8_bom_markdown_title(tmp_path):
    (tmp_path / "fish.md").write_bytes("\ufeff# Fish\n\nFish swim.\n".encode("utf-8"))
    (d,), _ = load_all(tmp_path)
    assert d.title == "Fish"


# ---- why a file is no document: the reason apart from the path, and the size limit ----

@pytest.mark.parametrize("data, reason", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "looks binary (NUL bytes), not a text document"),
    (bytes(range(128, 256)), "not text in any encoding charset-normalizer knows (not UTF-8 at byte 0: b'\\x80')"),
    (b"PK\x03\x04 not really", "unsupported file type (.zip); supported: " + supported()),
])
def test_unreadable_file_carries_its_reason_apart_from_the_path(tmp_path, data, reason):
    path = tmp_path / ("bad.zip" if data.startswith(b"PK") else "bad.txt")
    path.write_bytes(data)
    calls = [lambda: read_text(path)] + ([] if data.startswith(b"PK") else [lambda: decode_text(data, path)])
    for call in calls:
        with pytest.raises(UnreadableFile) as info:
            call()
        assert isinstance(info.value, DocumentError)
        assert info.value.reason == reason and info.value.path == str(path)
        assert str(info.value) == f"{path}: {reason}"


def test_decode_text_is_read_text(tmp_path):
    path = tmp_path / "win.txt"
    path.write_bytes(b"A\r\nB\rC\n")
    assert decode_text(path.read_bytes(), path) == read_text(path) == "A\nB\nC\n"


def test_check_size_names_the_file_its_size_and_the_limit():
    check_size("docs/big.txt", 10 * MB, 10 * MB)  # at the limit: fine
    check_size("docs/big.txt", 10**12, None)  # no limit
    with pytest.raises(UnreadableFile) as info:
        check_size("docs/big.txt", 12 * MB + 1, 10 * MB)
    message = str(info.value)
    assert message.startswith("docs/big.txt: 12.0 MB (12,582,913 bytes) is over the limit of 10 MB (10,485,760 bytes)")
    assert "--max-file-mb" in message and "\n" not in message
    assert info.value.reason == message.removeprefix("docs/big.txt: ")


# ---- headings and pages a converter declares ----

def test_declared_headings_and_pages_shape_the_document():
    text = "Annual Report 2023\nOverview\nThe year went well.\nShort line\nMore text follows here.\n"
    overview, short = text.index("Overview"), text.index("Short line")
    d = parse("r.pdf", text, {overview: 1.0, short: 2.0}, pages=(0, text.index("More")))
    assert (d.title, d.year, d.pages) == ("Annual Report 2023", 2023, (0, text.index("More")))
    assert [(text[b.start:b.end], b.heading) for b in d.blocks] == [
        ("The year went well.", ("Annual Report 2023", "Overview")),
        ("More text follows here.", ("Annual Report 2023", "Overview", "Short line"))]
    assert [d.page_at(b.start) for b in d.blocks] == [1, 2]


def test_a_declared_heading_wins_over_the_footnote_pattern_and_title_falls_back():
    text = "A first paragraph, not a title.\n- 1 Scope of this note\nBody text of the note.\n"
    d = parse("n.docx", text, {text.index("- 1"): 1.0}, title="Note title")
    assert d.title == "Note title" and d.blocks[-1].heading == ("Note title", "- 1 Scope of this note")


def test_load_document_reads_any_encoding_and_names_the_file():
    d = load_document("x/l.txt", "Caf\xe9\n\nd\xe9j\xe0 vu.\n".encode("latin-1"))
    assert d.doc == "x/l.txt" and d.text == "Caf\xe9\n\nd\xe9j\xe0 vu.\n" and d.pages == ()
    with pytest.raises(UnreadableFile, match="^shown name: unsupported file type"):
        load_document("a.xyz", b"hello", "shown name")


def test_a_hash_line_is_a_markdown_heading_only_in_a_text_file():
    """In a PDF, Word file or web page "# ..." is a comment in a code listing (a real PDF's "# This file was
    automatically generated ... DO NOT EDIT!" had taken every later section under it), not a heading."""
    text = "Guide\nSetup\nInstall it with the script below.\n# run this as root\nmake install\nThen restart.\n"
    setup = text.index("Setup")
    pdf = parse("g.pdf", text, {setup: 1.0}, markdown=False)
    assert [b.heading for b in pdf.blocks] == [("Guide", "Setup")] * len(pdf.blocks)
    assert any(text[b.start:b.end].startswith("# run this as root") for b in pdf.blocks)
    md = parse("g.md", text, {setup: 1.0})  # the same lines in a .md: a heading, as before
    assert md.blocks[-1].heading == ("Guide", "run this as root")
    page = (b"<html><body><article><h1>Guide</h1><h2>Setup</h2><p>Install it with the script below.</p>"
            b"<p># run this as root</p><p>make install</p></article></body></html>")
    doc = load_document("g.html", page)
    assert all("run this as root" not in heading for b in doc.blocks for heading in b.heading)
    assert load_document("g.md", text.encode()).blocks[-1].heading[-1] == "run this as root"
