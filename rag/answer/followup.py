"""Rewrite a follow-up question into a standalone one, offline, from the earlier turns.

Each earlier turn is first rewritten the same way, so a follow-up of a follow-up builds on its
rewrite. Then, against the previous standalone question and its answer:
- "And in 2021?" takes the previous question with its year replaced (or added);
- "What about France?" / "And France?" replaces the name in the previous question of the same type
  (a place for a place, a person for a person, a year for a year; the subject first when several
  are of that type; never the documents' own country) and keeps the predicate;
- a pronoun or a definite reference stands for what it refers to: "he"/"his" for the person the
  previous answer named (after a who-question) or the previous question named, "it"/"its"/"they"
  for the thing the previous answer named when the question asked "what/which N" ("the Western
  Balkans Cooperation Initiative"), else for the previous question's main name ("it" after "held" for
  the event asked about); "they" after a question about a person for the two people ("Abe and
  Sebastian Kurz"); "the group", "the country", "that summit" for the name of that kind (one with a
  role first) or holding that noun ("its July summit": "NATO's July summit"); "then" for the year; a
  pronoun after a name of the question itself ("France say it would") is its own;
- a bare "Why?" / "When?" swaps the question word of the previous question;
- a question that still leans on the conversation gets its main name added, and the year of a
  document the previous question named is carried.
A question that stands on its own is returned unchanged. Names and their types come from
`rag.answer.language` (spaCy when installed). Does not retrieve or answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence

from rag.answer.language import Mention, kind_of, mentions
from rag.search.names import entities
from rag.settings import YEAR, YEAR_PATTERN

_LEAD = re.compile(r"^(and|also|but|so|then|ok(ay)?|now)\b[\s,]*", re.I)
_ABOUT = re.compile(r"^(what|how)\s+about\s+(?P<x>.+?)\??$", re.I)
_IN_YEAR = re.compile(r"^(and\s+)?(what\s+about\s+|how\s+about\s+)?(in|for|during)?\s*(the\s+)?"
                      rf"(?P<y>{YEAR_PATTERN})(\s+(one|bluebook|edition|version))?\s*\??$", re.I)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|he|him|his|she|her|this|that|these|those|there|then)\b", re.I)
_PERSONAL = re.compile(r"\b(he|him|his|she|her|it|its|they|them|their|there|then)\b", re.I)
_DEFINITE = re.compile(r"\b(?:that|this|these|those|the)\s+(?P<n>[a-z]+)\b")
_REFERENCE = re.compile(r"\b(?:that|this|these|those)\s+[a-z]+|\bthe\s+(?:group|organi[sz]ation|institution|alliance|"
                        r"body|bloc|country|nation|city|capital)\b")
_WH = re.compile(r"^(what|when|where|who|which|why|how)\b", re.I)
_WH_AUX = re.compile(r"^(what|when|where|who|why|how)\b(?=\s+(was|were|did|does|do|is|are|has|have|had|will|can)\b)", re.I)
_BARE_WH = re.compile(r"^(why|when|where|how|who)\s*\??$", re.I)
_NAME = re.compile(r"[A-Z][\w'’-]*(?:\s+(?:(?:of|the|for|a|and|on|in|to)\s+)*[A-Z][\w'’-]*)*")
_ASKED = re.compile(r"^(?:what|which)\s+(?:[\w-]+\s+){0,2}?(?P<n>[a-z]+)\s+(?:did|does|do|was|were|is|are|has|have|had|will)\b",
                    re.I)
# class nouns -> the kind of name they stand for ("the group", "the country")
_CLASS = {"group": "org", "organization": "org", "organisation": "org", "institution": "org", "alliance": "org",
          "body": "org", "bloc": "org", "country": "place", "nation": "place", "city": "place", "capital": "place",
          "state": "place"}

Background = Callable[[str], bool]


def _is_followup(question: str) -> bool:
    words = question.split()
    return bool(_LEAD.match(question) or _ABOUT.match(question) or _IN_YEAR.match(question)
                or len(words) <= 3 or _PERSONAL.search(question) or _REFERENCE.search(question)
                or not entities(question))


def reworded(original: str, standalone: str) -> bool:
    """Whether the rewrite changed more than a leading "And"/"But"/"So" (and so is worth showing)."""
    original = " ".join(original.split())
    core = _LEAD.sub("", original)
    return standalone not in (original, core[:1].upper() + core[1:])


def rewrite(question: str, history: Sequence[tuple[str, str]] = (), *, background: Background | None = None,
            doc_years: Collection[int] | None = None) -> str:
    """The standalone form of `question` given earlier `(question, answer)` turns. `background(name)`
    says whether a name is the documents' own (never replaced); `doc_years` are the years documents
    are of (a year carried into a follow-up is one of them; None: any year)."""
    question = " ".join(question.split())
    turns = [(" ".join(q.split()), a or "") for q, a in history if q and q.strip()][-4:]
    if not turns:
        return question
    background = background or (lambda name: False)
    standalone = turns[0][0]
    for (q, _), (_, answer) in zip(turns[1:], turns):
        standalone = _rewrite(q, standalone, answer, background, doc_years)
    return _rewrite(question, standalone, turns[-1][1], background, doc_years)


def _rewrite(question: str, previous: str, answer: str, background: Background, doc_years: Collection[int] | None) -> str:
    if not _is_followup(question):
        return question
    previous = previous.rstrip("?").strip()
    year_only = _IN_YEAR.match(question)
    if year_only:
        return _with_year(previous, year_only.group("y")) + "?"
    core = _LEAD.sub("", question).strip()
    about = _ABOUT.match(core)
    new = about.group("x").strip() if about else None
    if new is None and core != question and _bare_name(core):  # "And France?"
        new = core.rstrip("?").strip()
    if new:
        if YEAR.fullmatch(new):
            return _with_year(previous, new) + "?"
        return _replace(previous, new, background) + "?"
    core = core[0].upper() + core[1:] if core else core
    if _BARE_WH.match(core) and _WH_AUX.match(previous):  # "Why?" after "When was the summit postponed?"
        return _WH_AUX.sub(core.rstrip("?").strip().capitalize(), previous, count=1) + "?"
    resolved, left = _resolve(core, previous, answer, background)
    if resolved != core and not left:
        return _carry_year(resolved, previous, doc_years)
    if entities(core) and resolved == core:  # it names its own subject: only the leading "And" goes
        return core
    # still leaning on the conversation: the previous question's names and years, in brackets
    carried = [e for e in entities(previous) if e.lower() not in core.lower() and not background(e)]
    extra = ", ".join(carried + _years(previous, core, doc_years))
    return f"{core.rstrip('?')} ({extra})?" if extra else core


def _bare_name(core: str) -> bool:
    """Whether `core` is a name alone ("France?", "the Netherlands?"), with no question word or verb."""
    words = core.rstrip("?").split()
    return 0 < len(words) <= 5 and not _WH.match(core) and (core[:1].isupper() or core.lower().startswith("the "))


def _with_year(previous: str, year: str) -> str:
    return YEAR.sub(year, previous, count=1) if YEAR.search(previous) else f"{previous} in {year}"


def _replace(previous: str, new: str, background: Background) -> str:
    """`previous` with the name of `new`'s type replaced by `new` (its subject first), else its first name."""
    found = [m for m in mentions(previous + "?") if not background(m.text) and m.kind != "date"]
    if not found:
        return f"{previous} {new}"
    kind = kind_of(new)
    same = [m for m in found if m.kind == kind] if kind != "name" else []
    pick = next((m for m in same if m.role == "subject"), same[0]) if same else found[0]
    at = previous.find(pick.text)
    if previous[:at].lower().endswith("the ") and new.lower().startswith("the "):
        new = new[4:]
    return previous[:at] + new + previous[at + len(pick.text):] if at >= 0 else f"{previous} {new}"


