"""`Assistant`: a short answer with verified sentence-level citations, or an honest abstention.

The offline answerer (the default) retrieves passages, splits them into sentences, scores each
sentence against the question (cosine of its stored vector with the question's, IDF-weighted overlap
of stemmed terms, the share of the question's adjacent term pairs it holds in order ("regional
coordinator"), whether it holds the kind of thing asked for (beyond what the question already says),
the passage's rank and whether the passage mentions the question's names; a question term in the
sentence's section heading, or in the sentence before one that opens with a pronoun, counts half;
abbreviations the documents define match their long forms), and answers with the best sentence and, when it fits, a close runner-up or else its
better neighbour, each with its `[n]` marker. Every citation is checked against the source file
before it is returned. It abstains, showing the closest passages, when the question names something
the documents never mention, when a "how many" question finds no such count, when the quoted
evidence never names a country the question names, or when no quoted sentence is about the question
(relevance below `MIN_RELEVANCE`). Follow-up questions are rewritten into standalone ones from the
conversation (`rag.followup`). An optional `Generator` (e.g. an OpenAI-compatible endpoint,
`rag.generate`) can write the text instead; its sentences go through the same verification. Does not
build indexes or render anything.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag import lexical
from rag.errors import RagError
from rag.followup import rewrite
from rag.question import fold, mentions, missing_slot, names, offers, question_type, stem_prefix, words
from rag.load import read_text
from rag.retrieve import Retriever
from rag.sentences import split_sentences
from rag.types import Answer, Citation, Passage

MAX_ANSWER_CHARS = 420
MAX_QUESTION_CHARS = 2000
ABSTAIN_MESSAGE = "The documents do not answer this."
# Calibrated with `python eval/calibrate.py` (see README): the lowest relevance that still answers.
MIN_RELEVANCE = 0.44  # 0.438 as last calibrated, to two places
_LEADING_MARK = re.compile(r"^(-\s*)?(\(\d+\)|\d{1,2})\s+")
_LABEL = re.compile(r"([A-Z][\w .'’-]{1,40}):\s")
_PRONOUN = re.compile(r"(It|Its|They|Their|This|These|He|His|She|Her|The two)\b")


@dataclass(frozen=True)
class _Candidate:
    passage: Passage
    rank: int
    index: int  # position in split_sentences(passage.text): the row of its vector
    start: int
    end: int
    text: str
    score: float = 0.0
    relevance: float = 0.0  # the part of the score that says the sentence is about the question
    before: str = ""  # the previous sentence, when this one opens with a pronoun ("It currently comprises ...")


# Weights of the sentence score, set once on the seed and SQuAD sets, not per question (a logistic fit on
# 2,013 other SQuAD-dev questions did not beat them at picking the sentence that holds the answer).
W_DENSE, W_LEXICAL, W_TYPE, W_RANK, W_NAMES = 1.0, 0.6, 0.15, 0.15, 0.3
# A country named in at least this share of the passages is the documents' own and is not checked.
BACKGROUND_SHARE = 0.5
# A runner-up sentence scoring within this of the best is quoted too (else the better neighbour, if any).
SECOND_MARGIN = 0.1
W_BIGRAM = 0.8  # share of the question's adjacent term pairs that the sentence holds in order
W_SECTION = 0.5  # a question term found only in the sentence's section heading counts half


@lru_cache(maxsize=64)
def _file_text(path: str, mtime_ns: int, size: int) -> str:
    return read_text(Path(path))


class Assistant:
    """Answers questions over one index. Load once, ask many times (thread-safe for reads)."""

    def __init__(self, retriever, *, k: int = 5, mode: str = "hybrid", docs: str | Path | None = None,
                 generator=None, min_relevance: float = MIN_RELEVANCE):
        self.retriever = retriever
        self.k, self.mode, self.generator, self.min_relevance = k, mode, generator, min_relevance
        manifest = getattr(getattr(retriever, "index", None), "manifest", None)
        self.docs = Path(docs) if docs is not None else (Path(manifest.docs) if manifest else None)
        self._df, self._passages = self._make_df()
        bm25 = getattr(getattr(retriever, "index", None), "bm25", None)
        self._vocabulary = sorted({fold(t) for t in bm25.vocab_dict}) if bm25 is not None else None  # prefix look-ups

    @classmethod
    def load(cls, index_dir: str | Path = "index", **kwargs) -> Assistant:
        return cls(Retriever.load(index_dir), **kwargs)

    # -- scoring -------------------------------------------------------------------------------
    def _make_df(self):
        """How many passages hold a term (None without a BM25 index), and how many passages there are."""
        bm25 = getattr(getattr(self.retriever, "index", None), "bm25", None)
        if bm25 is None:
            return None, 0
        vocab, indptr = bm25.vocab_dict, bm25.scores["indptr"]

        def df(term: str) -> int:
            j = vocab.get(term)
            return 0 if j is None else int(indptr[j + 1] - indptr[j])

        return df, int(bm25.scores["num_docs"])

    def _idf(self, term: str) -> float:
        if self._df is None:
            return 1.0
        df = self._df(term)
        return math.log(1 + (self._passages - df + 0.5) / (df + 0.5))

    def _known(self, word: str) -> bool:
        """Whether some indexed term starts like `word` (so "Danish" ~ "denmark", "parliaments" ~ "parliament"),
        or is `word` misspelled: one edit in a word of 5 letters or more, two from 9 ("Sentanta" ~
        "Setanta"); diacritics aside ("Kucukdeveci" ~ "Kücükdeveci")."""
        indexed = lexical.stem(fold(word))
        if indexed is None:
            return True
        prefix = stem_prefix(indexed)
        i = bisect.bisect_left(self._vocabulary, prefix)
        if i < len(self._vocabulary) and self._vocabulary[i].startswith(prefix):
            return True
        edits = 2 if len(indexed) >= 9 else 1 if len(indexed) >= 5 else 0
        if not edits:
            return False
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        return process.extractOne(indexed, self._vocabulary, scorer=Levenshtein.distance, score_cutoff=edits) is not None

    def _terms(self, text: str) -> dict[str, float]:
        return {t: self._idf(t) for t in set(lexical.tokenize([text])[0])}

    def _candidates(self, passages: Sequence[Passage]) -> list[_Candidate]:
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
                if len(text) < 15 or text.startswith("http"):
                    continue
                out.append(_Candidate(p, rank, j, p.start + s, p.start + e, text, before=before))
        return out

    def _score(self, question: str, candidates: list[_Candidate]) -> list[_Candidate]:
        terms = self._terms(question)
        total = sum(terms.values()) or 1.0
        qtokens = lexical.tokenize([question])[0]
        qpairs = set(zip(qtokens, qtokens[1:]))
        qtype = question_type(question)
        similarity = self._similarities(question, candidates)
        aliases = getattr(self.retriever, "aliases", None)
        expand = aliases.expand if aliases else str
        asked = [needed for _, needed in names(expand(question))]  # "Finnish": "Finland"; "EU": "European Union"
        named: dict[tuple[str, int], float] = {}  # passage -> share of the question's names it mentions
        # One tokenizer call for every sentence, the sentence before it and its heading (each call has overhead).
        n = len(candidates)
        tokens = lexical.tokenize([expand(c.text) for c in candidates] + [expand(c.before) for c in candidates]
                                  + [expand(c.passage.heading[-1]) if c.passage.heading else "" for c in candidates]) if n else []
        scored = []
        for i, (c, cos) in enumerate(zip(candidates, similarity)):
            key = (c.passage.doc, c.passage.start)
            if key not in named:
                if hasattr(self.retriever, "name_share"):
                    named[key] = self.retriever.name_share(c.passage, asked)
                else:  # e.g. the LangChain baseline
                    context = words(c.passage.context())
                    named[key] = sum(mentions(n, context) for n in asked) / len(asked) if asked else 1.0
            stokens = tokens[i]
            sent_terms = set(stokens)
            pairs = len(qpairs & set(zip(stokens, stokens[1:]))) / len(qpairs) if qpairs else 0.0
            context = set(tokens[2 * n + i]) | set(tokens[n + i])  # heading, and the sentence before a pronoun
            overlap = sum(w if t in sent_terms else W_SECTION * w if t in context else 0.0
                          for t, w in terms.items()) / total
            type_ok = 1.0 if offers(qtype, c.text, question) else 0.0
            relevance = W_DENSE * cos + W_LEXICAL * overlap
            score = relevance + W_BIGRAM * pairs + W_TYPE * type_ok + W_RANK / (1 + c.rank) + W_NAMES * named[key]
            scored.append(replace(c, score=score, relevance=relevance))
        scored.sort(key=lambda c: (-c.score, c.rank, c.start))
        return scored

    def _similarities(self, question: str, candidates: list[_Candidate]) -> list[float]:
        """Cosine of each candidate sentence with the question (0 where the index has no sentence vectors)."""
        if not hasattr(self.retriever, "sentence_vectors") or not candidates:
            return [0.0] * len(candidates)
        query = self.retriever.embed_query(question)[0]
        out, cache = [], {}
        for c in candidates:
            key = (c.passage.doc, c.passage.start)
            if key not in cache:
                vectors = self.retriever.sentence_vectors(c.passage)
                cache[key] = None if vectors is None else np.einsum("ij,j->i", vectors, query)  # no BLAS threads
            sims = cache[key]
            out.append(float(sims[c.index]) if sims is not None and c.index < len(sims) else 0.0)
        return out

    # -- verification --------------------------------------------------------------------------
    def verify(self, citation: Citation) -> bool:
        """True when the citation's quote is exactly the source file's text at its span."""
        source = self._source_text(citation.passage)
        if source is None or citation.doc != citation.passage.doc:
            return False
        return 0 <= citation.start < citation.end <= len(source) and source[citation.start:citation.end] == citation.quote

    def _source_text(self, passage: Passage) -> str | None:
        if self.docs is not None:
            path = self.docs / passage.doc
            try:
                st = path.stat()
                return _file_text(str(path), st.st_mtime_ns, st.st_size)
            except (OSError, RagError):
                return None
        return None

    # -- asking --------------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[tuple[str, str]] = (), *, k: int | None = None,
            mode: str | None = None, doc: str | None = None, year: int | None = None) -> Answer:
        """Answer `question` (a follow-up is first rewritten from `history`, a sequence of
        `(question, answer_text)` turns); `k`, `mode`, `doc` and `year` narrow the retrieval."""
        original = " ".join(str(question or "").split())[:MAX_QUESTION_CHARS]
        if not original:
            raise RagError("the question is empty")
        if not re.search(r"[^\W_]", original):  # a letter or digit
            raise RagError(f"the question {original!r} has no words to search for")
        standalone = rewrite(original, history)
        k, mode = (self.k if k is None else k), mode or self.mode
        passages = self._retrieve(standalone, k, mode, doc, year)
        if not passages:
            return Answer(standalone, ABSTAIN_MESSAGE, True, (), (), original, 0.0, "no passage matched")
        if self.generator is not None:
            return self._generated(standalone, original, passages)
        ranked = self._score(standalone, self._candidates(passages))
        chosen = self._choose(standalone, ranked) if ranked else []
        gap = self.evidence_gap(standalone, chosen) if chosen else "no sentence to quote"
        score = round(max(c.relevance for c in chosen), 4) if chosen else 0.0
        if gap:
            return Answer(standalone, ABSTAIN_MESSAGE, True, (), tuple(passages), original, score, gap)
        return self._compose(standalone, original, chosen, passages, score)

    def evidence_gap(self, question: str, chosen: Sequence[_Candidate]) -> str:
        """Why the chosen sentences do not answer the question, or '' when they may.

        Checks: every name in the question occurs somewhere in the documents, or is another name for
        one they use ("Britain" for "the United Kingdom"; a question about "Brexit" in documents that
        never mention it is not answered from a passage about the UK);
        a "how many X" question finds a number of X; the evidence names the countries the question
        names; and the quoted sentences are about the question: the best of them has a relevance
        (cosine with the question plus weighted term overlap) of at least `min_relevance`."""
        if self._vocabulary is not None:
            aliases = getattr(self.retriever, "aliases", None)
            for name, needed in names(question):
                other_names = words(" ".join(aliases.forms(name))) if aliases else []  # "Britain": the UK
                if not all(self._known(w) or w in other_names for w in needed):
                    return f"the documents never mention {name!r}"
        else:  # no corpus vocabulary (e.g. the LangChain baseline): look in the evidence itself
            context = words(" ".join(c.passage.context() + " " + c.text for c in chosen))
            for name, needed in names(question):
                if not mentions(needed, context):
                    return f"the evidence does not mention {name!r}"
        missing = missing_slot(question, " ".join(c.text for c in chosen)) or self._missing_country(question, chosen)
        if missing:
            return missing
        relevance = max(c.relevance for c in chosen)
        if relevance < self.min_relevance and hasattr(self.retriever, "sentence_vectors"):  # else no cosines
            return f"the evidence is not about the question (relevance {relevance:.2f} < {self.min_relevance})"
        return ""

    def _missing_country(self, question: str, chosen: Sequence[_Candidate]) -> str:
        """A country the question names ("When did Sweden join NATO?") that the quoted sentences do not
        name (counting the sentence before a leading pronoun, the section heading and a leading
        "Finland:" label); the best sentence, which the answer rests on, must name at least one of
        them. A country most passages name (the documents' own, "Japan") is not checked, nor a
        demonym ("German ruler" may be answered by "Prussia")."""
        aliases = getattr(self.retriever, "aliases", None)
        if aliases is None or self._df is None or not chosen:
            return ""
        asked = {country for country in aliases.countries(question, demonyms=False) if not self._background(country)}
        if not asked:
            return ""
        named = {c: aliases.countries(" ".join((c.text, c.before, *c.passage.heading[-1:], _label(c.passage.text))))
                 for c in chosen}  # each quoted sentence -> the countries it (or its context) names
        best = max(chosen, key=lambda c: c.score)
        missing = sorted(asked - set().union(*named.values())) or ([] if asked & named[best] else sorted(asked))
        return f"the evidence does not mention {missing[0]}" if missing else ""

    def _background(self, country: str) -> bool:
        """Whether most passages name `country` (the documents' own)."""
        stems = [lexical.stem(w) for w in words(country)]
        return min((self._df(t) for t in stems if t), default=0) >= BACKGROUND_SHARE * self._passages

    def _retrieve(self, question: str, k: int, mode: str, doc: str | None, year: int | None) -> list[Passage]:
        years = self.retriever.named_years(question) if hasattr(self.retriever, "named_years") else set()
        if year is not None:
            return self.retriever.search(question, k=k, mode=mode, doc=doc, year=year)
        if len(years) >= 2 and doc is None:  # a comparison across years: evidence from each year
            per_year = [self.retriever.search(question, k=max(2, k // 2), mode=mode, year=y) for y in sorted(years)]
            merged = [p for group in zip(*per_year) for p in group]
            return merged[:k]
        return self.retriever.search(question, k=k, mode=mode, doc=doc)

    def _choose(self, question: str, ranked: list[_Candidate]) -> list[_Candidate]:
        """The best sentence, with the runner-up when it scores within `SECOND_MARGIN` of it, else with
        its better-scoring neighbour in the same passage; the second only when both fit.

        Answers often sit in the sentence next to the one that repeats the question's words
        ("The V4 ... are friendly. [It is] the four countries of Poland, ..."), or in a close
        runner-up elsewhere; asked about two years, one sentence from each year's document."""
        best = ranked[0]
        years = self.retriever.named_years(question) if hasattr(self.retriever, "named_years") else set()
        if len(years) >= 2:
            other = next((c for c in ranked[1:] if c.passage.year in years and c.passage.year != best.passage.year), None)
            return [best] + ([other] if other else [])
        fits = [c for c in ranked[1:] if len(best.text) + len(c.text) < MAX_ANSWER_CHARS
                and not _same_sentence(c, best)]  # overlapping passages hold the same sentence twice
        close = [c for c in fits[:1] if best.score - c.score < SECOND_MARGIN]
        neighbours = close or [c for c in fits if c.passage == best.passage and abs(c.index - best.index) == 1]
        chosen = [best] + neighbours[:1]
        same_passage = all(c.passage == best.passage for c in chosen)
        return sorted(chosen, key=lambda c: c.start) if same_passage else chosen

    def _compose(self, question: str, original: str, chosen: list[_Candidate], passages, score: float) -> Answer:
        citations, parts = [], []
        for c in chosen:
            citation = Citation(len(citations) + 1, c.passage.doc, c.start, c.end, c.text, c.passage)
            if not self.verify(citation):
                continue
            citations.append(citation)
            parts.append(f"{_shorten(' '.join(c.text.split()))} [{citation.n}]")
        if not citations:
            return Answer(question, ABSTAIN_MESSAGE, True, (), tuple(passages), original, score,
                          "no citation could be verified against the source files")
        return Answer(question, " ".join(parts), False, tuple(citations), tuple(passages), original, score)

    def _generated(self, question: str, original: str, passages: list[Passage]) -> Answer:
        from rag.generate import verified_answer

        return verified_answer(self, question, original, passages)


def _same_sentence(a: _Candidate, b: _Candidate) -> bool:
    """Whether two candidates quote overlapping text of one file, or the same words."""
    return (a.passage.doc == b.passage.doc and a.start < b.end and b.start < a.end) or \
        " ".join(a.text.split()) == " ".join(b.text.split())


def _label(text: str) -> str:
    """A paragraph's leading label ("Finland: In November, ..."), or ''."""
    m = _LABEL.match(text)
    return m.group(1) if m else ""


def _shorten(text: str, limit: int = MAX_ANSWER_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;: ") + " …"

