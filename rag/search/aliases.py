"""Other names for what the documents name: "ASEM" for "Asia-Europe Meeting", "Danish" for "Denmark".

`Aliases.from_texts` finds the abbreviations the documents define ("long form (SHORT)", by the
Schwartz-Hearst algorithm of the `abbreviations` package) and the countries they name (with their
other names and demonyms from the `countryinfo` package); `expand(text)` appends to a text the other
form of each abbreviation in it, and the documents' name for each country it names otherwise
("Finnish" -> "Finland"; "Finland" gets nothing, so a query is not flooded with demonyms);
`countries(text)` says which countries a text names. Used for lexical matching only (BM25 queries,
sentence overlap, name checks); the dense vectors see the original text. Does not read files or
retrieve.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_SHORT = re.compile(r"[A-Za-z][A-Za-z0-9/&.-]{1,9}")
_FUNCTION_WORDS = {"of", "the", "a", "an", "and", "or", "for", "in", "on", "to"}
_WORD = re.compile(r"\w+")
_LATIN_NAME = re.compile(r"[A-Z][A-Za-z.'’ -]{3,}")


@dataclass(frozen=True)
class Group:
    used: tuple[str, ...]          # the forms `expand` appends: ones the documents use
    other: tuple[str, ...] = ()    # forms only recognised in a text (a country's demonym and other names)
    abbreviation: bool = False     # (short form, long form); the long form matches in any case


# Everyday English names that countryinfo lacks ("America" is left out: "South America" is no country).
_COMMON_NAMES = {"United Kingdom": ("Britain",), "Netherlands": ("Holland",), "Myanmar": ("Burma",),
                 "Vatican City State": ("Vatican", "Holy See")}


@lru_cache(maxsize=1)
def _countries() -> tuple[tuple[tuple[str, ...], ...], frozenset[str]]:
    """Each country's name, demonyms and other English names: those of several words ("Great Britain",
    "Republic of Latvia"), spelled like the name or demonym ("Czechia") or in `_COMMON_NAMES`; not
    native names ("Island" for Iceland would match "Rhode Island") nor ISO codes. And the set of all
    demonyms."""
    from countryinfo import all_countries

    out, demonyms = [], set()
    for country in all_countries():
        adjectives = [d.strip() for d in (country.demonym() or "").split(",") if d.strip()]
        names = [country.name(), *adjectives]
        other = [a.strip() for a in country.alt_spellings()
                 if " " in a.strip() or any(a.strip()[:3] == n[:3] for n in names if n)]
        other += _COMMON_NAMES.get(country.name(), ())
        out.append(tuple(dict.fromkeys(f for f in names + other if f and _LATIN_NAME.fullmatch(f))))
        demonyms.update(adjectives)
    return tuple(out), frozenset(demonyms)


def _abbreviations(texts: list[str]) -> dict[str, str]:
    from abbreviations import schwartz_hearst

    found: dict[str, str] = {}
    logging.getLogger("abbreviations").setLevel(logging.ERROR)
    for text in texts:
        pairs = schwartz_hearst.extract_abbreviation_definition_pairs(doc_text=text, most_common_definition=True)
        for short, long in pairs.items():
            long = " ".join(long.strip("\"'“”‘’ ").split())
            if (_SHORT.fullmatch(short) and sum(ch.isupper() for ch in short) >= 2 and 1 < len(long.split()) <= 8
                    and long[0].lower() == short[0].lower() and long.split()[0].lower() not in _FUNCTION_WORDS):
                found.setdefault(short, long)  # the first definition wins where two differ
    return found


@dataclass(frozen=True)
class Aliases:
    groups: tuple[Group, ...] = ()

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Aliases:
        """The abbreviations defined in `texts` and the countries they name."""
        texts = list(texts)
        groups = [Group((short, long), abbreviation=True) for short, long in sorted(_abbreviations(texts).items())]
        countries = _countries()[0]
        # A one-word name is seen when it is a capitalised word of the texts; a longer one, when it occurs.
        capitalised = {w for text in texts for w in re.findall(r"(?<!\w)[A-Z]\w*", text)}
        seen = {form for forms in countries for form in forms
                if (form in capitalised if re.fullmatch(r"\w+", form) else
                    all(w in capitalised for w in form.split() if w[0].isupper()) and any(form in t for t in texts))}
        short_of = {g.used[1]: g.used[0] for g in groups}
        for forms in countries:  # each country's first form the documents use stands for all its forms
            present = [f for f in forms if any(f" {f} " in f" {s} " for s in seen)]  # "Netherlands" in "The Netherlands"
            if present and len(forms) > 1:
                used = (present[0],) + ((short_of[present[0]],) if present[0] in short_of else ())  # "UK" too
                groups.append(Group(used, tuple(f for f in forms if f != present[0])))
        return cls(tuple(groups))

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
        i = 0
        while i < len(tokens):
            for candidate, key, folded in self._index.get(tokens[i], []) + self._index.get(lowered[i], []):
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
            found -= _countries()[1]
        return {self.groups[i].used[0] for form in found for i in self._owner.get(form, ())
                if not self.groups[i].abbreviation}
