"""rag.ingest.formats.html: a saved page's main content as seed-style lines (headings, lists, tables), its
charset, the whole body when trafilatura finds no main content, a quiet console; the first seed
survives a round trip through a page full of boilerplate."""

from __future__ import annotations

import codecs
import html
import logging

import pytest
from conftest import SEED_2025, SEEDS

from rag.errors import UnreadableFile
from rag.ingest.formats import convert as convert_any
from rag.ingest.formats.html import convert
from rag.ingest.load import load_document, parse

BOILERPLATE = ("Accept all cookies", "We use cookies", "World news", "Most read", "Ten things to know",
               "Sign up for our newsletter", "All rights reserved", "Terms of use", "dataLayer", "tracking")


def page(article: str, title: str = "Japan and Europe | Foreign Policy News", head: str = "") -> str:
    """A news page: cookie banner, header with navigation, breadcrumbs, `article`, sidebar, footer, scripts."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>{head}
<script>window.dataLayer = []; function gtag() {{ dataLayer.push(arguments) }}</script>
<style>body {{ font-family: sans-serif }}</style></head>
<body>
<div id="cookie-banner" class="cookie-consent"><p>We use cookies to improve your experience. By continuing to browse
you accept our cookie policy.</p><button>Accept all cookies</button></div>
<header><a href="/">Foreign Policy News</a><nav><ul><li><a href="/world">World news</a></li>
<li><a href="/asia">Asia</a></li><li><a href="/europe">Europe</a></li></ul></nav></header>
<div class="breadcrumbs"><a href="/">Home</a> &gt; <a href="/europe">Europe</a></div>
<main><article>{article}</article></main>
<aside class="sidebar"><h3>Most read</h3><ul><li><a href="/a">Ten things to know about the G7</a></li>
<li><a href="/b">Why the yen fell again</a></li></ul><div class="newsletter">Sign up for our newsletter</div></aside>
<footer><p>© 2025 Foreign Policy News. All rights reserved.</p><a href="/privacy">Privacy</a>
<a href="/terms">Terms of use</a></footer>
<script>console.log("tracking")</script>
</body></html>"""


ARTICLE = """<h1>Japan and Europe: partners in a changing order</h1>
<h2>Shared values</h2>
<p>The European Union and Japan share values such as freedom, democracy and the rule of law.
Both sides have stepped up   cooperation on security.</p>
<p>Cooperation with Europe is also important for enhancing Japan's <b>presence</b> in the <a href="/x">international
community</a>.<br>It is a long-term effort.</p>
<h2>Key agreements</h2>
<p>Several agreements frame the relationship:</p>
<ul><li>The Economic Partnership Agreement, in force since 2019.</li><li>The Strategic Partnership Agreement.</li>
<li>The Security and Defence Partnership of 2024.</li></ul>
<h3>Trade in numbers</h3>
<table><tr><th>Year</th><th>Exports</th></tr><tr><td>2023</td><td>9.1 trillion yen</td></tr></table>
<p>Trade has grown steadily since the agreement entered into force, officials said on Tuesday.</p>"""

LINES = [
    "Japan and Europe: partners in a changing order",
    "Shared values",
    ("The European Union and Japan share values such as freedom, democracy and the rule of law. "
     "Both sides have stepped up cooperation on security."),
    ("Cooperation with Europe is also important for enhancing Japan's presence in the international community. "
     "It is a long-term effort."),
    "Key agreements",
    "Several agreements frame the relationship:",
    "• The Economic Partnership Agreement, in force since 2019.",
    "• The Strategic Partnership Agreement.",
    "• The Security and Defence Partnership of 2024.",
    "Trade in numbers",
    "| Year | Exports |",
    "| 2023 | 9.1 trillion yen |",
    "Trade has grown steadily since the agreement entered into force, officials said on Tuesday.",
]


def heading_lines(ex) -> list[tuple[str, float]]:
    return [(ex.text[at:ex.text.index("\n", at)], level) for at, level in ex.headings]


def test_main_content_only_as_seed_lines():
    ex = convert(page(ARTICLE).encode(), "news.html")
    assert ex.text == "\n".join(LINES) + "\n"
    assert not [junk for junk in BOILERPLATE if junk in ex.text]
    assert ex.pages == ()


