"""The names a question asks about, and whether a text mentions them, read offline.

A name is a run of capitalised words ("European Peace Facility"), less a leading question word;
`needed_names` keeps the words a mention must match (not titles, months or the question's first
word alone; not demonyms or acronyms, whose wording in the documents may differ). A word is
mentioned when some word of the text starts like it (`stem_prefix`: "parliaments" ~ "parliament",
"Japanese" ~ "Japan"), diacritics aside. Used by the retriever's name bonus and the answerer's
checks. Does not search.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Sequence

from rag.types import Passage

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
MONTH = "(" + "|".join(_MONTHS) + ")"
# Runs of capitalised words (with inner "of", "the", "-", "&"), e.g. "European Peace Facility".
_ENTITY = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:of|the|for|de|&)?\s*[A-Z][\w'’.-]*)*")
_QUESTION_WORDS = {"What", "When", "Where", "Who", "Whom", "Whose", "Which", "Why", "How", "Did", "Does", "Do",
                   "Is", "Are", "Was", "Were", "Has", "Have", "Can", "In", "And", "The", "According"}
# Capitalised words that are titles or dates, not names to look for.
_GENERIC = {"the", "and", "for", "minister", "prime", "foreign", "president"} | {m.lower() for m in _MONTHS}
_ADJECTIVE = re.compile(r"[A-Z][a-z]+(ish|ian|ese|ic|ch|ek|an|i)")
_ACRONYM = re.compile(r"[A-Z]{2,5}s?")


def entities(text: str) -> list[str]:
    """Named entities as runs of capitalised words, without a leading question word."""
    out = []
    for m in _ENTITY.finditer(text):
        parts = m.group(0).split()
        while parts and parts[0] in _QUESTION_WORDS:
            parts = parts[1:]
        if parts:
            out.append(" ".join(parts))
    return out


def fold(text: str) -> str:
    """`text` without diacritics ("Kücükdeveci" -> "Kucukdeveci"), as people often type names."""
    if text.isascii():  # nothing to fold (and most texts: ten times faster)
        return text
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text.lower()))


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


def needed_names(question: str) -> list[list[str]]:
    """For each name in the question, the words a mention must match."""
    return [needed for _, needed in names(question)]


def stem_prefix(word: str) -> str:
    """A prefix that a mention must start with; short for demonyms ("Japanese" ~ "Japan")."""
    return word[:3] if word.endswith(("ish", "ian", "ese", "ic", "an", "ch")) else word[:5]


def mentions(needed: list[str], context: list[str]) -> bool:
    """Whether every needed word has a mention in `context` (a list of lower-case words)."""
    return all(any(t.startswith(stem_prefix(w)) for t in context) for w in needed)


def mention_share(context: list[str], needed: list[list[str]]) -> float:
    """Share of the names (`needed_names`) that `context` (lower-case words) mentions; 1.0 if none."""
    return sum(mentions(n, context) for n in needed) / len(needed) if needed else 1.0


def prefix_share(prefixes: Collection[str], needed: list[list[str]]) -> float:
    """`mention_share` over a text's set of word prefixes (every word's first 1 to 5 letters)."""
    return sum(all(stem_prefix(w) in prefixes for w in name) for name in needed) / len(needed) if needed else 1.0


class PassageNames:
    """`mention_share` for the passages of an index, each passage's word prefixes (of its text and
    headings, with other names added by `expand`) computed on first use and cached."""

    def __init__(self, passages: Sequence[Passage], expand: Callable[[str], str]):
        self.passages, self.expand = passages, expand
        self._prefixes: list[frozenset[str] | None] = [None] * len(passages)

    def share(self, i: int | None, needed: list[list[str]], passage: Passage | None = None) -> float:
        """Share of the names `needed` that passage i mentions (or `passage`, when it is no passage
        of the index); 1.0 when there are no names."""
        if not needed:
            return 1.0
        if i is None:
            return mention_share(words(self.expand(passage.context())), needed)
        prefixes = self._prefixes[i]
        if prefixes is None:
            tokens = words(self.expand(self.passages[i].context()))
            prefixes = self._prefixes[i] = frozenset(t[:j] for t in set(tokens) for j in range(1, 6))
        return prefix_share(prefixes, needed)
