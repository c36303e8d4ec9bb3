"""Text a person typed or will read, made safe: clean a question (control characters, bidirectional
overrides, lone surrogates, length limit) and the chat settings; render an `Answer` as chat Markdown
and its sources as an HTML panel, where every piece of question or document text goes through
`html.escape` and the cited sentences are wrapped in `<mark>` by splitting the paragraph at the
citations' offsets. Does not create Gradio components, retrieve, answer or touch files.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from rag.errors import RagError
from rag.followup import reworded

MAX_QUESTION_CHARS = 2000
MODES = ("hybrid", "dense", "bm25")
ALL_DOCS = "All documents"
MAX_K = 10

# Bidirectional overrides and isolates change how the surrounding text is displayed: drop them.
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F])
_SURROGATE = re.compile("[\ud800-\udfff]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|~$])")
_WORD = re.compile(r"[^\W_]")  # a letter or digit in any script
_MD_LINE_START = re.compile(r"^(\s*)([#+-]|\d+[.)])", re.M)  # headings, list items


class InputError(RagError):
    """Something a person typed or uploaded that cannot be used; the message is shown to them."""


# -- questions ---------------------------------------------------------------------------------

def clean_text(text: object) -> str:
    """`text` without lone surrogates, control characters (tabs and newlines become spaces) or
    bidirectional overrides, NFC-normalised. Never raises for any `str`."""
    if text is None:
        return ""
    text = text if isinstance(text, str) else str(text)
    text = _SURROGATE.sub("", text)
    out = []
    for ch in text:
        if ch in "\t\n\r\x0b\x0c\x85\u2028\u2029":
            out.append(" ")
        elif unicodedata.category(ch) == "Cc" or ord(ch) in _BIDI:
            continue
        else:
            out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def clean_question(raw: object, limit: int = MAX_QUESTION_CHARS) -> str:
    """The question to ask, on one line; InputError (a message for the person) if it is empty, has no
    letter or digit ("?!?") or is too long."""
    question = " ".join(clean_text(raw).split())
    if not question:
        raise InputError("Please type a question first.")
    if not _WORD.search(question):
        raise InputError("That question has no words to search for; please type a question in words.")
    if len(question) > limit:
        raise InputError(f"That question is {len(question):,} characters long; the limit is {limit:,}. "
                         "Please shorten it.")
    return question


def clean_settings(k: object, mode: object, doc: object, docs: Sequence[str]) -> tuple[int, str, str | None]:
    """Validated (k, mode, doc) from what the settings controls or an API caller sent."""
    try:
        k_int = int(float(k)) if k not in (None, "") else 5
    except (TypeError, ValueError, OverflowError):  # OverflowError: "inf"
        raise InputError(f"number of passages {k!r} is not a number") from None
    k_int = max(1, min(MAX_K, k_int))
    mode = (str(mode).strip().lower() if mode else "hybrid") or "hybrid"
    if mode not in MODES:
        raise InputError(f"retrieval mode {mode!r} is not one of {', '.join(MODES)}")
    doc = clean_text(doc).strip() if doc is not None else ""
    if not doc or doc in (ALL_DOCS, "All", "all", "*"):
        return k_int, mode, None
    if not any(doc in (d, Path(d).name, Path(d).stem) for d in docs):  # the names Retriever.search accepts
        raise InputError(f"no document {doc!r} in the index (it has {len(docs)})")
    return k_int, mode, doc


# -- rendering ---------------------------------------------------------------------------------

def escape_markdown(text: str) -> str:
    """`text` shown literally by a Markdown renderer that also accepts HTML: HTML-escaped, and
    Markdown punctuation backslash-escaped."""
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2) if not m.group(2)[0].isdigit()
                              else m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], text)
    return html.escape(text, quote=False)


def heading_path(passage) -> str:
    """The passage's headings below the document title, joined with ' › ' ('' when there are none)."""
    heading = tuple(passage.heading or ())
    if heading and heading[0] == passage.title:
        heading = heading[1:]
    elif heading and not passage.title:
        heading = heading[1:]
    return " › ".join(h for h in heading if h)


def doc_label(passage) -> str:
    """'Title (year)' for a passage's document."""
    title = passage.title or Path(passage.doc).stem
    return f"{title} ({passage.year})" if passage.year and str(passage.year) not in title else title


