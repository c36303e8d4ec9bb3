"""`Assistant`: a short answer with verified sentence-level citations, or an honest abstention.

One question goes: follow-up rewriting from the conversation (`followup`) -> passages from the
`Searcher` (from each year's document when two years are named) -> candidate sentences scored
(`score`) -> the one that holds the kind of answer asked for (`kinds`), with a second when it adds
(`compose.choose`) -> the evidence checks (`evidence`), which may abstain with a reason in plain
words (`reasons`) -> the cited answer, every quote verified against the source text
(`compose.compose`). An optional `Generator` (`generate`) writes the text instead; its sentences go
through the same verification. Does not build indexes or render anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rag.answer.compose import choose, compose, verify
from rag.answer.evidence import EvidenceCheck, context
from rag.answer.followup import rewrite
from rag.answer.generate import Generator, verified_answer
from rag.answer.kinds import Asked, asked_for, holds, with_other_names
from rag.answer.reasons import refusal
from rag.answer.score import Candidate, candidates, score
from rag.answer.searcher import Searcher
from rag.query import clean_history, make_query
from rag.settings import DEFAULT_INDEX, DEFAULT_K, DEFAULT_MODE
from rag.types import Answer, Citation, Passage, Query


class Assistant:
    """Answers questions over one searcher. Load once, ask many times (thread-safe for reads)."""

    def __init__(self, retriever: Searcher, *, k: int = DEFAULT_K, mode: str = DEFAULT_MODE,
                 generator: Generator | None = None, min_relevance: float | None = None):
        self.retriever = retriever
        self.k, self.mode, self.generator = k, mode, generator
        self.evidence = EvidenceCheck(retriever, min_relevance)

    @classmethod
    def load(cls, index_dir: str | Path = DEFAULT_INDEX, *, store=None, **kwargs) -> Assistant:
        """The assistant over the index at `index_dir`, or at `store` when given (a directory, a Milvus
        URI such as `milvus://HOST:PORT/COLLECTION` or `milvus:PATH.db`, or a `Store`)."""
        from rag.search.retriever import Retriever

        return cls(Retriever.load(index_dir, store=store), **kwargs)

    def verify(self, citation: Citation) -> bool:
        """True when the citation's quote is exactly its source's text at its span."""
        return verify(citation, self.retriever.document_text(citation.doc))

    def ask(self, question: str, history: Sequence[tuple[str, str]] = (), *, k: int | None = None,
            mode: str | None = None, doc: str | None = None, year: int | None = None) -> Answer:
        """Answer `question` (a follow-up is first rewritten from `history`, a sequence of
        `(question, answer_text)` turns); `k`, `mode`, `doc` and `year` narrow the retrieval.
        InputError for a question or setting that cannot be used (`rag.query`)."""
        years = [y for y in self.retriever.years.values() if y]
        query = make_query(question, k=self.k if k is None else k, mode=mode or self.mode, doc=doc, year=year,
                           docs=self.retriever.docs, years=years)
        return self.answer(query, clean_history(history))

    def answer(self, query: Query, history: Sequence[tuple[str, str]] = ()) -> Answer:
        """Answer a checked `query` given cleaned `history`."""
        original = query.text
        years = {y for y in self.retriever.years.values() if y}
        standalone = rewrite(original, history, background=self.evidence.background, doc_years=years)
        query = replace(query, text=standalone)
        passages = self._retrieve(query)
        if not passages:
            return Answer.abstain(standalone, reason="no passage matched", original_question=original)
        if self.generator is not None:
            return verified_answer(self.generator, standalone, original, passages, self.retriever.document_text)
        ranked = score(self.retriever, standalone, candidates(passages))
        aliases = self.retriever.aliases
        asked = with_other_names(asked_for(standalone), aliases.expand) if aliases is not None else asked_for(standalone)
        years = self.retriever.named_years(standalone)
        chosen = self._choose(ranked, years, asked, query)
        best = round(max(c.relevance for c in chosen), 4) if chosen else 0.0
        unknown = self.evidence.unmentioned(standalone, chosen or ranked[:1]) if ranked else ""
        gap = unknown or self.evidence.gap(standalone, chosen)
        if gap:
            reason = unknown or refusal(standalone, passages, self.evidence.background, self._year(years, query))
            return Answer.abstain(standalone, reason=reason, original_question=original, passages=tuple(passages),
                                  score=best)
        return compose(standalone, original, chosen, passages, best, self.retriever.document_text)

    def _choose(self, ranked: list[Candidate], years: set[int], asked: Asked, query: Query) -> list[Candidate]:
        """The sentences to quote: the one that holds the kind of answer asked for first; asked about one
        document's year, only sentences of that year's document or that name the year."""
        year = self._year(years, query)
        if year is not None:
            ranked = [c for c in ranked if c.passage.year == year or str(year) in c.text]
        if not ranked:
            return []
        return choose(ranked, years, lambda c: holds(asked, c.text, c.before, context(c)), self.evidence.min_relevance,
                      self.evidence.names_all(asked.question), asked.strict)

    @staticmethod
    def _year(years: set[int], query: Query) -> int | None:
        """The one document year the question asks about (not when a year filter already applies)."""
        return next(iter(years)) if len(years) == 1 and query.year is None and query.doc is None else None

    def _retrieve(self, query: Query) -> list[Passage]:
        """The passages for `query`; asked about two or more years, the best of each year's in turn."""
        years = self.retriever.named_years(query.text)
        if query.year is not None or query.doc is not None or len(years) < 2:
            return self.retriever.retrieve(query)
        per_year = [self.retriever.retrieve(replace(query, k=max(2, query.k // 2), year=y)) for y in sorted(years)]
        return [p for group in zip(*per_year) for p in group][:query.k]
