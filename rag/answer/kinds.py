"""The kind of answer a question asks for, and whether a sentence holds one that the question does not give.

`asked_for(question)` reads the kind from the question's wording: a date ("when", "what year"), a
count ("how many X": a number next to X, written in digits or words), an amount ("how much", "what
is the budget of"), a person ("who", "which leaders"; "Who is the prime minister of X" needs a person
next to "prime minister"; "Who succeeded X" a person other than X), a place ("where", "which
country") or a name ("what is the name of"). `holds(asked, sentence, before)` says whether the
sentence (with the sentence before it, when it opens with a pronoun: "It currently comprises 51
countries") offers one: an entity of that type (`rag.answer.language.entities`, spaCy when
installed, else capitalised words) whose words the question does not already hold. Any other
question ("what", "why", "how") asks for no particular kind and every sentence holds it. Does not
score, choose or abstain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from rag.answer.language import entities_in, mentions, parse
from rag.index import lexical
from rag.search.names import MONTH, words
from rag.search.names import mentions as name_mentions
from rag.settings import YEAR, YEAR_PATTERN

_NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                 "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|hundreds|thousand|thousands|"
                 "million|millions|billion|billions|dozen|dozens|several|once|twice|single|both|half")
_ORDINALS = "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|\\d+(?:st|nd|rd|th)"
_NUMBER = re.compile(rf"^(\d[\d.,]*%?|{_NUMBER_WORDS}|{_ORDINALS})$", re.I)
_DATE = re.compile(rf"\b({MONTH}|{YEAR_PATTERN}|\d{{4}}s|\d[\d,]*\s*(?:BP|BC|BCE|AD|CE|years ago)|century|centuries|"
                   r"decade|spring|summer|autumn|winter|yesterday|today|ago|era|age|period|reign|dynasty|war)\b", re.I)
_AMOUNT = re.compile(rf"(?<![\w-])\d[\d.,]*|\b({_NUMBER_WORDS}|percent|third|quarter|majority|most)\b", re.I)
_OR = "|"
# a day of a month, the month capitalised and next to the number ("In May, 27 states" is a count)
_DAYS = (re.compile(rf"\b{MONTH}\.?[ \t]+(?P<d>\d{{1,2}})\b"), re.compile(rf"\b(?P<d>\d{{1,2}})[ \t]+{MONTH}\b"))
_FOOTNOTE = re.compile(r"\(\d{1,2}\)|(?<=[a-z,])\d{1,2}\b")  # "Facility,(2)", "countries1"
_ROLE = re.compile(r"\b(?:(?:deputy|vice|prime|foreign|defen[cs]e|chief|executive|general|high|permanent|"
                   r"first|special)\s+)*(?:minister|president|ambassador|director|secretary(?:[\s-]general)?|"
                   r"chancellor|king|queen|chair(?:man|woman|person)?|ceo|head|leader|representative|"
                   r"commissioner|governor|mayor|premier|envoy|coordinator)s?\b(?:[\s-]general)?", re.I)
_SUCCESSION = re.compile(r"\b(succeed(?:ed|s)?|replac(?:ed|es|e)|preced(?:ed|es|e)|follow(?:ed|s)?)\b", re.I)
_HOW_MANY = re.compile(r"\bhow many\s+((?:[\w'-]+\s+){0,3}?)([a-z][\w'-]*)(?=\s+(?:has|have|had|did|do|does|are|"
                       r"is|was|were|will|would|can|could|in|of|that|per|to|for|at|on|from|[a-z]+ed)\b|\s*\??$)", re.I)
_PERSON_NOUNS = r"(?:leaders?|people|persons?|ministers?|officials?|presidents?|prime ministers?|ambassadors?|" \
                r"politicians?|envoys?|diplomats?|players?|men|women|man|woman|person)"
_NOT_AUX = r"(?:(?!(?:is|are|was|were|did|do|does|has|have|had|will|can)\b)\w+\s+){0,2}"  # "which Japanese foreign minister"
# people named by what they are, not by name: "university professors ... delivered keynote speeches"
_PEOPLE = re.compile(r"\b(professors?|officials?|experts?|ministers?|leaders?|representatives?|students?|scholars?|"
                     r"researchers?|delegates?|delegations?|citizens?|soldiers?|troops|government|governments|"
                     r"scientists?|engineers?|king|queen|emperor|pope|army|navy|council|committee|parliament)\b", re.I)
_PLACE_NOUNS = r"(?:city|cities|country|countries|town|place|region|capital|state|nation|venue|island|province)"
# words that name nothing ("the Ambassador of Japan" is not new beside "Japan's ambassador"; a sentence's "A")
_FUNCTION = {"a", "an", "the", "of", "and", "for", "to", "in", "on", "at", "by", "with", "it", "its", "this", "these",
             "they", "he", "she", "as", "after", "before", "during", "since", "from", "s"}
_TITLE = {"mr", "ms", "mrs", "dr", "sir", "h", "e", "his", "her", "excellency"}
# the entity types that answer each kind ("name": a capitalised name of unknown type, without spaCy)
_KINDS = {"person": ("person", "name"), "agent": ("person", "org", "group", "place", "name"), "place": ("place", "name"),
          "name": ("person", "org", "group", "place", "event", "thing", "name"), "date": ("date",)}


@dataclass(frozen=True)
class Asked:
    """What a question asks for."""

    kind: str  # "date" | "count" | "amount" | "person" | "agent" | "place" | "name" | "" (any)
    question: str = ""
    counted: tuple[str, ...] = ()  # for a count: the stems of what is counted ("countri")
    role: str = ""  # for a person: the office asked about ("prime minister")
    modifiers: tuple[str, ...] = ()  # for a count: the stems of the words before what is counted ("nativ", "ameri")
    actor: str = ""  # for a count or amount: the question's subject ("How much has Japan given?"), its other
    #                  names after `OR` ("Britain|United Kingdom|UK"; `with_other_names`)

    @property
    def strict(self) -> bool:
        """Whether an answer without this kind is refused: a date, count, amount or person is a fact a
        sentence states or not; "who"/"where"/"what is the name" are often answered in common
        words ("fans", "underground"), so those only put a sentence that holds one first."""
        return self.kind in ("date", "count", "amount", "duration", "person")


def asked_for(question: str) -> Asked:
    """The kind of answer `question` asks for ("" when its wording names none)."""
    q = " ".join(question.split())
    low = q.lower()
    if re.match(r"^(and |so |but )?when\b", low) or \
            re.search(r"\b(what year|which year|what month|what date|since when|what day)\b", low):
        return Asked("date", q)
    many = _HOW_MANY.search(low)
    if many:
        stem = lambda w: (lexical.stem(w) or w)[:5]  # noqa: E731
        head, modifiers = counted(q) or (many.group(2), many.group(1).split())
        stems = (stem(head), *(stem(w) for w in modifiers))
        actor = _actor(q)  # not what is counted ("How many Huguenots emigrated?")
        actor = "" if {stem(w) for w in words(actor)} & set(stems) else actor
        return Asked("count", q, stems[:1], modifiers=stems[1:], actor=actor)
    if re.search(r"\bhow long\b", low):
        return Asked("duration", q)
    if re.search(r"\bhow (much|old|large|big|far)\b|\bwhat (percentage|share|proportion|amount|sum|total|"
                 r"number|price|cost|value|budget)\b|\bwhat (is|was|are|were) (the|its|their|[\w-]+['’]s)\s+"
                 r"(\w+\s+){0,2}(budget|cost|price|value|volume|gdp|population|size|amount|total|number)\b", low):
        return Asked("amount", q, actor=_actor(q))
    if re.search(rf"\b(which|what)\s+{_NOT_AUX}{_PERSON_NOUNS}\b", low) or re.match(r"^(who|whom|whose)\b", low):
        role = _role(q)
        return Asked("person" if role or _SUCCESSION.search(low) else "agent", q, role=role)
    if re.match(r"^(\w+\s+){0,2}where\b", low) or re.search(rf"\b(which|what)\s+{_NOT_AUX}{_PLACE_NOUNS}\b", low):
        return Asked("place", q)
    if re.search(r"\bwhat (is|was|were|are) the names? of\b|\bwhat (is|was) (it|he|she) called\b", low):
        return Asked("name", q)
    return Asked("", q)


def with_other_names(asked: Asked, expand) -> Asked:
    """`asked` with its actor's other names (`expand(name)`: the name followed by them, comma-separated)."""
    if not asked.actor:
        return asked
    extra = expand(asked.actor)[len(asked.actor):]
    forms = [asked.actor] + [f.strip() for f in extra.split(",") if f.strip()]
    return replace(asked, actor=_OR.join(forms))