def answer_markdown(answer) -> str:
    """The assistant's chat message for `answer`: escaped text, the rewritten question when it
    differs from what was typed, and for an abstention why and the closest passages in brief."""
    parts = []
    if answer.original_question and reworded(answer.original_question, answer.question):
        parts.append(f"*Read as: {escape_markdown(answer.question)}*")
    text = escape_markdown(answer.text)
    # Escaped markers look like \[1\]; show them as bold [1] so they stand out as citations.
    text = re.sub(r"\\\[(\d{1,2})\\\]", r"**\\[\1\\]**", text)
    if answer.abstained and getattr(answer, "reason", ""):
        text += f"  \n*Why: {escape_markdown(answer.reason)}.*"
    parts.append(text)
    if answer.abstained:
        if answer.passages:
            lines = ["The closest passages (full text under Sources):"]
            for p in answer.passages[:3]:
                snippet = " ".join(p.text.split())
                snippet = snippet[:90].rsplit(" ", 1)[0] + " …" if len(snippet) > 90 else snippet
                where = p.heading[-1] if len(p.heading) > 1 else ""
                lines.append(f"- *{escape_markdown(doc_label(p))}{' › ' + escape_markdown(where) if where else ''}*: "
                             f"{escape_markdown(snippet)}")
            parts.append("\n".join(lines))
        else:
            parts.append("No passage matched the question.")
    return "\n\n".join(parts)


def highlight(text: str, spans: Iterable[tuple[int, int, int]]) -> str:
    """`text` HTML-escaped with each (start, end, n) span (offsets into `text`) wrapped in a `<mark>`.

    Spans are clipped to the text; overlapping spans keep the first. Each piece is escaped on its own,
    so a mark never splits an entity."""
    out, pos = [], 0
    for start, end, n in sorted(spans):
        start, end = max(start, 0), min(end, len(text))
        if start < pos or start >= end:  # overlaps an earlier mark, or empty after clipping
            continue
        out.append(html.escape(text[pos:start]))
        out.append(f'<mark data-n="{int(n)}">{html.escape(text[start:end])}</mark>'
                   f'<sup class="src-sup">[{int(n)}]</sup>')
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _paragraph_html(text: str) -> str:
    return text.replace("\n", "<br>")


def _card(passage, spans, label: str, extra_class: str = "") -> str:
    where = heading_path(passage)
    badges = f'<span class="src-n">{html.escape(label)}</span> ' if label else ""
    return (
        f'<div class="src-card {extra_class}">'
        f'<div class="src-title">{badges}<span class="src-doc">{html.escape(doc_label(passage))}</span></div>'
        + (f'<div class="src-path">{html.escape(where)}</div>' if where else "")
        + f'<div class="src-meta">{html.escape(passage.doc)} · line {int(passage.line)}'
        f' · score {float(passage.score):.4f}</div>'
        f'<p class="src-text">{_paragraph_html(highlight(passage.text, spans))}</p>'
        "</div>"
    )


EMPTY_SOURCES = ('<div class="src-empty">Ask a question: the passages behind the answer appear here, '
                 "with the cited sentence highlighted.</div>")


def sources_html(answer) -> str:
    """The Sources panel: one card per cited passage (title and year, heading path, line, score, the
    whole paragraph with the cited sentences marked), then the other retrieved passages in a
    collapsed `<details>` (open, as 'closest passages', for an abstention)."""
    if answer is None:
        return EMPTY_SOURCES
    cited: dict[str, tuple[object, list[tuple[int, int, int]], list[int]]] = {}
    for c in answer.citations:
        p = c.passage
        entry = cited.setdefault(p.id, (p, [], []))
        entry[1].append((c.start - p.start, c.end - p.start, c.n))
        entry[2].append(c.n)
    cards = []
    for p, spans, ns in cited.values():
        first = min(spans)[0] if spans else 0
        line = p.line + p.text.count("\n", 0, max(0, first))
        p_line = p if line == p.line else replace(p, line=line)
        cards.append(_card(p_line, spans, " ".join(f"[{n}]" for n in ns), "src-cited"))
    others = [p for p in answer.passages if p.id not in cited]
    parts = []
    if answer.abstained:
        parts.append('<div class="src-abstain">The documents do not answer this. '
                     + ("The closest passages are below." if others else "No passage matched.") + "</div>")
    parts.extend(cards)
    if others:
        title = "Closest passages" if answer.abstained else "Other retrieved passages"
        body = "".join(_card(p, (), f"#{i}", "src-other") for i, p in enumerate(others, 1))
        parts.append(f'<details class="src-more"{" open" if answer.abstained else ""}>'
                     f"<summary>{title} ({len(others)})</summary>{body}</details>")
    if not parts:
        parts.append(EMPTY_SOURCES)
    return '<div class="src-panel">' + "".join(parts) + "</div>"


def message_html(message: str, kind: str = "info") -> str:
    """A one-line notice for the Sources panel, escaped."""
    return f'<div class="src-{kind}">{html.escape(message)}</div>'


def doc_choices(retriever) -> list[tuple[str, str]]:
    """(label, value) pairs for the document filter: 'All documents', then each document by title."""
    titles: dict[str, tuple[str, int | None]] = {}
    for p in getattr(retriever, "passages", ()):
        titles.setdefault(p.doc, (p.title, p.year))
    choices = [(ALL_DOCS, ALL_DOCS)]
    for doc in retriever.docs:
        title, year = titles.get(doc, ("", None))
        label = title or Path(doc).stem
        if year and str(year) not in label:
            label += f" ({year})"
        choices.append((f"{label} — {doc}" if label != Path(doc).stem else doc, doc))
    return choices
