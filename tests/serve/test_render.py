"""rag.serve.render: what a person reads. Question and document text never reaches the page as HTML,
cited sentences are marked at their offsets, and the JSON and terminal shapes carry every field.
(The rendering part of the old tests of rag/ui.py, plus the shapes the CLI and the API share.)"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

from rag.serve import render
from rag.types import Answer, Citation, Passage

HTML_BITS = ("<script", "<img", "<b>", "<i>", "<u>", "<x>")
PARA = "First sentence. The <b>bold</b> & <script>alert(1)</script> claim. Last one."


def tags_removed(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def make_answer(abstained: bool = False, question: str = "What is the claim?", original: str = "") -> Answer:
    p = Passage(doc="evil <x>.md", start=100, end=100 + len(PARA), text=PARA,
                heading=("Title <i>T</i> 2024", "Part & <u>1</u>", "<Sub heading>"),
                title="Title <i>T</i> 2024", year=2024, score=0.123456, line=7)
    other = Passage(doc="other.txt", start=0, end=22, text="Other <img src=x> text", heading=("Other",),
                    title="Other", year=None, score=0.01, line=1)
    s = PARA.index("The <b>")
    e = PARA.index(" Last")
    cit = Citation(1, p.doc, p.start + s, p.start + e, PARA[s:e], p)
    if abstained:
        return Answer.abstain(question, reason="no sentence is about the claim", original_question=original or question,
                              passages=(p, other))
    return Answer.cited(question, f"{PARA[s:e]} [1]", (cit,), original_question=original or question,
                        passages=(p, other), score=0.5)


# -- highlighting and the Sources panel --------------------------------------------------------

def test_highlight_splits_at_offsets_and_escapes_each_piece():
    s, e = PARA.index("The <b>"), PARA.index(" Last")
    out = render.highlight(PARA, [(s, e, 1)])
    assert out.count("<mark") == 1
    marked = re.search(r"<mark[^>]*>(.*?)</mark>", out).group(1)
    assert html.unescape(marked) == PARA[s:e]
    assert "&lt;script&gt;" in marked and "<script" not in out and "<b>" not in out
    assert html.unescape(re.sub(r"<sup[^>]*>.*?</sup>", "", out).replace('<mark data-n="1">', "")
                         .replace("</mark>", "")) == PARA


def test_highlight_clips_and_skips_overlaps():
    text = "abc def ghi"
    out = render.highlight(text, [(4, 7, 1), (5, 9, 2), (8, 99, 3), (-5, 1, 4)])
    assert re.findall(r"<mark[^>]*>(.*?)</mark>", out) == ["a", "def", "ghi"]
    assert render.highlight("a<b", []) == "a&lt;b"


def test_sources_panel_shows_citation_details_escaped():
    out = render.sources_html(make_answer())
    for bit in HTML_BITS:
        assert bit not in out
    assert "<mark" in out and "</mark>" in out
    assert "Title &lt;i&gt;T&lt;/i&gt; 2024" in out  # title (its year is already in it)
    assert "Part &amp; &lt;u&gt;1&lt;/u&gt; › &lt;Sub heading&gt;" in out  # heading path below the title
    assert "line 7" in out and "score 0.1235" in out and "evil &lt;x&gt;.md" in out
    assert "[1]" in out
    # the whole paragraph is there, and the other passage is in a collapsed <details>
    assert PARA in tags_removed(out).replace("[1]", "")
    details = out[out.index("<details"):]
    assert details.startswith('<details class="src-more">') and "Other retrieved passages (1)" in details
    assert "Other &lt;img src=x&gt; text" in details


def test_sources_panel_gives_the_line_of_the_cited_sentence():
    text = "Line one.\nLine two is cited.\nLine three."
    p = Passage(doc="d.txt", start=50, end=50 + len(text), text=text, heading=("D",), title="D", line=4)
    s = text.index("Line two")
    citation = Citation(1, "d.txt", 50 + s, 50 + s + 18, text[s:s + 18], p)
    answer = Answer.cited("q", "Line two is cited. [1]", (citation,), original_question="q", passages=(p,))
    assert answer.citations[0].line == 5
    assert "line 5" in render.sources_html(answer)


def test_sources_panel_for_an_abstention_opens_the_closest_passages():
    out = render.sources_html(make_answer(abstained=True))
    assert "The documents do not answer this." in out
    assert '<details class="src-more" open>' in out and "Closest passages (2)" in out
    assert "<mark" not in out
    for bit in HTML_BITS:
        assert bit not in out
    assert render.sources_html(None) == render.EMPTY_SOURCES
    empty = render.sources_html(Answer.abstain("q", reason="no passage matched", original_question="q"))
    assert "No passage matched." in empty and "<details" not in empty


def test_year_is_shown_when_the_title_lacks_it():
    p = Passage(doc="d.txt", start=0, end=4, text="Text", heading=("Report",), title="Report", year=2021)
    assert render.doc_label(p) == "Report (2021)"
    assert render.heading_path(p) == ""
    untitled = Passage(doc="sub/notes_x.md", start=0, end=4, text="Text", heading=("Top", "Part"), title="")
    assert render.doc_label(untitled) == "notes_x" and render.heading_path(untitled) == "Part"


def test_message_html_is_escaped():
    out = render.message_html("k of '<b>' is not a whole number", "warn")
    assert out.startswith('<div class="src-warn">') and out.endswith("</div>") and "<b>" not in out
    assert tags_removed(out) == "k of '<b>' is not a whole number"


# -- chat Markdown -----------------------------------------------------------------------------

def test_answer_markdown_escapes_and_marks_citations():
    md = render.answer_markdown(make_answer(question="What is the claim (standalone)?", original="And the claim?"))
    assert md.startswith("*Read as: What is the claim (standalone)?*")
    assert "**\\[1\\]**" in md
    assert "<script" not in md and "<b>" not in md and "&lt;script&gt;" in md
    assert "Read as" not in render.answer_markdown(make_answer())
    only_and = render.answer_markdown(make_answer(question="What did France say?", original="And what did France say?"))
    assert "Read as" not in only_and  # dropping a leading "And" is not worth showing


def test_answer_markdown_for_an_abstention_says_why_and_lists_closest_passages():
    md = render.answer_markdown(make_answer(abstained=True))
    assert md.startswith("The documents do not answer this.")
    assert "*Why: no sentence is about the claim.*" in md
    assert "closest passages" in md and "<img" not in md
    assert "Title &lt;i&gt;T&lt;/i&gt; 2024 › &lt;Sub heading&gt;" in md
    empty = Answer("q", "The documents do not answer this.", True, (), (), "q")
    assert "No passage matched" in render.answer_markdown(empty)


def test_escape_markdown_neutralises_markup():
    out = render.escape_markdown("<script>alert(1)</script> *bold* [link](http://x) $x$ `code` a_b_c")
    assert "<" not in out and ">" not in out
    assert "\\*bold\\*" in out and "\\[link\\](http://x)" in out and "\\$x\\$" in out and "\\`code\\`" in out
    assert render.escape_markdown("# h\n- item\n12. num\n> quote") == "\\# h\n\\- item\n12\\. num\n&gt; quote"


def test_question_markdown_cleans_escapes_and_cuts_long_questions():
    assert render.question_markdown("  <b>Why</b>\x00 *now*?\n") == "&lt;b&gt;Why&lt;/b&gt; \\*now\\*?"
    assert render.question_markdown(None) == "" and render.question_markdown(" \x00\u202e ") == ""
    long = render.question_markdown("word " * 200, limit=50)
    assert long.endswith(" …") and len(long) <= 52


def test_doc_choices_label_documents_by_title_and_year():
    passages = [Passage(doc="b/report.txt", start=0, end=1, text="x", title="Annual Report", year=2021),
                Passage(doc="b/report.txt", start=2, end=3, text="y", title="Annual Report", year=2021),
                Passage(doc="a.md", start=0, end=1, text="z", title="a", year=None),
                Passage(doc="c.md", start=0, end=1, text="z", title="Plans 2030", year=2030)]
    assert render.doc_choices(passages) == [
        (render.ALL_DOCS, render.ALL_DOCS), ("a.md", "a.md"), ("Annual Report (2021) — b/report.txt", "b/report.txt"),
        ("Plans 2030 — c.md", "c.md")]
    assert render.doc_choices([]) == [(render.ALL_DOCS, render.ALL_DOCS)]


# -- JSON and the terminal ---------------------------------------------------------------------

def test_answer_json_carries_every_citation_field_and_is_serialisable():
    answer = make_answer(question="What is the claim (standalone)?", original="And the claim?")
    data = json.loads(json.dumps(render.answer_json(answer)))
    assert data["question"] == "What is the claim (standalone)?" and data["original_question"] == "And the claim?"
    assert data["answer"] == answer.text and data["abstained"] is False and data["reason"] == ""
    assert data["score"] == answer.score  # the relevance score is in the JSON, never in the reason
    [c] = data["citations"]
    cit = answer.citations[0]
    assert c == {"n": 1, "doc": cit.doc, "heading": list(cit.passage.heading), "start": cit.start, "end": cit.end,
                 "page": None, "quote": cit.quote, "paragraph": PARA, "score": cit.passage.score}
    assert [p["doc"] for p in data["passages"]] == ["evil <x>.md", "other.txt"]
    assert data["passages"][0] == answer.passages[0].to_json()
    abstained = render.answer_json(make_answer(abstained=True))
    assert abstained["abstained"] is True and abstained["citations"] == []
    assert abstained["reason"] == "no sentence is about the claim"


def test_search_json_shape():
    p = make_answer().passages[0]
    assert render.search_json("q?", "bm25", 3, [p]) == {"question": "q?", "mode": "bm25", "k": 3,
                                                         "passages": [p.to_json()]}


def test_answer_text_lists_citations_with_their_lines():
    out = render.answer_text(make_answer())
    cit = make_answer().citations[0]
    assert out.splitlines()[0] == make_answer().text
    assert f"[1] evil <x>.md, line {cit.line} (Part & <u>1</u> > <Sub heading>)" in out
    assert f'    "{cit.quote}"' in out
    assert "question read as" not in out
    reworded = render.answer_text(make_answer(question="What is the claim (standalone)?", original="And the claim?"))
    assert reworded.startswith("(question read as: What is the claim (standalone)?)\n")


def test_answer_text_for_an_abstention_says_why_and_shows_at_most_three_passages():
    answer = make_answer(abstained=True)
    many = Answer.abstain("q", reason="nothing relevant", original_question="q",
                          passages=answer.passages + tuple(Passage(doc=f"p{i}.txt", start=0, end=300, text="w " * 150)
                                                           for i in range(3)))
    out = render.answer_text(many)
    assert out.startswith("The documents do not answer this.\nWhy: nothing relevant.\n")
    assert "Closest passages:" in out and out.count("\n  - ") == 3
    assert "  - evil <x>.md > Part & <u>1</u> > <Sub heading>: First sentence." in out
    assert "p0.txt" in out and "p1.txt" not in out
    nothing = render.answer_text(Answer.abstain("q", reason="no passage matched", original_question="q"))
    assert "No passages were found." in nothing and "Closest" not in nothing


def test_eval_table_has_a_column_per_config_and_a_row_per_metric():
    report = {"qa": "qa.jsonl", "docs": "seeds", "n": 3, "n_answerable": 2, "n_unanswerable": 1,
              "configs": {"hybrid": {"recall@1": 0.5, "mrr@10": 0.75, "latency_p50_ms": 12},
                          "bm25": {"recall@1": 1.0, "mrr@10": None}}}
    lines = render.eval_table(report).splitlines()
    assert lines[0] == "qa.jsonl on seeds: 3 questions (2 answerable, 1 unanswerable)"
    assert lines[1].split() == ["metric", "hybrid", "bm25"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows == {"recall@1": ["0.500", "1.000"], "mrr@10": ["0.750", "-"], "latency_p50_ms": ["12", "-"]}


# -- pages and links to the original files -------------------------------------------------------

PDF_TEXT = "Intro line on page three.\nThe cited claim starts on page four. It goes on.\nLast line."


def pdf_answer(doc: str = "reports/annual 2024.pdf") -> Answer:
    """A PDF passage starting on page 3, with page 4 starting at its second line; the citation is on page 4."""
    start = 1000
    page4 = start + PDF_TEXT.index("The cited")
    p = Passage(doc=doc, start=start, end=start + len(PDF_TEXT), text=PDF_TEXT, heading=("Annual", "Results"),
                title="Annual", year=2024, score=0.5, line=40, page=3, page_breaks=(page4,))
    s = PDF_TEXT.index("The cited")
    e = PDF_TEXT.index(" It goes")
    cit = Citation(1, doc, start + s, start + e, PDF_TEXT[s:e], p)
    other = Passage(doc="notes.txt", start=0, end=10, text="Other text", heading=("Notes",), title="Notes", line=2)
    return Answer.cited("q", f"{PDF_TEXT[s:e]} [1]", (cit,), original_question="q", passages=(p, other))


class Links(HTMLParser):
    """Every <a> of a fragment: its attributes, as a browser would read them (entities decoded)."""

    def __init__(self, fragment: str):
        super().__init__()
        self.links: list[dict] = []
        self.tags: set[str] = set()
        self.feed(fragment)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "a":
            self.links.append(dict(attrs))


def test_a_pdf_citation_has_its_page_in_json_text_and_the_sources_panel():
    answer = pdf_answer()
    assert answer.citations[0].page == 4 and answer.passages[0].page == 3
    data = json.loads(json.dumps(render.answer_json(answer)))
    assert data["citations"][0]["page"] == 4
    assert data["passages"][0]["page"] == 3 and data["passages"][1]["page"] is None
    text = render.answer_text(answer)
    assert "[1] reports/annual 2024.pdf, p. 4 (Results)" in text and "line" not in text.split("\n")[2]
    panel = render.sources_html(answer)
    cited = panel[:panel.index("<details")]
    assert "p. 4" in cited and "line 4" not in cited  # the page of the cited sentence, not of the passage
    links = Links(panel).links
    assert [a["href"] for a in links] == ["source/reports/annual%202024.pdf#page=4", "source/notes.txt"]
    assert all(a["target"] == "_blank" and "noopener" in a["rel"].split() for a in links)
    assert "line 2" in panel[panel.index("<details"):]  # a text file keeps its line


def test_the_other_passages_of_a_pdf_link_to_their_own_page():
    answer = pdf_answer()
    abstained = Answer.abstain("q", reason="nothing relevant", original_question="q", passages=answer.passages)
    links = Links(render.sources_html(abstained)).links
    assert links[0]["href"] == "source/reports/annual%202024.pdf#page=3"
    md = render.answer_markdown(abstained)
    assert "Annual (2024), p. 3 › Results" in md
    assert "  - reports/annual 2024.pdf (p. 3) > Results: Intro line" in render.answer_text(abstained)


def test_links_are_percent_encoded_and_escaped():
    for doc in ['a"b\'c<d>&e.pdf', "javascript:alert(1).pdf", "x#page=9?.pdf", "../../etc/passwd", "日本 語.pdf"]:
        panel = render.sources_html(pdf_answer(doc))
        parsed = Links(panel)
        [first, _] = parsed.links
        assert parsed.tags <= {"div", "span", "a", "p", "br", "mark", "sup", "details", "summary"}
        href = first["href"]
        assert href.startswith("source/") and href.endswith("#page=4") and href.count("#") == 1
        assert not re.search(r"[\s\"'<>&]", href), href
        assert html.unescape(first["href"]) == href  # nothing left to decode: the attribute is plain ASCII
        assert html.escape(doc) in panel  # the name is shown as it is
    assert render.source_url("a b/c?.txt") == "source/a%20b/c%3F.txt"
    assert render.source_url("r.pdf", 12) == "source/r.pdf#page=12"


def test_sources_without_links():
    panel = render.sources_html(pdf_answer(), links=False)
    assert "<a " not in panel and "p. 4" in panel and "reports/annual 2024.pdf" in panel


def test_place_is_the_page_or_the_line():
    assert render.place(12, 5) == "p. 12" and render.place(None, 5) == "line 5"