def test_headings_and_title():
    ex = convert(page(ARTICLE, head='<meta property="og:title" content="Japan and Europe (og)">').encode(), "n.html")
    assert heading_lines(ex) == [(LINES[0], 1.0), ("Shared values", 2.0), ("Key agreements", 2.0),
                                 ("Trade in numbers", 3.0)]
    assert ex.title == "Japan and Europe (og)"
    assert convert(page(ARTICLE).encode(), "n.html").title == "Japan and Europe: partners in a changing order"
    no_h1 = ARTICLE.replace("h1>", "h2>")
    assert convert(page(no_h1).encode(), "n.html").title == "Japan and Europe"  # <title> less the site's name


def test_load_document_keeps_the_heading_paths():
    document = load_document("web/news.html", page(ARTICLE).encode())
    assert document.title == LINES[0]
    paths = {document.text[b.start:b.end].split("\n")[0]: b.heading[1:] for b in document.blocks}
    assert paths["• The Economic Partnership Agreement, in force since 2019."] == ("Key agreements",)
    assert paths["| Year | Exports |"] == ("Key agreements", "Trade in numbers")


def test_lists_quotes_breaks_and_entities():
    article = """<h1>Guide</h1><p>An introduction to the guide, long enough to count as its content.</p>
<ul><li><p>An item in a paragraph.</p></li><li>An item<ul><li>Nested one.</li><li>Nested two.</li></ul></li></ul>
<h2>Code<br>and more</h2><pre>line one
line two</pre><p>Tom &amp; Jerry &lt;3 &#8364;5</p><blockquote><p>Quoted one.</p><p>Quoted two.</p></blockquote>
<ol><li>Step one.</li><li>Step two.</li></ol>"""
    ex = convert(page(article).encode(), "guide.html")
    assert ex.text == ("Guide\nAn introduction to the guide, long enough to count as its content.\n"
                       "• An item in a paragraph.\n• An item\n• Nested one.\n• Nested two.\nCode and more\n"
                       "line one line two\nTom & Jerry <3 €5\nQuoted one.\nQuoted two.\n• Step one.\n• Step two.\n")
    assert heading_lines(ex) == [("Guide", 1.0), ("Code and more", 2.0)]


@pytest.mark.parametrize(("declared", "encoding"), [
    ('<meta charset="windows-1252">', "cp1252"),
    ('<meta charset="ISO-8859-1">', "cp1252"),  # what browsers read Latin-1 pages as
    ('<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-15">', "iso-8859-15"),
    ('<meta charset="windows-1251">', "cp1251"),
    ('<meta charset="shift_jis">', "shift_jis"),
    ('<meta charset="utf-16">', "utf-8"),  # a UTF-16 <meta> is read as UTF-8, as browsers do
], ids=["cp1252", "latin-1", "http-equiv", "cyrillic", "japanese", "utf-16-meta"])
def test_the_declared_charset_decodes_the_page(declared, encoding):
    words = {"cp1251": "Привет, мир: «новости».", "shift_jis": "日本と欧州の協力。", "utf-8": "Ünïcödé, 10 €."}.get(
        encoding, "Café crème – “fresh” daily for 10 €." if encoding == "cp1252" else "Café crème, 10 €.")
    data = f"<html><head>{declared}</head><body><p>{words}</p></body></html>".encode(encoding)
    assert convert(data, "p.html").text == words + "\n"


@pytest.mark.parametrize(("data", "words"), [
    (codecs.BOM_UTF8 + "<html><body><p>Ünïcödé with a mark.</p></body></html>".encode(), "Ünïcödé with a mark."),
    ("<html><body><p>Ünïcödé in UTF-16.</p></body></html>".encode("utf-16"), "Ünïcödé in UTF-16."),
    ("<html><body><p>He said “hello” – the café’s crème brûlée costs 10 €.</p></body></html>".encode("cp1252"),
     "He said “hello” – the café’s crème brûlée costs 10 €."),
    ("<html><body><p>Déjà vu, naïve café, crème brûlée.</p></body></html>".encode("latin-1"),
     "Déjà vu, naïve café, crème brûlée."),
    ('<html><head><meta charset="utf-8"></head><body><p>Café crème, wrongly declared.</p></body></html>'
     .encode("cp1252"), "Café crème, wrongly declared."),
], ids=["utf-8-bom", "utf-16-bom", "undeclared-cp1252", "undeclared-latin-1", "wrong-declaration"])
def test_an_undeclared_or_wrong_charset_is_found(data, words):
    assert convert(data, "p.html").text == words + "\n"


FEW_PARAGRAPHS = """<html><head><title>Museum hours</title><style>p { color: red }</style></head><body>
<nav><a href="/">Home</a></nav>
<h1>Opening hours</h1><p>The museum is open daily from 10 to 6.</p>
<h2>Prices</h2><p>Admission is free on Sundays.</p><ul><li>Adults: 12 euros.</li><li>Children: free.</li></ul>
<script>var tracker = 1;</script></body></html>"""