def _focus(previous: str, background: Background, exclude: str = "") -> Mention | None:
    """The previous question's main name: its subject, else its first, not a date, not the documents' own."""
    found = [m for m in mentions(previous + "?") if not background(m.text) and m.kind not in _NOT_FOCUS
             and m.text.lower() not in exclude.lower()]
    return next((m for m in found if m.role == "subject"), _main(found))


_NOT_FOCUS = ("date", "number", "ordinal", "group")
_POSSESSIVE = ("its", "their", "his", "her")
_SUBJECT_VERB = re.compile(r"\s+(would|will|can|could|should|has|had|have|is|was|are|were|did|does|do|may|might|must)\b")  # "Japanese" is not what a question is about
_PREFERENCE = ("org", "event", "thing", "place", "name", "person")


def _main(found: Sequence[Mention], kinds: Sequence[str] = _PREFERENCE) -> Mention | None:
    """The mention that a question is most about: one with a grammatical role first, then by kind."""
    ranked = sorted((m for m in found if m.kind in kinds), key=lambda m: (m.role == "", kinds.index(m.kind), m.start))
    return ranked[0] if ranked else None


def _answer_name(previous: str, answer: str, kind: str | None = None, noun: str | None = None) -> str | None:
    """The name the previous answer gave: a person (`kind`), or a name holding the asked `noun`."""
    first = " ".join(re.split(r"\s*\[\d+\]\s*", answer or "")).strip()
    if not first or first.startswith("The documents do not"):
        return None
    if noun:
        for m in _NAME.finditer(first):
            if noun.lower() in m.group(0).lower() and m.group(0).lower() not in previous.lower():
                return m.group(0)
        return None
    return next((m.text for m in mentions(first) if m.kind == kind and m.text not in previous), None)


