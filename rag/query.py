"""Check and clean what a person (or an API caller) asks, once, into a `Query`.

`make_query` takes the raw question and settings from any front end (CLI, web, Python) and either
returns a `Query` or raises `InputError` with one line naming the bad value: an empty question, one
with no letter or digit ("?!?"), one over `MAX_QUESTION_CHARS`, a `k` outside 1..`MAX_K`, an unknown
mode, document or year. Questions lose lone surrogates, control characters and bidirectional
overrides, and are NFC-normalised. Does not retrieve or answer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from rag.errors import InputError
from rag.settings import DEFAULT_K, DEFAULT_MODE, MAX_HISTORY_TURNS, MAX_K, MAX_QUESTION_CHARS, MODES
from rag.types import Query

NO_FILTER = ("All documents", "All", "all", "*", "")  # document filters that filter nothing

# Bidirectional overrides and isolates change how the surrounding text is displayed: drop them.
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F])
_SURROGATE = re.compile("[\ud800-\udfff]")
_WORD = re.compile(r"[^\W_]")  # a letter or digit in any script
_SPACES = "\t\n\r\x0b\x0c\x85\u2028\u2029"


def clean_text(text: object) -> str:
    """`text` without lone surrogates, control characters (tabs and newlines become spaces) or
    bidirectional overrides, NFC-normalised. Never raises for any `str`."""
    if text is None:
        return ""
    text = _SURROGATE.sub("", text if isinstance(text, str) else str(text))
    out = []
    for ch in text:
        if ch in _SPACES:
            out.append(" ")
        elif unicodedata.category(ch) != "Cc" and ord(ch) not in _BIDI:
            out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def clean_question(raw: object) -> str:
    """The question on one line, or InputError: empty, without a letter or digit, or too long
    (measured before any other work, so a huge paste costs nothing)."""
    if isinstance(raw, str) and len(raw) > 4 * MAX_QUESTION_CHARS:
        raise _too_long(len(raw))
    question = " ".join(clean_text(raw).split())
    if not question:
        raise InputError("the question is empty")
    if not _WORD.search(question):
        raise InputError(f"the question {question[:80]!r} has no words to search for")
    if len(question) > MAX_QUESTION_CHARS:
        raise _too_long(len(question))
    return question


def _too_long(n: int) -> InputError:
    return InputError(f"the question is {n:,} characters long; the limit is {MAX_QUESTION_CHARS:,}")


def clean_k(k: object) -> int:
    """`k` as a whole number from 1 to `MAX_K` (a numeric string or float such as 5.0 is accepted)."""
    if k is None or k == "":
        return DEFAULT_K
    try:
        value = float(k) if not isinstance(k, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise InputError(f"k of {k!r} is not a whole number")
    if not 1 <= value <= MAX_K:
        raise InputError(f"k of {int(value)} is out of range: choose 1 to {MAX_K} passages")
    return int(value)


def clean_mode(mode: object) -> str:
    mode = str(mode).strip().lower() if mode else DEFAULT_MODE
    if mode not in MODES:
        raise InputError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    return mode


def matching_docs(doc: str, docs: Sequence[str]) -> list[str]:
    """The documents that `doc` names: by relative path, file name or file stem."""
    return [d for d in docs if doc in (d, PurePosixPath(d).name, PurePosixPath(d).stem)]


def clean_doc(doc: object, docs: Sequence[str]) -> str | None:
    """None for no filter ("All documents", "*", ''), else a name that matches a document."""
    name = clean_text(doc).strip() if doc is not None else ""
    if name in NO_FILTER:
        return None
    if not matching_docs(name, docs):
        raise InputError(f"no document {name!r} in the index (it has {len(docs)}: {', '.join(docs[:5])}"
                         f"{', ...' if len(docs) > 5 else ''})")
    return name


def clean_year(year: object, years: Iterable[int]) -> int | None:
    if year is None or year == "":
        return None
    known = sorted(set(years))
    try:
        value = int(year)
    except (TypeError, ValueError):
        raise InputError(f"year {year!r} is not a year") from None
    if value not in known:
        raise InputError(f"no document of year {value} in the index (it has "
                         f"{', '.join(map(str, known)) if known else 'no dated documents'})")
    return value


def make_query(question: object, *, k: object = None, mode: object = None, doc: object = None,
               year: object = None, docs: Sequence[str] = (), years: Iterable[int] = ()) -> Query:
    """A checked `Query` (InputError names the first bad value); `docs` and `years` are what the
    index holds, so that an unknown document or year is refused rather than matching nothing."""
    return Query(clean_question(question), clean_k(k), clean_mode(mode), clean_doc(doc, docs),
                 clean_year(year, years))


def precheck(question: object, *, k: object = None, mode: object = None) -> None:
    """The checks of `make_query` that need no index (InputError), so a front end can refuse a bad
    question, k or mode before it opens or builds one."""
    clean_question(question), clean_k(k), clean_mode(mode)


def clean_history(history: Iterable[Sequence[object]] | None) -> list[tuple[str, str]]:
    """The last `MAX_HISTORY_TURNS` (question, answer) turns, cleaned; malformed turns, and turns whose
    question is over `MAX_QUESTION_CHARS` (no question asked here can be), are dropped."""
    turns = [(clean_text(t[0]), clean_text(t[1])) for t in list(history or ())[-4 * MAX_HISTORY_TURNS:]
             if isinstance(t, (list, tuple)) and len(t) == 2 and len(str(t[0])) <= MAX_QUESTION_CHARS]
    return turns[-MAX_HISTORY_TURNS:]