def _actor(question: str) -> str:
    """The name that is the grammatical subject of `question` ("Japan" in "How much has Japan given?"),
    '' when there is none or without spaCy (no roles)."""
    return next((m.text for m in mentions(question) if m.role == "subject"
                 and m.kind in ("person", "org", "place", "group", "name")), "")


@lru_cache(maxsize=1024)
def counted(question: str) -> tuple[str, list[str]] | None:
    """What a "how many" question counts, from spaCy's parse: the noun "many" qualifies and the words
    before it ("how many Native American people": "people", ["Native", "American"]); None without spaCy."""
    doc = parse(question)
    if doc is None:
        return None
    many = next((t for t in doc if t.lower_ == "many" and t.i > 0 and doc[t.i - 1].lower_ == "how"), None)
    if many is None or many.head.pos_ not in ("NOUN", "PROPN") or many.head.i < many.i:
        return None
    head = many.head
    return head.text.lower(), [t.text.lower() for t in doc[many.i + 1:head.i] if t.is_alpha]


def _role(question: str) -> str:
    """The office a "who is the X" question asks about ("Who is Japan's ambassador to NATO?": "ambassador")."""
    m = re.match(r"^(?:who|whom)\s+(?:is|was|are|were|has been|had been|became|becomes|served as)\s+(.*)$",
                 question, re.I) or re.search(rf"\b(?:which|what)\s+(?:\w+\s+){{0,2}}?({_PERSON_NOUNS})\b", question, re.I)
    role = _ROLE.search(m.group(1)) if m else None
    return role.group(0).lower() if role else ""


