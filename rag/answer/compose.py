"""From scored sentences to the answer's text: choose what to quote, number it, verify it.

`choose` takes the best sentence and, when it fits, a runner-up scoring within `SECOND_MARGIN` of it
or else its better neighbour in the same paragraph (asked about two years, one sentence from each
year's document). `compose` writes each with its `[n]` marker after `verify` has checked the quote
against the source text. Does not score sentences or decide to abstain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rag.answer.score import Candidate
from rag.answer import weights
from rag.types import Answer, Citation, Passage


def verify(citation: Citation, source: str | None) -> bool:
    """True when the citation's quote is exactly `source` (its document's text) at its span."""
    if source is None or citation.doc != citation.passage.doc:
        return False
    return 0 <= citation.start < citation.end <= len(source) and source[citation.start:citation.end] == citation.quote


def choose(ranked: list[Candidate], years: set[int]) -> list[Candidate]:
    """The best sentence, with the runner-up when it scores within `SECOND_MARGIN` of it, else with
    its better-scoring neighbour in the same passage; the second only when both fit.

    Answers often sit in the sentence next to the one that repeats the question's words
    ("The V4 ... are friendly. [It is] the four countries of Poland, ..."), or in a close
    runner-up elsewhere; asked about two `years`, one sentence from each year's document."""
    best = ranked[0]
    if len(years) >= 2:
        other = next((c for c in ranked[1:] if c.passage.year in years and c.passage.year != best.passage.year), None)
        return [best] + ([other] if other else [])
    fits = [c for c in ranked[1:] if len(best.text) + len(c.text) < weights.MAX_ANSWER_CHARS
            and not _same_sentence(c, best)]  # overlapping passages hold the same sentence twice
    close = [c for c in fits[:1] if best.score - c.score < weights.SECOND_MARGIN]
    neighbours = close or [c for c in fits if c.passage == best.passage and abs(c.index - best.index) == 1]
    chosen = [best] + neighbours[:1]
    same_passage = all(c.passage == best.passage for c in chosen)
    return sorted(chosen, key=lambda c: c.start) if same_passage else chosen


def compose(question: str, original: str, chosen: list[Candidate], passages: Sequence[Passage], score: float,
            document_text: Callable[[str], str | None]) -> Answer:
    """The answer quoting `chosen`, each verified against `document_text(doc)` and numbered in order."""
    citations, parts = [], []
    for c in chosen:
        citation = Citation(len(citations) + 1, c.passage.doc, c.start, c.end, c.text, c.passage)
        if not verify(citation, document_text(citation.doc)):
            continue
        citations.append(citation)
        parts.append(f"{shorten(' '.join(c.text.split()))} [{citation.n}]")
    if not citations:
        return Answer.abstain(question, reason="no citation could be verified against the source files",
                              original_question=original, passages=tuple(passages), score=score)
    return Answer.cited(question, " ".join(parts), tuple(citations), original_question=original,
                        passages=tuple(passages), score=score)


def _same_sentence(a: Candidate, b: Candidate) -> bool:
    """Whether two candidates quote overlapping text of one file, or the same words."""
    return (a.passage.doc == b.passage.doc and a.start < b.end and b.start < a.end) or \
        " ".join(a.text.split()) == " ".join(b.text.split())


def shorten(text: str, limit: int | None = None) -> str:
    """`text` cut at a word to `limit` (`MAX_ANSWER_CHARS`) characters, with " …" when cut."""
    limit = weights.MAX_ANSWER_CHARS if limit is None else limit
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;: ") + " …"
