"""What a question asks for, read offline: its kind (when / how many / who / where), whether a
sentence offers something of that kind, and whether a "how many X" question finds a number next to X
in the evidence. Used by the answerer to score sentences and to decide when to abstain. The names in
a question are `rag.search.names`. Does not retrieve or answer.
"""

from __future__ import annotations

import re

from rag.index import lexical
from rag.search.names import MONTH, words
from rag.settings import YEAR, YEAR_PATTERN

TYPE_PATTERNS = {
    "when": re.compile(rf"\b({MONTH}|{YEAR_PATTERN}|century|decade)\b"),
    "number": re.compile(r"\d+(?:[.,]\d+)*|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                         r"hundred|thousand|million|billion|first|second|third|fourth|fifth|dozens?|several)\b", re.I),
    "who": re.compile(r"\b(?:(?:Mr|Ms|Mrs|Dr)\.|Minister|President|Director|Ambassador|Chancellor|King|Queen)?\s*"
                      r"(?:[A-Z][\w'’-]+\s+){1,3}[A-Z][\w'’-]+|\b(?:Mr|Ms|Mrs|Dr)\. [A-Z][\w-]+"),
    "where": re.compile(r"\b(in|at|from) [A-Z][a-z]+"),
}
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
                     r"fifty|hundred|thousand|million|billion|dozens?|first|second|third|fourth|fifth|once|twice|single|"
                     r"both)\b", re.I)
_HOW_MANY = re.compile(r"\bhow many ((?:[\w'-]+ ){0,3}?)([\w'-]+?)s?\b(?= (?:has|have|had|did|do|does|are|is|was|were|will|"
                       r"would|can|could|in|of|were|that|per)\b|\?|$)", re.I)
_PEOPLE = {"people", "person", "resident", "inhabitant", "citizen"}


def missing_slot(question: str, evidence: str) -> str:
    """A "how many X" question needs a number (not a year, unless X is years) next to X (or "times", "%")
    in the evidence."""
    many = _HOW_MANY.search(question)
    if not many:
        return ""
    counted = (many.group(1) + many.group(2)).lower().split()
    stems = tuple((lexical.stem(w) or w)[:5] for w in counted)
    if set(counted) & _PEOPLE:  # "How many people lived there?" ~ "a population of roughly 60,000"
        stems += ("popul", "inhab", "resid")
    tokens = re.findall(r"[\w%]+", re.sub(r"\(\d{1,2}\)", " ", evidence.lower()))  # not footnote marks
    for i, token in enumerate(tokens):
        if not _NUMBER.match(token) or (YEAR.fullmatch(token) and "year" not in counted):
            continue
        if any(t.startswith(stems) or t in ("times", "%", "percent") for t in tokens[i:i + 6]):
            return ""
    return f"no number of {' '.join(counted)} in the evidence"


def offers(qtype: str | None, sentence: str, question: str) -> bool:
    """Whether `sentence` holds something of the kind asked for that the question itself does not
    already say ("When did X happen in 2019?" is not answered by a sentence's "2019")."""
    if not qtype:
        return False
    asked = set(words(question))
    return any(not set(words(m.group(0))) <= asked for m in TYPE_PATTERNS[qtype].finditer(sentence))


def question_type(question: str) -> str | None:
    """"when", "number", "who", "where", or None for any other question."""
    q = question.lower()
    if re.search(r"\b(when|what year|which year|what month|what date|since when)\b", q):
        return "when"
    if re.search(r"\b(how (many|much|long|old)|what (percentage|share|number|amount))\b", q):
        return "number"
    if re.search(r"\b(who|whom|whose)\b", q):
        return "who"
    if re.search(r"\bwhere\b", q):
        return "where"
    return None
