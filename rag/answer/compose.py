"""From scored sentences to the answer's text: choose what to quote, number it, verify it.

`choose` takes the sentence that answers (the best one holding the kind of answer asked for) and,
when it fits and adds to the answer, a runner-up scoring within `SECOND_MARGIN` of it or else its
better neighbour in the same paragraph, never the same sentence twice (asked about two years, one
sentence from each year's document). `compose` writes each with its `[n]` marker after `verify` has checked the quote
against the source text. Does not score sentences or decide to abstain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.answer.score import Candidate
from rag.answer import weights
from rag.types import Answer, Citation, Passage

_WORD = re.compile(r"[a-z0-9]+")
_NAME = re.compile(r"\b[A-Z][\w'’-]+|\d+")
_MARK = re.compile(r"(?<=[a-z)\],])\(?(\d{1,2})\)?(?=[\s,.;:]|$)")  # a footnote mark: "countries1", "Facility,(2)"
_NOTE = re.compile(r"-?\s*\(?(\d{1,2})\)?\s")  # the mark a footnote opens with: "- 1 ", "- (1) "


def verify(citation: Citation, source: str | None) -> bool:
    """True when the citation's quote is exactly `source` (its document's text) at its span."""
    if source is None or citation.doc != citation.passage.doc:
        return False
    return 0 <= citation.start < citation.end <= len(source) and source[citation.start:citation.end] == citation.quote


def choose(ranked: list[Candidate], years: set[int], answers: Callable[[Candidate], bool] | None = None,
           min_relevance: float = float("-inf"), about: Callable[[Candidate], bool] | None = None,
           strict: bool = True) -> list[Candidate]:
    """The sentence that answers, first, with a second one only when it adds to the answer; [] when no
    sentence holds what is asked for.

    The quoted sentences are the best one and, when it fits, the runner-up scoring within
    `SECOND_MARGIN` of it, else its better-scoring neighbour in the same passage (answers often sit
    next to the sentence that repeats the question's words: "The V4 ... are friendly. [It is] the
    four countries of Poland, ..."), or, when the best one carries a footnote mark ("countries1") and
    that footnote was retrieved, the footnote ("- 1 Cambodia (host nation), ..."); never the same
    sentence again (from an overlapping passage or another paragraph); asked about two `years`, one sentence from each year's document. The one
    that holds what is asked for (`answers`) comes first, and the other stays only when it holds it
    too; when neither does, the next best sentence that does and is still about the question
    (relevance at least `min_relevance`, and `about`: it names what the question names), else [].
    Without `strict` (a kind that common words may answer: "Where ...?" "along the coast") the
    quoted sentences stay as they are."""
    answers, about = answers or (lambda c: True), about or (lambda c: True)
    quoted = _pair(ranked[0], ranked, years)
    if not strict:
        return quoted
    holding = [c for c in quoted if answers(c)]
    if holding:
        return sorted(holding, key=lambda c: c.start) if len(holding) > 1 and _one_passage(holding) else holding
    best = next((c for c in ranked[1:] if c.relevance >= min_relevance and about(c) and answers(c)), None)
    return [c for c in _pair(best, ranked, years) if c is best or answers(c)] if best else []


def _pair(best: Candidate, ranked: list[Candidate], years: set[int]) -> list[Candidate]:
    """`best` with its runner-up or neighbour (see `choose`), in reading order within one passage."""
    if len(years) >= 2:
        other = next((c for c in ranked if c.passage.year in years and c.passage.year != best.passage.year), None)
        return [best] + ([other] if other else [])
    rest = [c for c in ranked if c is not best]
    fits = [c for c in rest if len(best.text) + len(c.text) < weights.MAX_ANSWER_CHARS
            and not _same_sentence(c, best)]
    note = _footnote(best, fits)
    if note is not None:  # "... regional coordinator countries1 ...": its footnote says which
        return [best, note]
    close = [c for c in fits[:1] if best.score - c.score < weights.SECOND_MARGIN]
    neighbours = close or [c for c in fits if c.passage == best.passage and abs(c.index - best.index) == 1]
    chosen = [best] + neighbours[:1]
    return sorted(chosen, key=lambda c: c.start) if _one_passage(chosen) else chosen


def _footnote(best: Candidate, ranked: list[Candidate]) -> Candidate | None:
    """The footnote that a mark in `best` points to ("countries1", "Facility,(2)"), when it was retrieved:
    the first sentence of the nearest footnote with that number after `best` in its document (numbers
    restart from section to section), else None."""
    marks = {m.group(1) for m in _MARK.finditer(best.text)}
    if not marks:
        return None
    notes = [c for c in ranked if c.passage.kind == "footnote" and c.passage.doc == best.passage.doc and c.index == 0
             and c.passage.start > best.end and (m := _NOTE.match(c.passage.text)) and m.group(1) in marks]
    return min(notes, key=lambda c: c.passage.start, default=None)


def _one_passage(chosen: list[Candidate]) -> bool:
    return all(c.passage == chosen[0].passage for c in chosen)


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
    """Whether two candidates quote overlapping text of one file, or (nearly) the same words: the same
    sentence from two paragraphs ("Mr. X became the first ..." and "Mr. X took office as the first ...")."""
    if a.passage.doc == b.passage.doc and a.start < b.end and b.start < a.end:
        return True
    wa, wb = set(_WORD.findall(a.text.lower())), set(_WORD.findall(b.text.lower()))
    if not wa or not wb or len(wa & wb) / min(len(wa), len(wb)) < weights.SAME_SENTENCE:
        return False
    na, nb = set(_NAME.findall(a.text)), set(_NAME.findall(b.text))
    return na <= nb or nb <= na  # one names something the other does not: another fact ("Slovakia: ...")


def shorten(text: str, limit: int | None = None) -> str:
    """`text` cut at a word to `limit` (`MAX_ANSWER_CHARS`) characters, with " …" when cut."""
    limit = weights.MAX_ANSWER_CHARS if limit is None else limit
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;: ") + " …"