def _resolve(core: str, previous: str, answer: str, background: Background) -> tuple[str, int]:
    """`core` with its pronouns and definite references replaced by what they stand for; and how many
    were left unresolved."""
    found = [m for m in mentions(previous + "?") if not background(m.text)]
    asked = _ASKED.match(previous)
    person = (_answer_name(previous, answer, kind="person") if re.match(r"^(who|which|whom)\b", previous, re.I)
              else None) or next((m.text for m in found if m.kind == "person"), None)
    main = next((m for m in found if m.role == "subject" and m.kind not in _NOT_FOCUS + ("person",)), None) \
        or _main(found, _PREFERENCE[:-1])
    thing = (_answer_name(previous, answer, noun=asked.group("n")) if asked else None) or (main.text if main else None)
    place = _main(found, ("place",))
    place = place.text if place else None
    years = [y for y in YEAR.findall(previous)]
    answered = _answer_name(previous, answer, kind="person") if re.match(r"^(who|which|whom)\b", previous, re.I) else None
    asker = next((m.text for m in found if m.kind == "person" and m.text != answered), None)
    pair = f"{asker} and {answered}" if asker and answered else None  # the two people of the previous turn
    left, used = 0, set()

    def definite(m: re.Match) -> str:
        nonlocal left
        noun = m.group("n")
        if noun in _CLASS:  # "the country": the place the previous question is about (one with a role first)
            kind = _CLASS[noun]
            same = _main([x for x in found if x.kind == kind], (kind,))
            name = (same.text if same else None) or (thing if kind == "org" else place)
        else:
            holder = [x.text for x in found if noun in x.text.lower()]
            name = holder[0] if holder else None
            if name is None and (answer_name := _answer_name(previous, answer, noun=noun)):
                name = answer_name
            if name is None:  # "that summit" after "... at its July summit": NATO's July summit
                name = _phrase(previous, noun, main.text if main else None)
            if name is None and m.group(0).split()[0].lower() != "the":
                left += 1
        if name and noun in name.lower() and not name.lower().startswith("the ") and not re.search(r"['’]s\b", name):
            return "the " + name  # "that summit" -> "the July summit"
        return _as_written(name, previous) if name else m.group(0)

    def pronoun(m: re.Match) -> str:
        nonlocal left
        word = m.group(0).lower()
        own = word in _POSSESSIVE or _SUBJECT_VERB.match(m.string, m.end())  # "its", "France say it would"
        if own and entities(m.string[:m.start()]):  # "When did Japan sign its agreement": its own
            return m.group(0)
        if word in ("they", "them") and pair:  # "What did they agree on?" after "Which chancellor did Abe call?"
            return pair
        if word in ("he", "him", "she"):
            name = person
        elif word in ("his", "her"):
            name = person + "'s" if person else None
        elif word == "it" and _EVENT_VERB.search(core) and (event := _event(previous, main.text if main else None)):
            name = event  # "Where was it held?": the summit, not the organisation
        elif word in ("it", "they", "them"):
            name = thing or place
        elif word in ("its", "their"):
            name = (thing or place) + "'s" if (thing or place) else None
        elif word == "there":
            name = place or thing
        else:  # then
            name = "in " + years[0] if years else None
        if name is None or name in used:  # "they ... it" are not the same thing
            left += 1
            return m.group(0)
        used.add(name)
        return _as_written(name, previous)

    out = _DEFINITE.sub(definite, core)
    out = _PERSONAL.sub(pronoun, out)
    return out, left


