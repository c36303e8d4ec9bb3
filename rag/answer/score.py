"""Split retrieved passages into candidate sentences and score each against the question.

A sentence's score (weights in `rag.answer.weights`): its relevance, the cosine of its stored
vector with the question's plus the IDF-weighted share of the question's stemmed terms it holds (a
term only in its section heading, or in the sentence before one that opens with a pronoun, counts
`W_SECTION`); plus the share of the question's adjacent term pairs it holds in order, whether it
holds the kind of thing asked for that the question does not already give, the passage's rank, and
the share of the question's names its passage mentions. Other names for what the documents name
match ("ASEM" ~ "Asia-Europe Meeting"). With a reader (`rag.answer.reader`), the relevance is blended
with the reader's probability that the sentence (after the one before it, when it opens with a
pronoun) answers the question, `READER_WEIGHT` of it. Does not choose, check or compose.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from rag.answer.question import offers, question_type
from rag.answer.reader import Reader, answerability
from rag.answer.searcher import Searcher
from rag.answer import weights
from rag.index import lexical
from rag.ingest.sentences import split_sentences
from rag.search.names import needed_names
from rag.types import Passage

_LEADING_MARK = re.compile(r"^(-\s*)?(\(\d+\)|\d{1,2})\s+")
_PRONOUN = re.compile(r"(It|Its|They|Their|This|These|He|His|She|Her|The two)\b")


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage, with its span in the source file."""

    passage: Passage
    rank: int
    index: int  # position in split_sentences(passage.text): the row of its vector
    start: int
    end: int
    text: str
    score: float = 0.0
    relevance: float = 0.0  # the part of the score that says the sentence is about the question
    before: str = ""  # the previous sentence, when this one opens with a pronoun ("It currently comprises ...")
    dense: bool = False  # whether a sentence vector took part in the relevance
    answerable: float | None = None  # the reader's probability that it answers the question (None: no reader)


def candidates(passages: Sequence[Passage]) -> list[Candidate]:
    """The quotable sentences of `passages` (not URLs, not fragments under `MIN_QUOTE_CHARS`; a
    footnote's leading mark left out)."""
    out = []
    for rank, p in enumerate(passages):
        previous = ""
        for j, (s, e) in enumerate(split_sentences(p.text)):
            m = _LEADING_MARK.match(p.text[s:e])
            if m and p.kind == "footnote":
                s += m.end()
            text = p.text[s:e]
            before = previous if _PRONOUN.match(text) else ""
            previous = text
            if len(text) < weights.MIN_QUOTE_CHARS or text.startswith("http"):
                continue
            out.append(Candidate(p, rank, j, p.start + s, p.start + e, text, before=before))
    return out


def term_weights(searcher: Searcher, text: str) -> dict[str, float]:
    """The stemmed terms of `text`, each weighted by its IDF (1.0 without term statistics)."""
    stats = searcher.term_stats
    return {t: stats.idf(t) if stats is not None else 1.0 for t in set(lexical.tokenize([text])[0])}


def score(searcher: Searcher, question: str, found: list[Candidate], reader: Reader | None = None) -> list[Candidate]:
    """`found` scored against `question`, best first; with `reader`, each relevance blended with its answerability."""
    terms = term_weights(searcher, question)
    total = sum(terms.values()) or 1.0
    qtokens = lexical.tokenize([question])[0]
    qpairs = set(zip(qtokens, qtokens[1:]))
    qtype = question_type(question)
    similarity = _similarities(searcher, question, found)
    aliases = searcher.aliases
    expand = aliases.expand if aliases is not None else str
    asked = needed_names(expand(question))  # "Finnish": "Finland"; "EU": "European Union"
    named: dict[tuple[str, int], float] = {}  # passage -> share of the question's names it mentions
    # One tokenizer call for every sentence, the sentence before it and its heading (each call has overhead).
    n = len(found)
    tokens = lexical.tokenize([expand(c.text) for c in found] + [expand(c.before) for c in found]
                              + [expand(c.passage.heading[-1]) if c.passage.heading else "" for c in found]) if n else []
    readings: list[float | None] = [None] * n
    if reader is not None and n:
        readings = answerability(reader, question, [f"{c.before} {c.text}" if c.before else c.text for c in found])
    scored = []
    for i, (c, cos) in enumerate(zip(found, similarity)):
        key = (c.passage.doc, c.passage.start)
        if key not in named:
            named[key] = searcher.name_share(c.passage, asked)
        stokens = tokens[i]
        sent_terms = set(stokens)
        pairs = len(qpairs & set(zip(stokens, stokens[1:]))) / len(qpairs) if qpairs else 0.0
        context = set(tokens[2 * n + i]) | set(tokens[n + i])  # heading, and the sentence before a pronoun
        overlap = sum(w if t in sent_terms else weights.W_SECTION * w if t in context else 0.0
                      for t, w in terms.items()) / total
        type_ok = 1.0 if offers(qtype, c.text, question) else 0.0
        relevance = weights.W_DENSE * (cos or 0.0) + weights.W_LEXICAL * overlap
        if readings[i] is not None:
            relevance = (1 - weights.READER_WEIGHT) * relevance + weights.READER_WEIGHT * readings[i]
        total_score = (relevance + weights.W_BIGRAM * pairs + weights.W_TYPE * type_ok + weights.W_RANK / (1 + c.rank)
                       + weights.W_NAMES * named[key])
        scored.append(replace(c, score=total_score, relevance=relevance, dense=cos is not None,
                              answerable=readings[i]))
    scored.sort(key=lambda c: (-c.score, c.rank, c.start))
    return scored


def _similarities(searcher: Searcher, question: str, found: list[Candidate]) -> list[float | None]:
    """Cosine of each candidate sentence with the question (None where there is no sentence vector)."""
    out: list[float | None] = []
    cache: dict[tuple[str, int], np.ndarray | None] = {}
    query = None
    for c in found:
        key = (c.passage.doc, c.passage.start)
        if key not in cache:
            vectors = searcher.sentence_vectors(c.passage)
            if vectors is not None and query is None:
                query = searcher.embed_query(question)[0]
            cache[key] = None if vectors is None else np.einsum("ij,j->i", vectors, query)  # no BLAS threads
        sims = cache[key]
        own = None if sims is None else float(sims[c.index]) if c.index < len(sims) else 0.0
        if own is not None and c.before and 0 < c.index < len(sims):  # "It comprises ...": read after what "it" is
            own = max(own, (own + float(sims[c.index - 1])) / 2)
        out.append(own)
    return out
