"""Saved web pages (.html): the page's main content, as the seeds are written.

The bytes are decoded by their byte-order mark, else the charset the page declares (`<meta charset>`,
`http-equiv` or the XML declaration), else as a text file is (`rag.ingest.formats.text.decode`).
trafilatura (balanced mode: on its 990-page benchmark it kept more of the text than favor_precision
and less boilerplate than favor_recall) finds the main content, dropping navigation, cookie banners,
sidebars, footers and scripts, and gives it as XML, walked in document order: `<head rend="hN">` is a
heading line of level N, each paragraph a line, each list item a line starting "• " (as a bullet
reads on the page; `rag.ingest.load.parse` then keeps a list one block), each table row a line
"| a | b | c |" as a Markdown table row reads (a record, read and cited as one; the bars keep `parse`
from taking a short row for a heading). Where trafilatura finds no main content (a fragment, a page
all in an <aside>), the body is walked the same way, less scripts, navigation, sidebars, footers and
forms (all of it when that leaves nothing). `title` is the page's own: og:title, a JSON-LD headline,
a lone <h1> or <title>, as trafilatura's metadata reads them.

Does not keep links, images, reader comments, or the text of forms and frames; does not run scripts,
so text a page only builds in the browser is not seen.
"""

from __future__ import annotations

import codecs
import contextlib
import copy
import functools
import logging
import re

from rag.errors import UnreadableFile
from rag.ingest.formats import Extracted
from rag.ingest.formats.text import decode

# trafilatura's XML and HTML itself, as one vocabulary: tag -> block kind
_BLOCKS = {"p": "line", "div": "line", "quote": "line", "blockquote": "line", "pre": "line",
           "dd": "line", "dt": "line", "section": "line", "article": "line", "main": "line", "figcaption": "line",
           "caption": "line", "cell": "line", "td": "line", "th": "line",  # cells: only those of a layout row
           "item": "item", "li": "item", "row": "row", "tr": "row", "head": "heading", "br": "break", "lb": "break",
           **{f"h{n}": "heading" for n in range(1, 7)}}
