"""Rewrite a follow-up question into a standalone one, offline, from the earlier turns.

"And in 2021?" takes the previous question with its year replaced (or added); "What about France?"
takes the previous question with its last named entity replaced; a question that leans on a pronoun
("When did they sign it?") gets the previous question's named entities added. A question that
stands on its own is returned unchanged. Does not retrieve or answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.search.names import entities
from rag.settings import YEAR, YEAR_PATTERN

_LEAD = re.compile(r"^(and|also|but|so|then|ok(ay)?|now)\b[\s,]*", re.I)
_ABOUT = re.compile(r"^(what|how)\s+about\s+(?P<x>.+?)\??$", re.I)
_IN_YEAR = re.compile(r"^(and\s+)?(what\s+about\s+|how\s+about\s+)?(in|for|during)?\s*(the\s+)?"
                      rf"(?P<y>{YEAR_PATTERN})(\s+(one|bluebook|edition|version))?\s*\??$", re.I)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|he|him|his|she|her|this|that|these|those|there)\b", re.I)


def _is_followup(question: str) -> bool:
    words = question.split()
    return bool(_LEAD.match(question) or _ABOUT.match(question) or _IN_YEAR.match(question)
                or len(words) <= 3 or (_PRONOUN.search(question) and not entities(question)))


def reworded(original: str, standalone: str) -> bool:
    """Whether the rewrite changed more than a leading "And"/"But"/"So" (and so is worth showing)."""
    original = " ".join(original.split())
    core = _LEAD.sub("", original)
    return standalone not in (original, core[:1].upper() + core[1:])


def rewrite(question: str, history: Sequence[tuple[str, str]] = ()) -> str:
    """The standalone form of `question` given earlier `(question, answer)` turns."""
    question = " ".join(question.split())
    previous = next((q for q, _ in reversed(list(history)) if q and q.strip()), None)
    if previous is None or not _is_followup(question):
        return question
    previous = " ".join(previous.split()).rstrip("?")
    year_only = _IN_YEAR.match(question)
    if year_only:
        year = year_only.group("y")
        return (YEAR.sub(year, previous, count=1) if YEAR.search(previous) else f"{previous} in {year}") + "?"
    about = _ABOUT.match(_LEAD.sub("", question))
    if about:
        new = about.group("x").strip()
        if YEAR.fullmatch(new):
            return (YEAR.sub(new, previous, count=1) if YEAR.search(previous) else f"{previous} in {new}") + "?"
        old = entities(previous)
        return (previous.replace(old[-1], new) if old else f"{previous} {new}") + "?"
    core = _LEAD.sub("", question)
    core = core[0].upper() + core[1:] if core else core
    if entities(core):  # it names its own subject: only the leading "And" goes
        return core
    carried = [e for e in entities(previous) if e.lower() not in core.lower()]
    years = [y for y in YEAR.findall(previous) if y not in core]
    extra = ", ".join(carried + years)
    return f"{core.rstrip('?')} ({extra})?" if extra else core
