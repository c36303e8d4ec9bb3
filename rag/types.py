"""The frozen records that flow through every stage.

`Block` (a paragraph-sized piece of a loaded file) -> `Passage` (what is indexed and retrieved)
-> `Citation` and `Answer`; a `Query` is a question with its settings, already checked
(`rag.query` makes one). Scores and other per-query values are added with `dataclasses.replace`;
nothing here is mutated. This module holds data only, no behaviour beyond small derived properties,
JSON conversion and named constructors.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.settings import DEFAULT_K, DEFAULT_MODE

ABSTAIN_MESSAGE = "The documents do not answer this."
Progress = Callable[[str, int, int], None]  # (stage, done, total): "read", "embed", "save", "wait"


@dataclass(frozen=True)
class Block:
    """A paragraph (or footnote, caption, list entry) of a file, with its exact character span."""

    start: int
    end: int
    heading: tuple[str, ...]
    kind: str = "paragraph"  # paragraph | footnote | caption


@dataclass(frozen=True)
class Document:
    """One source file: its path relative to the documents folder, its text and its structure."""

    doc: str
    text: str
    title: str
    year: int | None
    blocks: tuple[Block, ...]
    pages: tuple[int, ...] = ()  # page n (1-based) starts at text offset pages[n - 1]; () without pages

    def page_at(self, pos: int) -> int | None:
        """The 1-based page holding character `pos`, or None for a document without pages."""
        return (bisect.bisect_right(self.pages, pos) or 1) if self.pages else None


@dataclass(frozen=True)
class Passage:
    """A retrievable span of a source file. `text == file_text[start:end]` always holds."""

    doc: str
    start: int
    end: int
    text: str
    heading: tuple[str, ...] = ()
    title: str = ""
    year: int | None = None
    kind: str = "paragraph"
    score: float = 0.0
    line: int = 1  # 1-based line of `start` in the file
    page: int | None = None  # 1-based page of `start` (PDF); None for formats without pages
    page_breaks: tuple[int, ...] = ()  # offsets in the document where a later page starts inside this passage

    def page_at(self, pos: int) -> int | None:
        """The page of document offset `pos` inside this passage (None without pages)."""
        return None if self.page is None else self.page + bisect.bisect_right(self.page_breaks, pos)

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.start}-{self.end}"

    def to_json(self) -> dict:
        """Every field, JSON-ready (the heading as a list); the shape of `rag search --json` passages."""
        return {"doc": self.doc, "start": self.start, "end": self.end, "heading": list(self.heading),
                "title": self.title, "year": self.year, "kind": self.kind, "line": self.line,
                "page": self.page, "page_breaks": list(self.page_breaks), "score": self.score, "text": self.text}

    @classmethod
    def from_json(cls, row: dict) -> Passage:
        """The passage `to_json` gave (a missing score is 0)."""
        return cls(doc=row["doc"], start=row["start"], end=row["end"], text=row["text"],
                   heading=tuple(row["heading"]), title=row["title"], year=row["year"], kind=row["kind"],
                   score=row.get("score", 0.0), line=row["line"], page=row.get("page"),
                   page_breaks=tuple(row.get("page_breaks", ())))

    def context(self) -> str:
        """The text that is embedded and BM25-indexed: heading path (with title and year) + text."""
        head = [self.title] if self.title and (not self.heading or self.heading[0] != self.title) else []
        head += list(self.heading)
        return " > ".join(head) + "\n" + self.text if head else self.text


@dataclass(frozen=True)
class Citation:
    """A verified quote from a source file: `quote == file_text[start:end]`."""

    n: int
    doc: str
    start: int
    end: int
    quote: str
    passage: Passage

    @property
    def line(self) -> int:
        """1-based line of the quote's first character in the source file."""
        return self.passage.line + self.passage.text.count("\n", 0, max(0, self.start - self.passage.start))

    @property
    def page(self) -> int | None:
        """1-based page of the quote's first character (PDF), None for formats without pages."""
        return self.passage.page_at(self.start)


@dataclass(frozen=True)
class Answer:
    """What the assistant returns: text with `[n]` markers, its citations, and what it looked at."""

    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = field(default=(), repr=False)
    original_question: str = ""
    score: float = 0.0  # relevance of the best quoted sentence to the question (the abstention threshold's measure)
    reason: str = ""  # why it abstained, when it did

    @classmethod
    def abstain(cls, question: str, *, reason: str, original_question: str = "",
                passages: tuple[Passage, ...] = (), score: float = 0.0) -> Answer:
        """The documents do not answer `question`; `reason` says why, `passages` are the closest ones."""
        return cls(question, ABSTAIN_MESSAGE, True, (), tuple(passages), original_question, score, reason)

    @classmethod
    def cited(cls, question: str, text: str, citations: tuple[Citation, ...], *, original_question: str = "",
              passages: tuple[Passage, ...] = (), score: float = 0.0) -> Answer:
        """An answer whose `text` carries the `[n]` markers of `citations`."""
        return cls(question, text, False, tuple(citations), tuple(passages), original_question, score)


@dataclass(frozen=True)
class Query:
    """A question with its retrieval settings, checked and cleaned (`rag.query.make_query`)."""

    text: str
    k: int = DEFAULT_K
    mode: str = DEFAULT_MODE
    doc: str | None = None  # only this document (its path, file name or stem)
    year: int | None = None  # only documents of this year