def test_when_trafilatura_finds_no_main_content_the_body_is_taken(monkeypatch):
    import trafilatura

    monkeypatch.setattr(trafilatura, "extract", lambda *args, **kwargs: None)
    ex = convert(FEW_PARAGRAPHS.encode(), "hours.html")
    assert ex.text == ("Opening hours\nThe museum is open daily from 10 to 6.\nPrices\n"
                       "Admission is free on Sundays.\n• Adults: 12 euros.\n• Children: free.\n")
    assert heading_lines(ex) == [("Opening hours", 1.0), ("Prices", 2.0)]
    assert ex.title == "Opening hours"  # a lone <h1> before <title>, as trafilatura's metadata reads a page


@pytest.mark.parametrize(("markup", "text"), [
    ("<p>Only a fragment, no html element.</p><p>A second paragraph.</p>",
     "Only a fragment, no html element.\nA second paragraph.\n"),
    ("<html><body><aside><h2>Notice</h2><p>The office is closed today.</p></aside></body></html>",
     "Notice\nThe office is closed today.\n"),
    ("<html><body><footer><p>The office is closed today.</p></footer></body></html>", "The office is closed today.\n"),
    ("<html><body><table><tr><td><h2>Left</h2><p>One.</p></td><td>Right cell.</td></tr></table></body></html>",
     "Left\nOne.\nRight cell.\n"),
], ids=["fragment", "all-in-aside", "all-in-footer", "layout-table"])
def test_small_real_pages_are_never_refused(markup, text):
    assert convert(markup.encode(), "small.html").text == text


@pytest.mark.parametrize("markup", [
    "", "   \n", "<html><head><title>Only a title</title></head><body></body></html>",
    "<html><body><script>document.write('built by a script')</script><style>p {}</style></body></html>",
    "<html><body><!-- a comment only --></body></html>",
], ids=["empty", "blank", "title-only", "scripts-only", "comment-only"])
def test_a_page_with_no_text(markup):
    with pytest.raises(UnreadableFile) as err:
        convert(markup.encode(), "blank.html")
    assert str(err.value) == "blank.html: no text"


def test_the_console_stays_quiet(caplog, capsys):
    caplog.set_level(logging.DEBUG)
    for markup in ("<html><body><div>", "<html><body><p>x</p>" * 50, "<html>\x0c<body><p>Odd &#0; page.</p>", "<x"):
        try:
            convert(markup.encode(), "odd.html")
        except UnreadableFile:
            pass
    assert not [r for r in caplog.records if r.name.split(".")[0] in ("trafilatura", "htmldate", "courlan")]
    assert capsys.readouterr() == ("", "")


def test_a_page_named_txt_is_read_as_a_page():
    assert convert_any(page(ARTICLE).encode(), "saved.txt").text == "\n".join(LINES) + "\n"


# The first seed as a web page: <h1> title, <hN+1> for the lines parse takes as headings, boilerplate around.

def test_the_first_seed_round_trips():
    text = (SEEDS / SEED_2025).read_text(encoding="utf-8")
    seed = parse(SEED_2025, text)
    depth: dict[str, int] = {}
    for block in seed.blocks:
        for n, name in enumerate(block.heading[1:], 1):
            depth.setdefault(name, n)
    lines = [line for line in text.split("\n") if line.strip()]
    tags = {line: f"h{n + 1}" for line, n in depth.items()}
    body = [f"<{tag}>{html.escape(line)}</{tag}>" for line in lines for tag in [tags.get(line, "p")]]
    body[0] = f"<h1>{html.escape(lines[0])}</h1>"
    ex = convert(page("\n".join(body), title="Diplomatic Bluebook 2025 | MOFA").encode(), "seed.html")

    assert ex.text.split("\n")[:-1] == [" ".join(line.split()) for line in lines]
    assert heading_lines(ex) == [(lines[0], 1.0), *((name, n + 1.0) for name, n in depth.items())]
    back = parse("seed.html", ex.text, dict(ex.headings), pages=ex.pages, title=ex.title)
    assert (back.title, back.year) == (seed.title, seed.year)
    assert [(b.heading, b.kind) for b in back.blocks] == [(b.heading, b.kind) for b in seed.blocks]
    assert [back.text[b.start:b.end] for b in back.blocks] == [seed.text[b.start:b.end] for b in seed.blocks]
