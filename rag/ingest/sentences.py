"""Sentence boundaries inside a span of text, as character offsets.

Rule-based and deterministic: a sentence ends at `.`, `!` or `?` (possibly followed by closing quotes
or brackets and a footnote marker such as "(3)") when white space and an upper-case letter, digit or
opening quote follow. Abbreviations ("Mr.", "No.", "approx.", "e.g."), initials and dotted acronyms
("U.S.", "D.C.", "C. J.") do not end a sentence. Used by the chunker (to split long paragraphs) and by
the answerer (to pick and cite sentences). Knows nothing about documents or passages.
"""

from __future__ import annotations

import re

ABBREVIATIONS = (
    "Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Mt", "No", "Nos", "Jr", "Sr", "Gen", "Col", "Lt", "Sgt", "Capt",
    "Rev", "Hon", "Gov", "Sen", "Rep", "Pres", "Inc", "Ltd", "Co", "Corp", "vs", "etc", "approx", "al",
    "Fig", "Vol", "pp", "ca", "cf", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept",
    "Oct", "Nov", "Dec", "Art", "Para", "Sec", "Ch", "Op", "Ave", "Blvd", "Dept", "Univ", "est",
)
# Python's look-behind needs a fixed width, so each abbreviation gets its own.
_NOT_ABBREV = "".join(rf"(?<!\b{re.escape(a)}\.)" for a in ABBREVIATIONS)
_NOT_INITIAL = r"(?<!\b[A-Z]\.)(?<!\b[a-z]\.)(?<!\be\.g\.)(?<!\bi\.e\.)" + _NOT_ABBREV  # "U.S.", "Mr."
_NEXT = r"(?=\s+[\"“‘'(\[]?[A-Z0-9])"
SENTENCE_END = re.compile(
    r"[.!?]+[\"”’')\]]*(?:\(\d{1,3}\)|\[\w{1,3}\]|\d{1,2}(?=\s))?"  # end mark, closers, footnote marker
    + _NOT_INITIAL + _NEXT
)
# The same boundary as a separator (the white space between sentences), for langchain-text-splitters.
SEPARATOR = (
    r"(?:(?<=[.!?])|(?<=[.!?][\"”’')\]])|(?<=[.!?]\(\d\))|(?<=[.!?]\(\d\d\)))"
    + _NOT_INITIAL + r"\s+(?=[\"“‘'(\[]?[A-Z0-9])"
)


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences in `text[start:end]`, trimmed of white space."""
    end = len(text) if end is None else end
    spans, pos = [], start
    for m in SENTENCE_END.finditer(text, start, end):
        spans.append((pos, m.end()))
        pos = m.end()
    spans.append((pos, end))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out
