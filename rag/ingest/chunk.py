"""Turn `Document` blocks into `Passage`s, bounded by sections and paragraphs.

A block (paragraph, footnote with its URL, caption with its paragraph) that fits in `chunk_size`
characters is one passage. A longer one is split by langchain-text-splitters'
`RecursiveCharacterTextSplitter` on sentence boundaries (then clauses, then words) with a small
overlap. Blocks never merge, so a passage never straddles two sections. Each passage keeps its exact
span: `passage.text == document.text[passage.start:passage.end]`, its page (and the pages that
start inside it) for a document with pages, and the 1-based line of its start,
found by bisecting the document's newline offsets (listed once per document), so chunking stays
linear in the file's size.

Does not read files or embed anything.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from rag.errors import RagError
from rag.ingest.sentences import SEPARATOR
from rag.types import Document, Passage

_NEWLINE = re.compile("\n")


@dataclass(frozen=True)
class ChunkSettings:
    chunk_size: int = 1000
    chunk_overlap: int = 320  # whole sentences are carried over, so this must exceed a typical sentence

    def __post_init__(self) -> None:
        if self.chunk_size < 50:
            raise RagError(f"chunk_size of {self.chunk_size} is too small (at least 50 characters)")
        if not 0 <= self.chunk_overlap < self.chunk_size // 2:
            raise RagError(
                f"chunk_overlap of {self.chunk_overlap} must be between 0 and half of chunk_size {self.chunk_size}"
            )


def _splitter(settings: ChunkSettings):
    from langchain_text_splitters import RecursiveCharacterTextSplitter  # imported on first use: it is slow

    return RecursiveCharacterTextSplitter(
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        separators=["\n\n", "\n", SEPARATOR, r"(?<=[;:])\s+", r"(?<=,)\s+", r"\s+", ""],
        is_separator_regex=True,
        keep_separator="end",  # joins pieces with "", so chunks stay exact substrings
    )


def newline_offsets(text: str) -> list[int]:
    """Where every "\n" of `text` is, in order."""
    return [m.start() for m in _NEWLINE.finditer(text)]


def line_at(offsets: list[int], pos: int) -> int:
    """The 1-based line of character `pos`, given `newline_offsets` of its text: what
    `text.count("\n", 0, pos) + 1` gives, in O(log n)."""
    return bisect.bisect_left(offsets, pos) + 1


def _breaks(pages: tuple[int, ...], start: int, end: int) -> tuple[int, ...]:
    """The page starts strictly inside (start, end)."""
    return tuple(pages[bisect.bisect_right(pages, start):bisect.bisect_left(pages, end)])


def chunk_document(document: Document, settings: ChunkSettings = ChunkSettings()) -> list[Passage]:
    """The passages of one document, in file order."""
    splitter = _splitter(settings)
    newlines = newline_offsets(document.text) if document.blocks else []
    out: list[Passage] = []
    for block in document.blocks:
        pieces = [(block.start, block.end)]
        if block.end - block.start > settings.chunk_size:
            pieces, cursor = [], block.start
            for chunk in splitter.split_text(document.text[block.start:block.end]):
                at = document.text.find(chunk, cursor, block.end)
                if at < 0:  # the splitter only trims and cuts, so this cannot happen; fail loudly if it does
                    raise RagError(f"{document.doc}: chunk {chunk[:40]!r} not found in block at {block.start}")
                pieces.append((at, at + len(chunk)))
                cursor = at + 1
        for start, end in pieces:
            out.append(Passage(
                doc=document.doc, start=start, end=end, text=document.text[start:end],
                heading=block.heading, title=document.title, year=document.year, kind=block.kind,
                line=line_at(newlines, start), page=document.page_at(start),
                page_breaks=_breaks(document.pages, start, end),
            ))
    return out
