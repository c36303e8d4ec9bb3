"""The frozen records that flow through every stage.

`Block` (a paragraph-sized piece of a loaded file) -> `Passage` (what is indexed and retrieved)
-> `Citation` and `Answer`. Scores and other per-query values are added with
`dataclasses.replace`; nothing here is mutated. This module holds data only, no behaviour
beyond small derived properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.start}-{self.end}"

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
