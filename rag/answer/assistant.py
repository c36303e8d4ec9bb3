"""`Assistant`: a short answer with verified sentence-level citations, or an honest abstention.

One question goes: follow-up rewriting from the conversation (`followup`) -> passages from the
`Searcher` (from each year's document when two years are named) -> candidate sentences scored
(`score`) -> the one that holds the kind of answer asked for (`kinds`), with a second when it adds
(`compose.choose`) -> the evidence checks (`evidence`), which may abstain with a reason in plain
words (`reasons`) -> the cited answer, every quote verified against the source text
(`compose.compose`). An optional `Generator` (`generate`) writes the text instead; its sentences go
through the same verification. An optional reader (`reader`: a cross-encoder) reranks the passages
first, from `READER_POOL` times as many, and reads each candidate sentence: its probability is blended
into the sentence's relevance, and a sentence it scores under `READER_ANSWERS` is not quoted as the
answer (none left: an abstention). Does not build indexes or render anything.
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
from rag.answer.reader import Reader, as_reader, rerank
from rag.answer.reasons import refusal
from rag.answer.score import Candidate, candidates, score
from rag.answer.searcher import Searcher
from rag.answer import weights
from rag.query import clean_history, make_query
from rag.settings import DEFAULT_INDEX, DEFAULT_K, DEFAULT_MODE, MAX_K
from rag.types import Answer, Citation, Passage, Query


class Assistant:
    """Answers questions over one searcher. Load once, ask many times (thread-safe for reads)."""

    def __init__(self, retriever: Searcher, *, k: int = DEFAULT_K, mode: str = DEFAULT_MODE,
                 generator: Generator | None = None, min_relevance: float | None = None,
                 reader: Reader | str | object | None = None):
        """`reader`: a sentence-transformers CrossEncoder's name or folder (loaded on first use, from
        local files only), an object with `predict(pairs)`, or a `Reader`; None answers without one."""
        self.retriever = retriever
        self.k, self.mode, self.generator = k, mode, generator
        self.reader = as_reader(reader)
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
        passages = self._read(query)
        if not passages:
            return Answer.abstain(standalone, reason="no passage matched", original_question=original)
        if self.generator is not None:
            return verified_answer(self.generator, standalone, original, passages, self.retriever.document_text)
        ranked = score(self.retriever, standalone, candidates(passages), self.reader)
        aliases = self.retriever.aliases
        asked = with_other_names(asked_for(standalone), aliases.expand) if aliases is not None else asked_for(standalone)
        years = self.retriever.named_years(standalone)
        chosen = self._choose(ranked, years, asked, query)
        best = round(max(c.relevance for c in chosen), 4) if chosen else 0.0
        unknown = self.evidence.unmentioned(standalone, chosen or ranked[:1]) if ranked else ""
        gap = unknown or self.evidence.gap(standalone, chosen) or self._unread(chosen)
        if gap:
            reason = unknown or refusal(standalone, passages, self.evidence.background, self._year(years, query))
            return Answer.abstain(standalone, reason=reason, original_question=original, passages=tuple(passages),
                                  score=best)
        return compose(standalone, original, chosen, passages, best, self.retriever.document_text)

    def _choose(self, ranked: list[Candidate], years: set[int], asked: Asked, query: Query) -> list[Candidate]:
        """The sentences to quote: the one that holds the kind of answer asked for first; asked about one
        document's year, only sentences of that year's document or that name the year; asked about a
        country, none about other countries alone (`EvidenceCheck.elsewhere`)."""
        year = self._year(years, query)
        if year is not None:
            ranked = [c for c in ranked if c.passage.year == year or str(year) in c.text]
        elsewhere = self.evidence.elsewhere(asked.question)
        ranked = [c for c in ranked if not elsewhere(c)]  # about another country than the one asked about
        if not ranked:
            return []

        on_topic = self.evidence.on_topic(asked.question) if asked.strict else (lambda c: True)

        def answers(c: Candidate) -> bool:
            return holds(asked, c.text, c.before, context(c)) and self._answers(c) and on_topic(c)

        return choose(ranked, years, answers, self.evidence.min_relevance, self.evidence.names_all(asked.question),
                      asked.strict)

    @staticmethod
    def _answers(c: Candidate) -> bool:
        """Whether the reader, if any, scores the sentence as an answer."""
        return c.answerable is None or c.answerable >= weights.READER_ANSWERS

    def _unread(self, chosen: list[Candidate]) -> str:
        """Why the reader finds no answer among the quoted sentences, or ''."""
        if self.reader is None or any(self._answers(c) for c in chosen):
            return ""
        return "the reader scores no quoted sentence as an answer"

    @staticmethod
    def _year(years: set[int], query: Query) -> int | None:
        """The one document year the question asks about (not when a year filter already applies)."""
        return next(iter(years)) if len(years) == 1 and query.year is None and query.doc is None else None

    def _read(self, query: Query) -> list[Passage]:
        """The passages for `query`; with a reader, the best `query.k` by the reader of `READER_POOL`
        times as many."""
        if self.reader is None:
            return self._retrieve(query)
        pool = self._retrieve(replace(query, k=min(MAX_K, max(query.k, weights.READER_POOL * query.k))))
        return rerank(self.reader, query.text, pool)[:query.k]

    def _retrieve(self, query: Query) -> list[Passage]:
        """The passages for `query`; asked about two or more years, the best of each year's in turn."""
        years = self.retriever.named_years(query.text)
        if query.year is not None or query.doc is not None or len(years) < 2:
            return self.retriever.retrieve(query)
        per_year = [self.retriever.retrieve(replace(query, k=max(2, query.k // 2), year=y)) for y in sorted(years)]
        return [p for group in zip(*per_year) for p in group][:query.k]
