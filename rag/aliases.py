"""Abbreviations the documents define, so "ASEM" and "Asia-Europe Meeting" match each other.

`Aliases.from_texts` finds "long form (SHORT)" definitions with the Schwartz-Hearst algorithm (the
`abbreviations` package) and keeps plausible ones; `expand(text)` appends to a text the other form of
every abbreviation or long form it contains. Used for lexical matching only (BM25 queries, sentence
overlap, name checks); the dense vectors see the original text. Does not read files or retrieve.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

_SHORT = re.compile(r"[A-Za-z][A-Za-z0-9/&.-]{1,9}")
_FUNCTION_WORDS = {"of", "the", "a", "an", "and", "or", "for", "in", "on", "to"}


@dataclass(frozen=True)
class Aliases:
    pairs: tuple[tuple[str, str], ...] = ()  # (short form, long form), sorted

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Aliases:
        """The abbreviations defined in `texts` (the first definition wins where two differ)."""
        from abbreviations import schwartz_hearst

        found: dict[str, str] = {}
        logging.getLogger("abbreviations").setLevel(logging.ERROR)
        for text in texts:
            pairs = schwartz_hearst.extract_abbreviation_definition_pairs(doc_text=text, most_common_definition=True)
            for short, long in pairs.items():
                long = " ".join(long.strip("\"'“”‘’ ").split())
                if (_SHORT.fullmatch(short) and sum(ch.isupper() for ch in short) >= 2 and 1 < len(long.split()) <= 8
                        and long[0].lower() == short[0].lower() and long.split()[0].lower() not in _FUNCTION_WORDS):
                    found.setdefault(short, long)
        return cls(tuple(sorted(found.items())))

    def __post_init__(self):
        # One pass over a text finds every form: short forms match case-sensitively, long ones in any case.
        shorts = sorted((s for s, _ in self.pairs), key=len, reverse=True)
        longs = sorted((lf for _, lf in self.pairs), key=len, reverse=True)
        either = (rf"(?<![\w-])(?:(?P<short>{'|'.join(map(re.escape, shorts))})|(?i:(?P<long>{'|'.join(map(re.escape, longs))})))"
                  r"(?![\w-])")
        object.__setattr__(self, "_pattern", re.compile(either) if self.pairs else None)
        object.__setattr__(self, "_other", {**dict(self.pairs), **{lf.lower(): s for s, lf in self.pairs}})

    def expand(self, text: str) -> str:
        """`text` followed by the other form of each abbreviation or long form in it."""
        if self._pattern is None:
            return text
        found = {m.group("short") or m.group("long").lower() for m in self._pattern.finditer(text)}
        extra = [self._other[f] for f in sorted(found)]
        extra = [e for e in extra if e not in found and e.lower() not in found]
        return f"{text} {' '.join(extra)}" if extra else text
