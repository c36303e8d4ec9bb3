"""What a question asks for, read offline, for scoring: its kind (when / how many / who / where) and
whether a sentence offers something of that kind. Used by the answerer to score sentences; whether
the evidence holds the asked fact, and so whether to abstain, is `rag.answer.kinds`. The names in
a question are `rag.search.names`. Does not retrieve or answer.
"""

from __future__ import annotations

import re

from rag.search.names import MONTH, words
from rag.settings import YEAR_PATTERN

TYPE_PATTERNS = {
    "when": re.compile(rf"\b({MONTH}|{YEAR_PATTERN}|century|decade)\b"),
    "number": re.compile(r"\d+(?:[.,]\d+)*|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                         r"hundred|thousand|million|billion|first|second|third|fourth|fifth|dozens?|several)\b", re.I),
    "who": re.compile(r"\b(?:(?:Mr|Ms|Mrs|Dr)\.|Minister|President|Director|Ambassador|Chancellor|King|Queen)?\s*"
                      r"(?:[A-Z][\w'’-]+\s+){1,3}[A-Z][\w'’-]+|\b(?:Mr|Ms|Mrs|Dr)\. [A-Z][\w-]+"),
    "where": re.compile(r"\b(in|at|from) [A-Z][a-z]+"),
}

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
