"""Other names for what the documents name: "ASEM" for "Asia-Europe Meeting", "Danish" for "Denmark".

`Aliases.from_texts` finds the abbreviations the documents define ("long form (SHORT)") and the
countries they name, with their other names and demonyms (`rag.index.alias_groups`, which a local
index also runs once when it is saved: `Aliases(groups)` then takes what it found); `expand(text)` appends to a text the other
form of each abbreviation in it, and the documents' name for each country it names otherwise
("Finnish" -> "Finland"; "Finland" gets nothing, so a query is not flooded with demonyms);
`countries(text)` says which countries a text names. Used for lexical matching only (BM25 queries,
sentence overlap, name checks); the dense vectors see the original text. Does not read files or
retrieve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rag.index.alias_groups import Group, find_groups
from rag.index.alias_groups import countries as known_countries

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Aliases:
    groups: tuple[Group, ...] = ()

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Aliases:
        """The abbreviations defined in `texts` (one text a document) and the countries they name."""
        return cls(find_groups(texts))

    def __post_init__(self):
        # Forms indexed by their first word, to be matched word by word (long forms of abbreviations in
        # any case, the rest as written): much faster than one regular expression of a thousand forms.
        index: dict[str, list[tuple[tuple[str, ...], str, bool]]] = {}
        owner: dict[str, list[int]] = {}
        for i, g in enumerate(self.groups):
            for j, form in enumerate(g.used + g.other):
                folded = g.abbreviation and j == 1  # "crisis management exercises" ~ "Crisis Management ..."
                key = form.lower() if folded else form
                tokens = tuple(_WORD.findall(key))
                if tokens:
                    index.setdefault(tokens[0], []).append((tokens, key, folded))
                    owner.setdefault(key, []).append(i)
        for entries in index.values():
            entries.sort(key=lambda e: -len(e[0]))  # the longest form first, as a regex alternation would
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_owner", owner)

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The abbreviations, as (short form, long form)."""
        return tuple(g.used for g in self.groups if g.abbreviation)

    def _find(self, text: str) -> tuple[set[str], set[int]]:
        """The forms found in `text` (long forms of abbreviations lower-cased) and their groups."""
        found, groups = set(), set()
        if not self._index:
            return found, groups
        tokens = _WORD.findall(text)
        lowered = [t.lower() for t in tokens]
        index, i = self._index, 0
        while i < len(tokens):
            entries, other = index.get(tokens[i]), index.get(lowered[i])  # most words start no form
            if other is not None:
                entries = other if entries is None else entries + other
            for candidate, key, folded in entries or ():
                seq = lowered if folded else tokens
                if tuple(seq[i:i + len(candidate)]) == candidate:
                    found.add(key)
                    groups.update(self._owner[key])
                    i += len(candidate) - 1
                    break
            i += 1
        return found, groups

    def forms(self, text: str) -> set[str]:
        """The names in `text` that this knows (any form; an abbreviation's long form lower-cased)."""
        return self._find(text)[0]

    def expand(self, text: str, *, long_forms: bool = True, countries: bool = True) -> str:
        """`text` followed by the forms the documents use of every name in it given in another form
        (without `long_forms`, an abbreviation's long form is not added: a query gets "ASEM" for
        "Asia-Europe Meeting" but not the reverse, which would favour the one passage defining it;
        without `countries`, only abbreviations are expanded)."""
        found, groups = self._find(text)
        extra = []
        for i in sorted(groups):
            group = self.groups[i]
            if not countries and not group.abbreviation:
                continue
            forms = group.used[:1] if group.abbreviation and not long_forms else group.used
            extra += [f for f in forms if f not in found and f.lower() not in found]
        extra = list(dict.fromkeys(extra))
        return f"{text} {', '.join(extra)}" if extra else text  # commas: each stays a name of its own

    def countries(self, text: str, *, demonyms: bool = True) -> set[str]:
        """The countries `text` names (in any form, or with `demonyms=False` in any but an adjective like
        "Danish"), each by the documents' name for it."""
        found = self._find(text)[0]
        if not demonyms:
            found -= known_countries()[1]
        return {self.groups[i].used[0] for form in found for i in self._owner.get(form, ())
                if not self.groups[i].abbreviation}
