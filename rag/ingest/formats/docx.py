"""Word (.docx): the body of the document, in order, as the seeds are written.

python-docx opens the file; the body is walked in document order: its paragraphs, and those of its
tables and content controls. A paragraph's text is that of its runs, hyperlinks, fields and tracked
insertions (not tracked deletions or hidden text); its line breaks and tabs read as spaces. Headings:
the "Title" style is level 1 and "Heading N" is level N + 1 when the document has a Title paragraph,
else N, so a Title stays above the headings that follow it (a style based on one of them, or with an
outline level, counts the same). A list paragraph (bulleted or numbered) starts "• ", as a bullet reads
on the page (and so `rag.ingest.load.parse` keeps a list one block); Word's numbers are not rebuilt.
A table row whose cells hold one paragraph each is one line, "| a | b | c |" as a Markdown table row
reads: a row is a record, read and cited as one, and the bars keep `parse` from taking a short row for
a heading (a row of one filled cell is a plain line); a row whose cells hold more (a table used for
layout) gives each paragraph its line. A table of contents is skipped. `title` is the document properties' title.

Does not read the headers and footers of the Word sections, footnotes, endnotes, comments, text boxes
or images. A damaged, truncated or password-protected file raises `UnreadableFile`, one line.
"""

from __future__ import annotations

import functools
import re
import zipfile
import zlib
from io import BytesIO

from rag.errors import UnreadableFile
from rag.ingest.formats import Extracted

_NS = {"w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
       "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006"}
W = f"{{{_NS['w']}}}"
_FALLBACK = f"{{{_NS['mc']}}}Fallback"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an encrypted .docx, or an old .doc, is an OLE compound file
_HEADING = re.compile(r"heading ([1-9])")
_TEXT = ".//w:t | .//w:tab | .//w:ptab | .//w:br | .//w:cr | .//w:noBreakHyphen"  # what a paragraph shows


def _xpath(el, path: str, **variables) -> list:
    return _compiled(path)(el, **variables)


@functools.cache
def _compiled(path: str):
    from lxml import etree

    return etree.XPath(path, namespaces=_NS, smart_strings=False)


def convert(data: bytes, name: str) -> Extracted:
    import docx
    from docx.opc.exceptions import OpcError
    from lxml import etree

    if data.startswith(_OLE):
        raise UnreadableFile(name, "damaged Word file (password-protected, or an old .doc: not a .docx package)")
    try:
        document = docx.Document(BytesIO(data))
        lines = list(_Body(document.styles.element).lines(document.element.body))
        title = (document.core_properties.title or "").strip() or None
    except (OpcError, zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, zlib.error, etree.LxmlError) as exc:
        kind = "zlib.error" if isinstance(exc, zlib.error) else type(exc).__name__
        raise UnreadableFile(name, f"damaged Word file ({kind}: {' '.join(str(exc).split())[:200]})") from None
    if not lines:
        raise UnreadableFile(name, "no text")
    shift = 1 if any(level == "title" for _, level, _ in lines) else 0
    text, headings, at = [], [], 0
    for line, level, bullet in lines:
        line = "• " + line if bullet else line
        if level is not None:
            headings.append((at, 1.0 if level == "title" else float(level + shift)))
        text.append(line)
        at += len(line) + 1
    return Extracted("\n".join(text) + "\n", tuple(headings), (), title)