_CELLS = {"cell", "td", "th"}
_SCRIPTS = ("script", "style", "noscript", "template", "svg", "iframe", "button", "select", "textarea")
_BOILERPLATE = ("nav", "aside", "footer", "form")
_CHARSET = re.compile(rb"""<(?:meta[^>]+charset|\?xml[^>]+encoding)\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.IGNORECASE)
# what browsers read a declared charset as (WHATWG Encoding): Latin-1 and ASCII as cp1252, a UTF-16 <meta> as UTF-8
_AS = {**dict.fromkeys(("iso-8859-1", "latin-1", "latin1", "iso8859-1", "l1", "us-ascii", "ascii"), "cp1252"),
       **dict.fromkeys(("utf-16", "utf-16le", "utf-16be"), "utf-8")}


def convert(data: bytes, name: str) -> Extracted:
    import trafilatura
    from lxml import etree, html

    for logger in ("trafilatura", "htmldate", "courlan", "justext", "readability"):
        logging.getLogger(logger).setLevel(logging.CRITICAL)  # odd pages make them warn; the console stays quiet
    page = _decode(data, name)
    tree = trafilatura.load_html(page) if page.strip() else None  # None: not a page lxml can read
    xml = trafilatura.extract(tree, output_format="xml", include_formatting=True, include_tables=True,
                              include_comments=False, include_links=False, include_images=False,
                              config=_config()) if tree is not None else None  # extract copies the tree
    main = etree.fromstring(xml).find("main") if xml else None
    lines = _lines(main) if main is not None else []
    if tree is None:
        try:
            tree = html.document_fromstring(page)  # a fragment (no <html>) trafilatura will not read
        except (etree.ParserError, ValueError):
            raise UnreadableFile(name, "no text") from None
    title = _title(tree)
    if not lines:  # trafilatura saw no main content (a page all in an <aside>, a fragment): take the whole body
        for el in list(tree.iter(*_SCRIPTS)):
            el.drop_tree()
        body = tree.find("body")
        if body is not None:
            lines = _lines(_without(body, _BOILERPLATE)) or _lines(body)  # a page all in a <footer> is still text
    if not lines:
        raise UnreadableFile(name, "no text")
    text, headings, at = [], [], 0
    for line, level in lines:
        if level is not None:
            headings.append((at, float(level)))
        text.append(line)
        at += len(line) + 1
    return Extracted("\n".join(text) + "\n", tuple(headings), (), title)


def _title(tree) -> str | None:
    """The page's own title: extract_metadata's title steps (og:title, JSON-LD headline, a lone <h1>, <title>
    less the site's name), without the date search that makes trafilatura's metadata twice as slow."""
    from trafilatura.metadata import examine_meta, extract_meta_json, extract_title

    meta = examine_meta(tree)
    with contextlib.suppress(Exception):  # JSON-LD a page gets wrong: trafilatura itself guards this step so
        meta = extract_meta_json(tree, meta)
    title = " ".join((meta.title or extract_title(tree) or "").split())
    return title or None


@functools.cache
def _config():
    """trafilatura's settings, less its last resort for pages with under 250 characters of main text (a dump
    of the body as flat paragraphs, headings lost, navigation kept): the walk of the body below does better."""
    from trafilatura.settings import DEFAULT_CONFIG

    config = copy.deepcopy(DEFAULT_CONFIG)
    config["DEFAULT"]["MIN_EXTRACTED_SIZE"] = "1"
    return config


def _decode(data: bytes, name: str) -> str:
    """The page as text: a byte-order mark, else the declared charset when it decodes the bytes, else `decode`."""
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return decode(data, name)
    declared = _CHARSET.search(data[:4096])
    if declared:
        charset = declared.group(1).decode("ascii").lower()
        try:
            return data.decode(_AS.get(charset, charset)).replace("\r\n", "\n").replace("\r", "\n")
        except (LookupError, UnicodeDecodeError):
            pass  # an unknown or wrong charset: find the right one
    return decode(data, name)


class _Lines:
    """The lines of a tree being walked: text gathers in `buf` until a block starts or ends."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, int | None]] = []  # (text, heading level or None)
        self.buf: list[str] = []
        self.kind: str | None = None  # the block the buffered text belongs to, and its heading level
        self.level: int | None = None

    def flush(self) -> None:
        text = " ".join("".join(self.buf).split())
        self.buf.clear()
        if text:
            self.lines.append(("• " + text if self.kind == "item" else text, self.level))


def _walk(el, out: _Lines) -> None:
    """Add the lines of `el` and its tail to `out`, in document order."""
    kind = _BLOCKS.get(el.tag) if isinstance(el.tag, str) else "comment"
    if kind == "break":
        out.buf.append(" ")
    elif kind == "row" and not any(_has_blocks(c) for c in el if c.tag in _CELLS):  # a record: one line
        out.flush()
        cells = [text for c in el if c.tag in _CELLS if (text := " ".join(" ".join(c.itertext()).split()))]
        if cells:  # a row of one filled cell reads as a paragraph
            out.lines.append(("| " + " | ".join(cells) + " |" if len(cells) > 1 else cells[0], None))
    elif kind in ("line", "item", "heading"):
        out.flush()
        outer = out.kind, out.level
        kind = "item" if kind == "line" and out.kind == "item" else kind  # <li><p>...</p></li> is an item
        out.kind, out.level = kind, _level(el) if kind == "heading" else None
        out.buf.append(el.text or "")
        for child in el:
            _walk(child, out)
        out.flush()
        out.kind, out.level = outer
    elif kind != "comment":  # inline, or a layout row whose cells hold blocks
        out.buf.append(el.text or "")
        for child in el:
            _walk(child, out)
    if el.tail:
        out.buf.append(el.tail)


def _lines(el) -> list[tuple[str, int | None]]:
    out = _Lines()
    _walk(el, out)
    out.flush()
    return out.lines


def _without(el, tags: tuple[str, ...]):
    """A copy of `el` without the elements named `tags`."""
    el = copy.deepcopy(el)
    for drop in list(el.iter(*tags)):
        drop.drop_tree()
    return el


def _level(el) -> int:
    tag = el.tag if el.tag != "head" else (el.get("rend") or "h2")
    return int(tag[1]) if re.fullmatch(r"h[1-6]", tag) else 2


def _has_blocks(cell) -> bool:
    return any(isinstance(d.tag, str) and _BLOCKS.get(d.tag, "break") != "break" for d in cell.iterdescendants())