def _as_written(name: str, previous: str) -> str:
    """`name` with the article it had in the previous question ("the Council of Europe"), so the
    rewrite reads as the person would have written it."""
    base = re.sub(r"['’]s$", "", name)
    if name.lower().startswith("the ") or not re.search(rf"\bthe\s+{re.escape(base)}\b", previous, re.I):
        return name
    return "the " + name


_EVENT_VERB = re.compile(r"\b(held|hold|hosted|host|took place|take place|happen(ed)?|beg[ia]n|start(ed)?|end(ed)?)\b", re.I)
_EVENTS = "summit|meeting|conference|election|elections|ceremony|talks|forum|session|consultations|visit"


def _phrase(previous: str, noun: str, owner: str | None) -> str | None:
    """The phrase of the previous question that holds `noun` with its owner ("its July summit"), a leading
    "its"/"their" replaced by `owner`'s name ("NATO's July summit"); None when there is none."""
    m = re.search(rf"\b(?:(?P<own>its|their|the|[A-Z][\w-]*['’]s)\s+)?(?P<body>(?:[A-Z][\w-]*\s+)*{noun})\b", previous)
    own = (m.group("own") or "") if m else ""
    if not m or own.lower() in ("", "the"):  # only a phrase with its owner: "the Triple anniversary" says too little
        return None
    if own.lower() in ("its", "their"):
        return f"{owner}'s {m.group('body')}" if owner else None
    return f"{own} {m.group('body')}".strip()


def _event(previous: str, owner: str | None) -> str | None:
    """The event the previous question asked about ("NATO's July summit"), for "it" in "Where was it held?"."""
    m = re.search(rf"\b({_EVENTS})\b", previous, re.I)
    return _phrase(previous, m.group(1), owner) if m else None


def _years(previous: str, rewritten: str, doc_years: Collection[int] | None) -> list[str]:
    return [y for y in dict.fromkeys(YEAR.findall(previous))
            if y not in rewritten and (doc_years is None or int(y) in doc_years)]


def _carry_year(rewritten: str, previous: str, doc_years: Collection[int] | None) -> str:
    """`rewritten` with the year of a document the previous question named, when it names none."""
    years = [] if YEAR.search(rewritten) else _years(previous, rewritten, doc_years)
    return f"{rewritten.rstrip('?')} ({', '.join(years)})?" if years else rewritten