class _Body:
    """Walks a document body into (text, heading level | "title" | None, is a list item) lines."""

    def __init__(self, styles) -> None:
        self.styles = styles
        default = _xpath(styles, "w:style[@w:type='paragraph'][@w:default='1']/@w:styleId")
        self.default = default[0] if default else None
        self.known: dict[str | None, tuple[int | str | None, bool, bool]] = {}

    def lines(self, parent):
        for child in parent.iterchildren():
            if child.tag == W + "p":
                yield from self.paragraph(child)
            elif child.tag == W + "tbl":
                yield from self.table(child)
            elif child.tag == W + "sdt":  # a content control; a table of contents is one too
                gallery = _xpath(child, "w:sdtPr/w:docPartObj/w:docPartGallery/@w:val")
                if child.find(W + "sdtContent") is not None and "Table of Contents" not in gallery:
                    yield from self.lines(child.find(W + "sdtContent"))
            elif child.tag in (W + "customXml", W + "ins", W + "moveTo", W + "sdtContent"):
                yield from self.lines(child)

    def paragraph(self, p):
        props = p.find(W + "pPr")
        style = props.find(W + "pStyle") if props is not None else None
        level, listed, toc = self.style(style.get(W + "val") if style is not None else self.default)
        if toc:
            return
        own_level, own_list = _outline(props), _numbered(props)
        level = level if own_level is None else own_level or None
        listed = listed if own_list is None else own_list
        text = " ".join("".join(_node_text(n) for n in _xpath(p, _TEXT) if _shown(n, p)).split())
        if text:
            yield text, level, listed and level is None

    def table(self, tbl):
        for row in _xpath(tbl, "w:tr | w:sdt/w:sdtContent/w:tr"):
            cells = [list(self.lines(tc)) for tc in _xpath(row, "w:tc | w:sdt/w:sdtContent/w:tc")]
            if all(len(c) <= 1 and all(level is None for _, level, _ in c) for c in cells):  # a record: one line
                filled = [c[0] for c in cells if c]
                if len(filled) > 1:
                    yield "| " + " | ".join(text for text, _, _ in filled) + " |", None, False
                else:  # one cell of text (a note in a box, a row spanning the table) reads as a paragraph
                    yield from filled
            else:  # a table used for layout: each paragraph its own line
                for cell in cells:
                    yield from cell

    def style(self, style_id: str | None, depth: int = 0) -> tuple[int | str | None, bool, bool]:
        """(heading level, "title" or None; numbered or bulleted; in a table of contents) of a paragraph style,
        with what it inherits from the style it is based on."""
        if style_id not in self.known:
            found = _xpath(self.styles, "w:style[@w:styleId=$id]", id=style_id or "") if depth <= 20 else ()
            self.known[style_id] = self._style(found[0], depth) if found else (None, False, False)
        return self.known[style_id]

    def _style(self, s, depth: int) -> tuple[int | str | None, bool, bool]:
        name = (s.find(W + "name").get(W + "val") if s.find(W + "name") is not None else "").lower()
        based = s.find(W + "basedOn")
        level, listed, toc = self.style(based.get(W + "val"), depth + 1) if based is not None else (None, False, False)
        heading = _HEADING.fullmatch(name)
        own_level = "title" if name == "title" else int(heading[1]) if heading else _outline(s.find(W + "pPr"))
        own_list = _numbered(s.find(W + "pPr"))
        return (level if own_level is None else own_level or None, listed if own_list is None else own_list,
                toc or name.startswith("toc"))


def _outline(props) -> int | None:
    """The outline level (1-9) a paragraph or style sets, 0 when it sets body text, None when it sets none."""
    lvl = props.find(W + "outlineLvl") if props is not None else None
    if lvl is None or not (lvl.get(W + "val") or "").isdigit():
        return None
    return int(lvl.get(W + "val")) + 1 if int(lvl.get(W + "val")) < 9 else 0


def _numbered(props) -> bool | None:
    num = props.find(f"{W}numPr/{W}numId") if props is not None else None
    return None if num is None else num.get(W + "val") not in (None, "0")


def _node_text(node) -> str:
    tag = node.tag[len(W):]
    return node.text or "" if tag == "t" else "-" if tag == "noBreakHyphen" else " "


def _shown(node, p) -> bool:
    """Whether a text node is read: not deleted, moved away, hidden, in a text box or in a fallback copy."""
    for anc in node.iterancestors():
        if anc is p:
            return True
        tag = anc.tag
        if tag in (W + "del", W + "moveFrom", W + "txbxContent", _FALLBACK):
            return False
        if tag == W + "r":
            vanish = anc.find(f"{W}rPr/{W}vanish")
            if vanish is not None and vanish.get(W + "val") not in ("0", "false", "off"):
                return False
    return True
