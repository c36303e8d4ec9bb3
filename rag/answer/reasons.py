"""Why the assistant did not answer, in plain words and without scores.

`refusal(question, passages)` says what the documents do mention of the question's names and what
they do not say: "the documents mention the PfP Trust Fund but not how much money Japan has
contributed to the PfP Trust Fund", or "the documents do not say when Sweden joined NATO". The
question is turned into an indirect one ("how much money has Japan contributed" -> "how much money
Japan has contributed") with spaCy's parse when installed, else kept as asked in quotes. Scores stay
in `Answer.score` (and `--json`). Does not decide whether to abstain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.answer.language import parse
from rag.search.names import entities, words
from rag.types import Passage

_AUX = {"is", "are", "was", "were", "has", "have", "had", "will", "would", "can", "could", "did", "does", "do",
        "should", "may", "might", "must"}
_IRREGULAR = {"be": "was", "become": "became", "begin": "began", "bring": "brought", "build": "built", "buy": "bought",
              "choose": "chose", "come": "came", "do": "did", "find": "found", "get": "got", "give": "gave",
              "go": "went", "have": "had", "hold": "held", "keep": "kept", "know": "knew", "lead": "led",
              "leave": "left", "lose": "lost", "make": "made", "meet": "met", "pay": "paid", "put": "put",
              "run": "ran", "say": "said", "see": "saw", "sell": "sold", "send": "sent", "set": "set",
              "sign": "signed", "speak": "spoke", "spend": "spent", "take": "took", "tell": "told",
              "think": "thought", "win": "won", "write": "wrote"}


def refusal(question: str, passages: Sequence[Passage], background: Callable[[str], bool] | None = None,
            year: int | None = None) -> str:
    """The plain-words reason for not answering `question` from `passages` (no trailing period); asked
    about one document's `year`, that the documents do not say it for that year."""
    asked = indirect(question)
    if year is not None and not any(p.year == year for p in passages):
        return f"the documents do not say {asked} for {year}"
    text = words(" ".join(p.text for p in passages))
    known = set(text)
    names = (re.sub(r"['’]s?$", "", n) for n in entities(question))  # "Croatia's" -> "Croatia"
    topic = [n for n in dict.fromkeys(names) if len(words(n)) and set(words(n)) <= known
             and not (background and background(n)) and n.lower() not in ("i", "a")]
    if topic:
        return f"the documents mention {_join(topic)} but not {asked}"
    return f"the documents do not say {asked}"


def _join(names: Sequence[str]) -> str:
    names = list(names)[:3]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def indirect(question: str) -> str:
    """`question` as an indirect question ("when Sweden joined NATO"); quoted as asked when it cannot be."""
    q = " ".join(question.split()).rstrip("?").strip()
    doc = parse(q) if q else None
    if doc is not None:
        turned = _turn(doc)
        if turned:
            return turned
    return f"the answer to “{q}?”"


def _turn(doc) -> str | None:
    """The parsed question turned indirect: the auxiliary after its subject ("has Japan given" ->
    "Japan has given"; "did Sweden join" -> "Sweden joined"), or None when its shape is not that."""
    tokens = list(doc)
    if not tokens or tokens[0].tag_ not in ("WDT", "WP", "WP$", "WRB"):
        return None
    # the question phrase: "how much money", "which country", "who", "when"
    end = 1
    while end < len(tokens) and tokens[end].lower_ not in _AUX and tokens[end].pos_ not in ("VERB", "AUX"):
        end += 1
    if end >= len(tokens):
        return None
    wh = doc[:end].text
    lead = tokens[0].lower_ + wh[len(tokens[0].text):]
    aux = tokens[end]
    if aux.lower_ not in _AUX:  # "who won the seats": already in order
        return f"{lead} {doc[end:].text}"
    rest = tokens[end + 1:]
    subject = [t for t in rest if t.dep_ in ("nsubj", "nsubjpass", "expl")]
    if not subject:  # "what is the budget of X": the rest is the subject (unless a verb follows)
        return f"{lead} {doc[end + 1:].text} {aux.lower_}" if rest and not any(t.pos_ == "VERB" for t in rest) else None
    sub = subject[0]
    s_start, s_end = min(t.i for t in sub.subtree), max(t.i for t in sub.subtree) + 1
    if s_start != end + 1:
        return None
    tail = doc[s_end:].text
    if aux.lower_ in ("did", "does", "do"):  # "did Sweden formally become" -> "Sweden formally became"
        verb = next((t for t in doc[s_end:] if t.pos_ in ("VERB", "AUX")), None)
        if verb is None or any(t.pos_ != "ADV" for t in doc[s_end:verb.i]):
            return None
        form = _past(verb.lower_) if aux.lower_ == "did" else _third(verb.lower_) if aux.lower_ == "does" else verb.lower_
        return " ".join(x for x in (lead, doc[s_start:verb.i].text, form, doc[verb.i + 1:].text) if x)
    return " ".join(x for x in (lead, doc[s_start:s_end].text, aux.lower_, tail) if x)


def _third(verb: str) -> str:
    """The third-person present of `verb` ("have" -> "has", "reach" -> "reaches", "rely" -> "relies")."""
    if verb in ("have", "be", "do", "go"):
        return {"have": "has", "be": "is", "do": "does", "go": "goes"}[verb]
    if re.search(r"(s|sh|ch|x|z|o)$", verb):
        return verb + "es"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    return verb + "s"


def _past(verb: str) -> str:
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    if verb.endswith("e"):
        return verb + "d"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ied"
    return verb + "ed"
