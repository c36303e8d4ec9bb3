"""Whether the chosen sentences answer the question: the checks behind an abstention.

`EvidenceCheck.gap` names the first gap, or returns '': a name in the question that the documents
never mention (other names for what they name, diacritics and small typos forgiven; `unmentioned`);
a country the question names that the quoted evidence never names (unless most passages name it:
the documents' own country); or quoted sentences that are not about the question (relevance under
`MIN_RELEVANCE`, when sentence vectors took part). Whether the evidence holds the kind of answer
asked for is `rag.answer.kinds`. Does not score or compose, nor word the reason a person reads
(`rag.answer.reasons`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from functools import cached_property

from rag.answer.score import Candidate
from rag.answer.searcher import Searcher
from rag.answer import weights
from rag.index import lexical
from rag.search.names import fold, mentions, names, stem_prefix, words

# words that ask rather than say what about: question words, auxiliaries, the kind of answer asked for
_ASKING = set("""what which who whom whose when where why how did do does is are was were has have had will would can
could should may might year years date month day days time number amount total name names called long old many
much""".split())
_LABEL = re.compile(r"([A-Z][\w .'’-]{1,40}):\s")


class EvidenceCheck:
    """The abstention checks over one searcher's documents."""

    def __init__(self, searcher: Searcher, min_relevance: float | None = None):
        self.searcher = searcher
        self.min_relevance = weights.MIN_RELEVANCE if min_relevance is None else min_relevance

    @cached_property
    def _vocabulary(self) -> list[str] | None:
        """The indexed terms without diacritics, sorted for prefix look-ups (None without statistics)."""
        stats = self.searcher.term_stats
        return sorted({fold(t) for t in stats.vocabulary}) if stats is not None else None

    def gap(self, question: str, chosen: Sequence[Candidate]) -> str:
        """Why the chosen sentences do not answer the question, or '' when they may."""
        if not chosen:
            return "no sentence to quote"
        missing = self.unmentioned(question, chosen) or self._missing_country(question, chosen)
        if missing:
            return missing
        relevance = max(c.relevance for c in chosen)
        if relevance < self.min_relevance and any(c.dense for c in chosen):  # else no cosines to judge by
            return f"the evidence is not about the question (relevance {relevance:.2f} < {self.min_relevance})"
        return ""

    def unmentioned(self, question: str, chosen: Sequence[Candidate]) -> str:
        """A name in the question that the documents (without term statistics: the evidence) never mention."""
        if self._vocabulary is not None:
            aliases = self.searcher.aliases
            for name, needed in names(question):
                other_names = words(" ".join(aliases.forms(name))) if aliases else []  # "Britain": the UK
                if not all(self._known(w) or w in other_names for w in needed):
                    return f"the documents never mention {name!r}"
        else:  # no corpus vocabulary (e.g. the LangChain baseline): look in the evidence itself
            context = words(" ".join(c.passage.context() + " " + c.text for c in chosen))
            for name, needed in names(question):
                if not mentions(needed, context):
                    return f"the evidence does not mention {name!r}"
        return ""

    def names_all(self, question: str) -> Callable[[Candidate], bool]:
        """Whether a candidate sentence (with its heading, label and the sentence before a leading
        pronoun) names every name of `question` that is not the documents' own."""
        aliases = self.searcher.aliases
        expanded = aliases.expand(question) if aliases is not None else question
        needed = [n for name, n in names(expanded) if not self.background(name)]

        def about(c: Candidate) -> bool:
            setting = _setting(c, aliases) if aliases is not None else (*c.passage.heading[-1:], _label(c.passage.text))
            context = words(" ".join((c.text, c.before, *setting)))
            return all(mentions(n, context) for n in needed)
        return about

    def on_topic(self, question: str) -> Callable[[Candidate], bool]:
        """Whether a candidate sentence (with the sentence before a leading pronoun, its heading and label)
        shares a word with what `question` asks about beyond the countries it names and the words that
        only ask ("when", "what year", "how many"): a date, count or person is only an answer when it
        belongs to the event asked about ("When did Sweden join NATO?" is not answered by "Sweden: In
        April, the prime ministers held a telephone call")."""
        aliases = self.searcher.aliases
        countries = aliases.countries(question) if aliases is not None else set()
        skip = {lexical.stem(w) for name in countries for w in words(name)}
        terms = {t for w in words(question) if w not in _ASKING and not w.isdigit()
                 and (t := lexical.stem(fold(w))) and t not in skip}
        if not terms:
            return lambda c: True

        def shares(c: Candidate) -> bool:
            seen = {lexical.stem(fold(w)) for w in words(" ".join((c.text, c.before, context(c))))}
            return bool(terms & seen)
        return shares

    def elsewhere(self, question: str) -> Callable[[Candidate], bool]:
        """Whether a candidate sentence is about other countries than the ones `question` asks about: it
        (with the sentence before a leading pronoun and its setting: a country label, else its heading and
        label) names countries, none of them asked about ("Slovenia: ... Kono's visit to Slovenia" for
        "Which minister visited Ukraine?"). The documents' own country does not count; False without
        other names or term statistics, or when the question names no country."""
        asked = self._asked_countries(question)

        def other(c: Candidate) -> bool:
            named = {n for n in self._countries_of(c) if not self._background(n)}
            return bool(named) and not named & asked
        return other if asked else (lambda c: False)

    def _asked_countries(self, question: str) -> set[str]:
        """The countries `question` names by name (not demonym), the documents' own aside; none without
        other names or term statistics."""
        aliases = self.searcher.aliases
        if aliases is None or self.searcher.term_stats is None:
            return set()
        return {country for country in aliases.countries(question, demonyms=False) if not self._background(country)}

    def _countries_of(self, c: Candidate) -> set[str]:
        """The countries a candidate sentence names, with the sentence before a leading pronoun and its
        setting (`_setting`)."""
        aliases = self.searcher.aliases
        return aliases.countries(" ".join((c.text, c.before, *_setting(c, aliases))))

    def _known(self, word: str) -> bool:
        """Whether some indexed term starts like `word` (so "Danish" ~ "denmark", "parliaments" ~ "parliament"),
        or is `word` misspelled: one edit in a word of 5 letters or more, two from 9 ("Sentanta" ~
        "Setanta"); diacritics aside ("Kucukdeveci" ~ "Kücükdeveci")."""
        indexed = lexical.stem(fold(word))
        if indexed is None:
            return True
        vocabulary = self._vocabulary
        prefix = stem_prefix(indexed)
        i = bisect.bisect_left(vocabulary, prefix)
        if i < len(vocabulary) and vocabulary[i].startswith(prefix):
            return True
        edits = next((n for letters, n in weights.TYPO_EDITS if len(indexed) >= letters), 0)
        if not edits:
            return False
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        return process.extractOne(indexed, vocabulary, scorer=Levenshtein.distance, score_cutoff=edits) is not None

    def _missing_country(self, question: str, chosen: Sequence[Candidate]) -> str:
        """A country the question names ("When did Sweden join NATO?") that the quoted sentences do not
        name (counting the sentence before a leading pronoun, the section heading and a leading
        "Finland:" label); the best sentence, which the answer rests on, must name at least one of
        them. A country most passages name (the documents' own, "Japan") is not checked, nor a
        demonym ("German ruler" may be answered by "Prussia")."""
        asked = self._asked_countries(question) if chosen else set()
        if not asked:
            return ""
        named = {c: self._countries_of(c) for c in chosen}  # each quoted sentence -> the countries it names
        best = max(chosen, key=lambda c: c.score)
        missing = sorted(asked - set().union(*named.values())) or ([] if asked & named[best] else sorted(asked))
        return f"the evidence does not mention {missing[0]}" if missing else ""

    def background(self, name: str) -> bool:
        """Whether most passages name `name` (the documents' own country), False without term statistics."""
        return self.searcher.term_stats is not None and bool(words(name)) and self._background(name)

    def _background(self, country: str) -> bool:
        """Whether most passages name `country` (the documents' own)."""
        stats = self.searcher.term_stats
        stems = [lexical.stem(w) for w in words(country)]
        return min((stats.df(t) for t in stems if t), default=0) >= weights.BACKGROUND_SHARE * stats.n


def context(c: Candidate) -> str:
    """What a sentence is read with beside its own words: its section heading and its paragraph's label."""
    return " ".join((*c.passage.heading[-1:], _label(c.passage.text)))


def _setting(c: Candidate, aliases) -> tuple[str, ...]:
    """Where a sentence's countries may come from beside itself: its paragraph's label when that names a
    country, else its section heading and the label."""
    label = _label(c.passage.text)
    return (label,) if label and aliases.countries(label) else (*c.passage.heading[-1:], label)


def _label(text: str) -> str:
    """A paragraph's leading label ("Finland: In November, ..."), or ''."""
    m = _LABEL.match(text)
    return m.group(1) if m else ""
