"""Other names for what documents name, found once in their texts: the abbreviations they define
("Asia-Europe Meeting (ASEM)", by the Schwartz-Hearst algorithm of the `abbreviations` package) and
the countries they name with each country's other names and demonyms (the `countryinfo` package).

`find_groups(texts)` gives the groups, which a local index saves with the rest
(`rag.index.local`: a million passages' texts take about a minute to read, too long for a first
question) and `rag.search.aliases.Aliases` matches and expands; `to_json`/`from_json` turn them into
JSON and back. Does not match names in questions or retrieve.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

_SHORT = re.compile(r"[A-Za-z][A-Za-z0-9/&.-]{1,9}")
_FUNCTION_WORDS = {"of", "the", "a", "an", "and", "or", "for", "in", "on", "to"}
_LATIN_NAME = re.compile(r"[A-Z][A-Za-z.'’ -]{3,}")
_CAPITALISED = re.compile(r"(?<!\w)[A-Z]\w*")
_ONE_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Group:
    used: tuple[str, ...]          # the forms `expand` appends: ones the documents use
    other: tuple[str, ...] = ()    # forms only recognised in a text (a country's demonym and other names)
    abbreviation: bool = False     # (short form, long form); the long form matches in any case


# Everyday English names that countryinfo lacks ("America" is left out: "South America" is no country).
_COMMON_NAMES = {"United Kingdom": ("Britain",), "Netherlands": ("Holland",), "Myanmar": ("Burma",),
                 "Vatican City State": ("Vatican", "Holy See")}


@lru_cache(maxsize=1)
def countries() -> tuple[tuple[tuple[str, ...], ...], frozenset[str]]:
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
    schwartz_hearst = _import_schwartz_hearst()
    found: dict[str, str] = {}
    for text in texts:
        pairs = schwartz_hearst.extract_abbreviation_definition_pairs(doc_text=text, most_common_definition=True)
        for short, long in pairs.items():
            long = " ".join(long.strip("\"'“”‘’ ").split())
            if (_SHORT.fullmatch(short) and sum(ch.isupper() for ch in short) >= 2 and 1 < len(long.split()) <= 8
                    and long[0].lower() == short[0].lower() and long.split()[0].lower() not in _FUNCTION_WORDS):
                found.setdefault(short, long)  # the first definition wins where two differ
    return found


def find_groups(texts: Iterable[str]) -> tuple[Group, ...]:
    """The abbreviations defined in `texts` (one text a document) and the countries they name."""
    texts = list(texts)
    groups = [Group((short, long), abbreviation=True) for short, long in sorted(_abbreviations(texts).items())]
    known = countries()[0]
    # A one-word name is seen when it is a capitalised word of the texts; a longer one, when it occurs.
    capitalised = {w for text in texts for w in _CAPITALISED.findall(text)}
    seen = {form for forms in known for form in forms
            if (form in capitalised if _ONE_WORD.fullmatch(form) else
                all(w in capitalised for w in form.split() if w[0].isupper()) and any(form in t for t in texts))}
    short_of = {g.used[1]: g.used[0] for g in groups}
    for forms in known:  # each country's first form the documents use stands for all its forms
        present = [f for f in forms if any(f" {f} " in f" {s} " for s in seen)]  # "Netherlands" in "The Netherlands"
        if present and len(forms) > 1:
            used = (present[0],) + ((short_of[present[0]],) if present[0] in short_of else ())  # "UK" too
            groups.append(Group(used, tuple(f for f in forms if f != present[0])))
    return tuple(groups)


def to_json(groups: Iterable[Group]) -> list:
    return [[list(g.used), list(g.other), g.abbreviation] for g in groups]


def from_json(rows: list) -> tuple[Group, ...]:
    """The groups `to_json` gave; ValueError for anything else."""
    try:
        return tuple(Group(tuple(map(str, used)), tuple(map(str, other)), bool(abbreviation))
                     for used, other, abbreviation in rows)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"alias groups that are not lists of names: {exc}") from None


def _import_schwartz_hearst():
    """`abbreviations.schwartz_hearst`, imported without its `logging.basicConfig` call taking effect:
    that would add a root handler at INFO, and every warning of ours (and libraries' INFO lines) would
    reach the console a second time."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from abbreviations import schwartz_hearst
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    logging.getLogger("abbreviations").setLevel(logging.ERROR)
    return schwartz_hearst
