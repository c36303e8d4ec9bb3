"""What a question asks for, read offline: its kind (when / how many / who / where), the names in it,
and checks of evidence against it (is every name known to the documents, does a "how many X" question
find a number next to X). Used by the answerer to score sentences and to decide when to abstain.
Does not retrieve or answer.
"""

from __future__ import annotations

import re
import unicodedata

from rag import lexical
from rag.followup import entities

_MONTH = r"(January|February|March|April|May|June|July|August|September|October|November|December)"
TYPE_PATTERNS = {
    "when": re.compile(rf"\b({_MONTH}|(1[5-9]|20)\d\d|century|decade)\b"),
    "number": re.compile(r"\d+(?:[.,]\d+)*|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                         r"hundred|thousand|million|billion|first|second|third|fourth|fifth|dozens?|several)\b", re.I),
    "who": re.compile(r"\b(?:(?:Mr|Ms|Mrs|Dr)\.|Minister|President|Director|Ambassador|Chancellor|King|Queen)?\s*"
                      r"(?:[A-Z][\w'’-]+\s+){1,3}[A-Z][\w'’-]+|\b(?:Mr|Ms|Mrs|Dr)\. [A-Z][\w-]+"),
    "where": re.compile(r"\b(in|at|from) [A-Z][a-z]+"),
}


# Capitalised words that are titles or dates, not names to look for.
_GENERIC = {"the", "and", "for", "minister", "prime", "foreign", "president"} | {
    m.lower() for m in _MONTH.strip("()").split("|")}
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|"
                     r"fifty|hundred|thousand|million|billion|dozens?|first|second|third|fourth|fifth|once|twice|single|"
                     r"both)\b", re.I)
_HOW_MANY = re.compile(r"\bhow many ((?:[\w'-]+ ){0,3}?)([\w'-]+?)s?\b(?= (?:has|have|had|did|do|does|are|is|was|were|will|"
                       r"would|can|could|in|of|were|that|per)\b|\?|$)", re.I)


_YEAR = re.compile(r"(1[5-9]|20)\d\d")  # "In 2019 troops were sent" has no count of troops
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
        if not _NUMBER.match(token) or (_YEAR.fullmatch(token) and "year" not in counted):
            continue
        if any(t.startswith(stems) or t in ("times", "%", "percent") for t in tokens[i:i + 6]):
            return ""
    return f"no number of {' '.join(counted)} in the evidence"


_ADJECTIVE = re.compile(r"[A-Z][a-z]+(ish|ian|ese|ic|ch|ek|an|i)")
_ACRONYM = re.compile(r"[A-Z]{2,5}s?")


def names(question: str) -> list[tuple[str, list[str]]]:
    """The question's named entities with the words a mention must match (the first word of the
    question is capitalised anyway, so it only counts inside a longer name)."""
    first = question.split()[0] if question.split() else ""
    out = []
    for name in entities(question):
        if _ADJECTIVE.fullmatch(name) or _ACRONYM.fullmatch(name):
            continue  # "Danish", "Greek", "SDF": a documents' wording may differ ("Denmark", spelled out)
        needed = [w for w in words(name.removeprefix(first) if question.startswith(name) else name)
                  if len(w) > 2 and w not in _GENERIC]
        if needed:
            out.append((name, needed))
    return out


def mentions(needed: list[str], context: list[str]) -> bool:
    """Whether every needed word has a mention in `context` (a list of lower-case words)."""
    return all(any(t.startswith(stem_prefix(w)) for t in context) for w in needed)


def stem_prefix(word: str) -> str:
    """A prefix that a mention must start with; short for demonyms ("Danish" ~ "Denmark")."""
    return word[:3] if word.endswith(("ish", "ian", "ese", "ic", "an", "ch")) else word[:5]


def fold(text: str) -> str:
    """`text` without diacritics ("Kücükdeveci" -> "Kucukdeveci"), as people often type names."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text.lower()))


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