def holds(asked: Asked, sentence: str, before: str = "", context: str = "") -> bool:
    """Whether `sentence` offers an answer of the asked kind that the question does not already give; a
    count or amount also names the question's subject (in the sentence, the one before it or its
    `context`: heading, label), so "How much has Japan given?" is not answered by what the UK gave."""
    if not asked.kind:
        return True
    if asked.actor:
        seen = words(" ".join((sentence, before, context)))
        if not any(name_mentions(words(form), seen) for form in asked.actor.split(_OR)):
            return False
    given = set(words(asked.question)) | _FUNCTION
    new = lambda text: not set(words(text)) - _TITLE <= given  # noqa: E731
    if asked.kind == "count":
        return _count(asked, sentence, given) or bool(before) and _count(asked, before + " " + sentence, given)
    if asked.kind in ("amount", "duration"):
        text = _FOOTNOTE.sub(" ", sentence)
        if any(new(m.group(0)) for m in _AMOUNT.finditer(text) if not _year_only(m.group(0))):
            return True
        if asked.kind == "amount":
            return False
        asked = Asked("date", asked.question)
    if asked.kind == "date" and any(new(m.group(0)) for m in _DATE.finditer(sentence)):
        return True
    if asked.kind == "agent" and any(new(m.group(0)) for m in _PEOPLE.finditer(sentence)):
        return True
    found = [(text, kind) for text, kind in entities_in(sentence) if kind in _KINDS[asked.kind] and new(text)]
    if asked.kind == "person" and asked.role:
        return any(_next_to(sentence, text, asked.role) for text, _ in found)
    if asked.kind == "person":  # "Who succeeded Morikawa?": not "Mr. Morikawa Toru", who is the one named
        named = {w.lower() for w in re.findall(r"\b[A-Z][\w'-]+", asked.question)[1:]}
        found = [(text, kind) for text, kind in found if not (set(words(text)) - _TITLE) & named]
    return bool(found)


def _year_only(text: str) -> bool:
    return bool(YEAR.fullmatch(text.strip(".,")))


def _count(asked: Asked, text: str, given: set[str]) -> bool:
    """A number (not a year, unless years are counted; not one the question gives) next to what is counted."""
    text = _FOOTNOTE.sub(" ", text)
    days = {m.start("d") for day in _DAYS for m in day.finditer(text)}  # "December 10": a day, not a count
    found = list(re.finditer(r"[\w%]+", text))
    tokens = [m.group(0).lower() for m in found]
    stems, modifiers = asked.counted, asked.modifiers
    if set(stems) & {"peopl", "perso", "resid", "inhab", "citiz"}:
        stems += ("popul", "inhab", "resid", "peopl")
    generic = bool(set(stems) & {"membe", "parti"})  # "members": 51 countries
    for i, token in enumerate(tokens):
        if not _NUMBER.match(token) or token in given or (YEAR.fullmatch(token) and "year" not in stems):
            continue
        if found[i].start() in days:
            continue
        window = tokens[i + 1:i + 6] + tokens[max(0, i - 4):i]
        if any(t.startswith(stems) or t in ("times", "%", "percent") for t in window):
            return True
        after = [t for t in tokens[i + 1:i + 3 + len(modifiers)] if not _NUMBER.match(t)]  # "8,525 (1.7%) Native American"
        if all(_NUMBER.match(t) for t in tokens[:i]):  # the count opens the sentence: "Four thousand emigrated"
            return True
        if modifiers and all(a.startswith(m) for a, m in zip(after, modifiers)) and len(after) >= len(modifiers):
            return True
        if generic and i + 1 < len(tokens) and tokens[i + 1].endswith("s") and not _NUMBER.match(tokens[i + 1]):
            return True
    return False


def _next_to(sentence: str, name: str, role: str) -> bool:
    """Whether `name` stands next to the office `role` in `sentence` ("Prime Minister Kishida",
    "Kishida, the prime minister", "the Ambassador of Japan to NATO, Mr. X")."""
    low = sentence.lower()
    at = low.find(name.lower())
    if at < 0:
        return False
    for m in re.finditer(re.escape(role).replace(r"\ ", r"[\s-]+"), low):
        between = low[m.end():at] if m.end() <= at else low[at + len(name):m.start()]
        if len(between.split()) <= 8 and not re.search(r"[.;:]|\b(and|with|by|met|held)\b", between):
            return True
    return False
