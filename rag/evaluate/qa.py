"""QA sets (one JSON object a line) and how an answer is judged against them.

Format: {"id", "question", "answers": [...] | [] (unanswerable) | null (retrieval only),
"sources": [{"doc", "quote"?}]}. `load_qa` locates every gold quote in its document, so a retrieved
passage or a citation counts when it overlaps a gold span in the right file (`overlaps`), whatever
the chunking; `answer_correct` compares SQuAD-style (`normalize`). Does not ask or search.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rag.errors import DocumentError, RagError
from rag.ingest.load import read_text


@dataclass(frozen=True)
class GoldSpan:
    doc: str
    start: int | None = None  # None: any passage of the doc is relevant
    end: int | None = None


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...] | None  # () unanswerable, None retrieval only
    gold: tuple[GoldSpan, ...]

    @property
    def unanswerable(self) -> bool:
        return self.answers == ()


def load_qa(path: str | Path, docs: str | Path, text_of: Callable[[str], str | None] | None = None) -> list[QAItem]:
    """Read a QA file and locate every gold quote in its document: in `text_of(doc)` (the text an index
    stores, which its spans index into) when given and known, else in the file's text as its converter
    reads it; errors name the line."""
    path, docs = Path(path), Path(docs)
    if not path.is_file():
        raise RagError(f"QA file {str(path)!r} does not exist")
    texts: dict[str, str] = {}
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question, answers, sources = row["question"], row.get("answers"), row.get("sources") or []
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{path}:{n}: not a QA object ({exc})") from None
        gold = []
        for src in sources:
            if not isinstance(src, dict) or not isinstance(src.get("doc"), str):
                raise RagError(f"{path}:{n}: a source must be an object with a \"doc\" file name, not {src!r}")
            doc = src["doc"]
            if doc not in texts and text_of is not None and text_of(doc) is not None:
                texts[doc] = text_of(doc)
            if doc not in texts:
                try:
                    texts[doc] = read_text(docs / doc)
                except (OSError, DocumentError) as exc:
                    raise RagError(f"{path}:{n}: source document {doc!r} cannot be read from {str(docs)!r}: {exc}") from None
            quote = src.get("quote")
            if not quote:
                gold.append(GoldSpan(doc))
                continue
            spans = find_quote(texts[doc], quote)
            if not spans:
                raise RagError(f"{path}:{n}: quote {quote[:50]!r} not found in {doc!r}")
            gold += [GoldSpan(doc, start, end) for start, end in spans]
        items.append(QAItem(str(row.get("id", n)), question, None if answers is None else tuple(answers), tuple(gold)))
    if not items:
        raise RagError(f"QA file {str(path)!r} has no questions")
    return items


_SPACE = re.compile(r"\s+")


def find_quote(text: str, quote: str) -> list[tuple[int, int]]:
    """Every span of `text` that is `quote` (a quote that occurs twice, a repeated caption, is found at
    either place); when there is none, every span that is `quote` once runs of white space are
    collapsed on both sides (a PDF's extracted text breaks and spaces lines its own way)."""
    spans, at = [], text.find(quote)
    while at >= 0:
        spans.append((at, at + len(quote)))
        at = text.find(quote, at + 1)
    if spans or not quote.strip():
        return spans
    starts, chars = [], []  # the collapsed text, and where each of its characters is in `text`
    for m in re.finditer(r"\s+|\S+", text):
        if m.group()[0].isspace():
            starts.append(m.start())
            chars.append(" ")
        else:
            starts.extend(range(m.start(), m.end()))
            chars.append(m.group())
    collapsed, wanted = "".join(chars), _SPACE.sub(" ", quote.strip())
    at = collapsed.find(wanted)
    while at >= 0:
        last = at + len(wanted) - 1
        spans.append((starts[at], starts[last] + 1))
        at = collapsed.find(wanted, at + 1)
    return spans


def overlaps(doc: str, start: int, end: int, gold: Iterable[GoldSpan]) -> bool:
    return any(g.doc == doc and (g.start is None or (start < g.end and g.start < end)) for g in gold)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_MARKERS = re.compile(r"\[\d+\]")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "“”‘’–—"})


def normalize(text: str) -> str:
    """SQuAD-style: lower-case, drop [n] markers, punctuation and articles, fold white space."""
    text = _MARKERS.sub(" ", text.lower()).translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_correct(answer_text: str, answers: Iterable[str]) -> bool:
    got = f" {normalize(answer_text)} "
    return any(normalize(a) and f" {normalize(a)} " in got for a in answers)


