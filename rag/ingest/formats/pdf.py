"""PDF with a text layer, read with pypdfium2 (PDFium): its lines rebuilt into paragraphs and headings.

PDFium gives a page's text in content order, a line at a time; the position, size and weight of a
line's first and last character tell the rest. Running headers and footers are dropped: a line at the
top or bottom of most pages, the same but for numbers that count the pages ("Page 7 of 9"), and a lone
page number. A line joins the one before it when it has the same font size and weight, sits right under
it or opens the next page, keeps the paragraph's left edge, and its first word would not have fitted at
the end of the line before (which so did not end a paragraph). A word hyphenated at a line end is
rejoined ("inter-" + "national"), a real hyphen kept ("Asia-" + "Pacific"). Headings are the outline's
bookmarks found as lines on their pages (after a number such as "2.1" or not), level 1 the top; without
an outline, lines clearly bigger than the body text, or bold and short, levelled by size. `pages` is
the offset of the first character taken from each page: a paragraph running on from the page before
carries the page break inside its line. A paragraph that ends a page on a full line reads as running on.

Does not read scans (no OCR), nor columns, tables or rotated text as such: they come in content order.
Encrypted, damaged, empty and image-only files raise `UnreadableFile`. PDFium is not thread-safe, so
one document is read at a time.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import re
import statistics
import threading
from collections import Counter
from dataclasses import dataclass

from rag.errors import UnreadableFile
from rag.ingest.formats import Extracted

_PDFIUM = threading.Lock()  # PDFium is not thread-safe, not even across documents
_LINE = re.compile(r"[^\r\n\ufffe]+\ufffe?")  # PDFium ends a line with \r\n, or U+FFFE for a hyphen at its end
_PAGE_NUMBER = re.compile(r"^[\W_]*((page|p\.)\s*)?(\d+|(?=[ivxlcdm])m{0,3}(c[md]|d?c{0,3})(x[cl]|l?x{0,3})(i[xv]|v?i{0,3}))"
                          r"(\s*(of|/)\s*\d+)?[\W_]*$", re.IGNORECASE)
_NUMBERING = re.compile(r"((chapter|section|part|appendix)\s+)?(\d+|[a-z]|[ivxlc]+)([.-]\d+)*[.):]?")
_HYPHENS = ("-", "\u2010")
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
_ERRORS = {4: "encrypted (password-protected); decrypt it first",
           5: "encrypted with an unsupported security handler; decrypt it first"}
_DAMAGE = {2: "it cannot be opened", 3: "not in PDF format or corrupted"}
_NO_PAGES = "no pages (an empty PDF)"


@dataclass
class _Line:
    text: str
    page: int
    x0: float
    x1: float
    word: float  # width of the first word
    base: float  # bottom of the first character's font box
    size: float  # font size in points, as printed
    bold: bool


def convert(data: bytes, name: str) -> Extracted:
    import pypdfium2 as pdfium  # imported here: the query path never reads a PDF's bytes

    if not data:
        raise UnreadableFile(name, "empty file (0 bytes)")
    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise UnreadableFile(name, _why(exc.err_code, data)) from None
        try:
            pages = [_page_lines(pdf, i) for i in range(len(pdf))]
            outline = list(_outline(pdf))
            title = (pdf.get_metadata_value("Title") or "").strip() or None
        except pdfium.PdfiumError as exc:
            raise UnreadableFile(name, f"damaged PDF (PDFium: {str(exc).rstrip('.').lower()})") from None
        finally:
            pdf.close()
    if not pages:
        raise UnreadableFile(name, _NO_PAGES)
    lines = [line for page in (_drop_running(pages) if any(pages) else pages) for line in page]
    if not lines:  # nothing, or only page numbers and running headers: the pages are images
        raise UnreadableFile(name, "no text layer: a scan? OCR is not supported")
    paragraphs = _paragraphs(lines)
    return _assemble(paragraphs, outline, len(pages), title)


def _why(code: int | None, data: bytes) -> str:
    """What a failed load means. PDFium refuses a document with no pages without always setting its error
    code (the last one stays), so an empty page tree is looked for in the bytes."""
    if code in _ERRORS:
        return _ERRORS[code]
    if code == 0 or (re.search(rb"/Count\s+0\b", data) and not re.search(rb"/Count\s+[1-9]", data)):
        return _NO_PAGES
    return f"damaged or truncated PDF (PDFium: {_DAMAGE.get(code, f'error {code}')})"


def _page_lines(pdf, index: int) -> list[_Line]:
    page, textpage = pdf[index], None
    try:
        textpage = page.get_textpage()
        chars = _Chars(textpage)
        text = textpage.get_text_range()
        same = len(text) == textpage.count_chars()  # else text and char indices differ: translate them
        lines = []
        for m in _LINE.finditer(text):
            seg = m.group().replace("\ufffe", "-")
            body = " ".join(seg.split())
            if not body:
                continue
            first = m.start() + len(seg) - len(seg.lstrip())
            last = m.start() + len(seg.rstrip()) - 1
            word_end = first + len(body.split(" ", 1)[0]) - 1
            if not same:
                first, last, word_end = map(chars.index, (first, last, word_end))
            head, tail = chars.info(first), chars.info(last)
            if head is None or tail is None:
                continue
            word = chars.box(word_end) if word_end < last else tail
            right = word[1] if word else tail[1]
            lines.append(_Line(body, index, head[0], tail[1], right - head[0], head[2], max(head[3], tail[3]),
                               head[4] and tail[4]))
        return lines
    finally:
        if textpage is not None:
            textpage.close()
        page.close()


class _Chars:
    """Position, size and weight of a page's characters, through PDFium's own calls (the fast way)."""

    def __init__(self, textpage):
        from pypdfium2 import raw

        self.raw, self.page = raw, textpage.raw
        self.rect, self.matrix = raw.FS_RECTF(), raw.FS_MATRIX()
        self.name, self.flags = ctypes.create_string_buffer(128), ctypes.c_int()

    def index(self, text_index: int) -> int:
        return self.raw.FPDFText_GetCharIndexFromTextIndex(self.page, text_index)

    def box(self, i: int) -> tuple[float, float, float] | None:
        """(left, right, bottom) of the font box of character `i`, or None when PDFium has none."""
        rect = self.rect
        if i < 0 or not self.raw.FPDFText_GetLooseCharBox(self.page, i, rect):
            return None
        return rect.left, rect.right, rect.bottom

    def info(self, i: int) -> tuple[float, float, float, float, bool] | None:
        """(left, right, bottom, size in points as printed, bold) of character `i`, or None."""
        raw, page, m = self.raw, self.page, self.matrix
        box = self.box(i)
        if box is None:
            return None
        raw.FPDFText_GetMatrix(page, i, m)
        size = raw.FPDFText_GetFontSize(page, i) * math.sqrt(abs(m.a * m.d - m.b * m.c))
        bold = raw.FPDFText_GetFontWeight(page, i) >= 500  # the font's /FontWeight, else from its stem width
        if not bold:  # the weight may be missing (0) or made up: the font's name and flags may say bold
            raw.FPDFText_GetFontInfo(page, i, self.name, 128, self.flags)
            bold = bool(_BOLD_NAME.search(self.name.value.decode("latin-1"))) or bool(self.flags.value & 1 << 18)
        return *box, round(size, 1), bold


def _outline(pdf):
    """(level, title, page index) of each bookmark that leads to a page."""
    from pypdfium2 import raw

    for mark in pdf.get_toc():
        dest = raw.FPDFBookmark_GetDest(pdf, mark.raw)
        action = raw.FPDFBookmark_GetAction(mark.raw)
        if not dest and action and raw.FPDFAction_GetType(action) == raw.PDFACTION_GOTO:
            dest = raw.FPDFAction_GetDest(pdf, action)
        page = raw.FPDFDest_GetDestPageIndex(pdf, dest) if dest else -1
        if page >= 0:
            yield mark.level + 1, mark.get_title(), page


def _drop_running(pages: list[list[_Line]]) -> list[list[_Line]]:
    """The pages without their running headers and footers: a line among the two top-most or bottom-most
    of at least 40% of the pages (2 at least), the same in size and text but for numbers that are the
    same or count the pages ("Page 7", not "Chapter 3" atop a few pages); nor a lone page number."""
    def edges(lines):
        by_height = sorted(lines, key=lambda line: -line.base)
        return [("top", line) for line in by_height[:2]] + [("bottom", line) for line in by_height[-2:]]

    found: dict[tuple, dict[int, _Line]] = {}
    for n, page in enumerate(pages):
        for edge, line in edges(page):
            found.setdefault((edge, re.sub(r"\d+", "#", line.text.casefold()), round(line.size)), {})[n] = line
    enough = max(2, 0.4 * sum(map(bool, pages)))
    running = {id(line) for at in found.values() if len(at) >= enough and _steady(at) for line in at.values()}
    out = []
    for page in pages:
        lines = sorted(page, key=lambda line: -line.base)
        drop = running | {id(line) for line in lines[:1] + lines[-1:] if _PAGE_NUMBER.match(line.text)}
        out.append([line for line in page if id(line) not in drop])
    return out


def _steady(at: dict[int, _Line]) -> bool:
    """Whether each number in these lines (one line a page) is the same on every page or counts the pages."""
    numbers = [(n, [int(x) for x in re.findall(r"\d+", line.text)]) for n, line in at.items()]
    return all(any(Counter(nums[j] - n * step for n, nums in numbers).most_common(1)[0][1] >= 0.8 * len(numbers)
                   for step in (0, 1)) for j in range(len(numbers[0][1])))


def _paragraphs(lines: list[_Line]) -> list[tuple[_Line, str, list[tuple[int, int]]]]:
    """(first line, text, [(offset in the text, page), ...] where each page's part starts) per paragraph."""
    if not lines:
        return []
    body_size = _body_size((line.size, line.text) for line in lines)
    right = max((line.x1 for line in lines if line.size == body_size), default=max(line.x1 for line in lines))
    steps = [(a.base - b.base) / a.size for a, b in itertools.pairwise(lines)
             if a.page == b.page and a.size == b.size and 0 < a.base - b.base < 3 * a.size]
    leading = statistics.median(steps) if steps else 1.2

    def continues(a: _Line, b: _Line, inside: bool) -> bool:
        if abs(a.size - b.size) > 0.05 * a.size or a.bold != b.bold:
            return False
        if a.page == b.page and not 0 < a.base - b.base <= 1.3 * leading * a.size:
            return False
        if inside and a.page == b.page and abs(a.x0 - b.x0) > 0.8 * a.size:
            return False  # a paragraph's lines after its first share a left edge: an indent starts another one
        if a.text.endswith(_HYPHENS):
            return True
        return right - a.x1 < b.word + 0.5 * b.size  # its first word and a space (with room to spare) did not fit

    paragraphs, prev, inside = [], None, False
    for line in lines:
        inside = prev is not None and continues(prev, line, inside)
        if inside:
            first, text, marks = paragraphs[-1]
            if text.endswith(_HYPHENS) and len(text) > 1 and text[-2].isalnum():
                text = text[:-1] if text[-2].isalpha() and line.text[0].islower() else text
            else:
                text += " "
            if line.page != marks[-1][1]:
                marks.append((len(text), line.page))
            paragraphs[-1] = (first, text + line.text, marks)
        else:
            paragraphs.append((line, line.text, [(0, line.page)]))
        prev = line
    return paragraphs


def _body_size(sized_texts) -> float:
    """The font size most of the text is printed in."""
    chars = Counter()
    for size, text in sized_texts:
        chars[size] += len(text)
    return chars.most_common(1)[0][0]


def _font_levels(paragraphs) -> dict[int, float]:
    """Heading level by paragraph index, from font size and weight."""
    body_size = _body_size((first.size, text) for first, text, _ in paragraphs)
    big = {i: round(first.size * 2) / 2 for i, (first, text, _) in enumerate(paragraphs)
           if first.size >= 1.15 * body_size and len(text) <= 200}
    bold = {i for i, (first, text, _) in enumerate(paragraphs)
            if i not in big and first.bold and first.size >= 0.95 * body_size and len(text) <= 120
            and not text.endswith((".", ",", ";"))}
    rank = {size: n for n, size in enumerate(sorted(set(big.values()), reverse=True), 1)}
    return {i: float(rank[size]) for i, size in big.items()} | {i: float(len(rank) + 1) for i in bold}


def _titled(line: str, title: str) -> bool:
    """Whether a line is a bookmark's title, perhaps after its number ("2.1", "Chapter 3")."""
    line, title = " ".join(line.split()).casefold(), " ".join(title.split()).casefold()
    return line == title or line.endswith(" " + title) and bool(_NUMBERING.fullmatch(line[:-len(title) - 1]))


def _outline_levels(paragraphs, outline) -> dict[int, float]:
    """Heading level by paragraph index, for the bookmarks found as a paragraph on their page."""
    by_page: dict[int, list[int]] = {}
    for i, (first, _, _) in enumerate(paragraphs):
        by_page.setdefault(first.page, []).append(i)
    levels: dict[int, float] = {}
    for level, title, page in outline:
        i = next((i for i in by_page.get(page, ()) if i not in levels and _titled(paragraphs[i][1], title)), None)
        if i is not None:
            levels[i] = float(level)
    return levels


def _assemble(paragraphs, outline, page_count: int, title: str | None) -> Extracted:
    levels = paragraphs and (_outline_levels(paragraphs, outline) or _font_levels(paragraphs))
    starts: dict[int, int] = {}
    headings, pos = [], 0
    for i, (_, text, marks) in enumerate(paragraphs):
        for offset, page in marks:
            starts.setdefault(page, pos + offset)
        if i in levels:
            headings.append((pos, levels[i]))
        pos += len(text) + 1
    text = "\n".join(t for _, t, _ in paragraphs)
    pages, nxt = [], len(text)
    for page in reversed(range(page_count)):  # a page with no text starts where the next one does
        nxt = starts.get(page, nxt)
        pages.append(nxt)
    return Extracted(text, tuple(headings), tuple(reversed(pages)), title)
