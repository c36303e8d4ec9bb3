"""What a person reads: an `Answer` as chat Markdown, as plain text for the terminal and as JSON;
its sources as an HTML panel; search results and evaluation reports. Every piece of question or
document text shown as HTML goes through `html.escape`, and the cited sentences are wrapped in
`<mark>` by splitting the paragraph at the citations' offsets. A place in a document is its page for
a PDF ("p. 12") and its line otherwise; each card of the Sources panel links to the original file
(`source_url`: the web app's read-only file route, `#page=N` for a PDF). Does not create Gradio
components, serve files, retrieve, answer or touch files.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

from rag.answer.followup import reworded
from rag.query import clean_text
from rag.types import Answer, Passage

ALL_DOCS = "All documents"
SOURCE_ROUTE = "source"  # the web app serves the original of document `doc` at /source/<doc> (rag.serve.files)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|~$])")
_MD_LINE_START = re.compile(r"^(\s*)([#+-]|\d+[.)])", re.MULTILINE)  # headings, list items
EVAL_COLUMNS = ("recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "latency_p50_ms", "latency_p95_ms",
                "answer_accuracy", "citation_accuracy", "abstention_precision", "abstention_recall",
                "answer_chars_p50", "ask_latency_p50_ms", "ask_latency_p95_ms")


# -- JSON and plain text -------------------------------------------------------------------------

def search_json(question: str, mode: str, k: int, passages: Sequence[Passage]) -> dict:
    """The JSON shape of `rag search --json`."""
    return {"question": question, "mode": mode, "k": k, "passages": [p.to_json() for p in passages]}


def answer_json(answer: Answer) -> dict:
    """The JSON shape of an `Answer`, shared by `rag ask --json` and the web API."""
    return {
        "question": answer.question, "original_question": answer.original_question, "answer": answer.text,
        "abstained": answer.abstained, "reason": answer.reason,
        "score": answer.score,  # the best quoted sentence's relevance (what abstention weighs); not in `reason`
        "citations": [{"n": c.n, "doc": c.doc, "heading": list(c.passage.heading), "start": c.start, "end": c.end,
                       "page": c.page, "quote": c.quote, "paragraph": c.passage.text, "score": c.passage.score}
                      for c in answer.citations],
        "passages": [p.to_json() for p in answer.passages],
    }


def place(page: int | None, line: int) -> str:
    """Where a quote or passage is, for a person: "p. 12" in a document with pages (PDF), else "line 14"."""
    return f"p. {int(page)}" if page is not None else f"line {int(line)}"


def answer_text(answer: Answer) -> str:
    """The answer for a terminal: the rewritten question when it differs, the text, why it abstained
    and the closest passages (one line each), or each citation with its place (page or line) and quote."""
    lines = []
    if answer.original_question and reworded(answer.original_question, answer.question):
        lines.append(f"(question read as: {answer.question})")
    lines.append(answer.text + (f"\nWhy: {answer.reason}." if answer.abstained and answer.reason else "") + "\n")
    if answer.abstained:
        lines.append("Closest passages:" if answer.passages else "No passages were found.")
        for p in answer.passages[:3]:
            text = " ".join(p.text.split())
            doc = p.doc if p.page is None else f"{p.doc} (p. {p.page})"
            lines.append(f"  - {' > '.join((doc, *p.heading[1:]))}: {text[:200]}{'…' if len(text) > 200 else ''}")
    for c in answer.citations:
        lines.append(f"[{c.n}] {c.doc}, {place(c.page, c.line)} "
                     f"({' > '.join(c.passage.heading[1:]) or c.passage.title})")
        lines.append(f"    \"{c.quote}\"")
    return "\n".join(lines)


def eval_table(report: dict) -> str:
    """`rag eval`'s report as a table: one column per config, one row per metric."""
    rows = report["configs"]
    lines = [(f"{report['qa']} on {report['docs']}: {report['n']} questions "
              f"({report['n_answerable']} answerable, {report['n_unanswerable']} unanswerable)"),
             f"{'metric':22}" + "".join(f"{c:>10}" for c in rows)]
    for col in EVAL_COLUMNS:
        if any(col in r for r in rows.values()):
            cells = ["-" if r.get(col) is None else f"{r[col]:.3f}" if isinstance(r[col], float) else str(r[col])
                     for r in rows.values()]
            lines.append(f"{col:22}" + "".join(f"{c:>10}" for c in cells))
    lines += [f"{config}: skipped ({why})" for config, why in report.get("skipped", {}).items()]
    return "\n".join(lines)


# -- rendering ---------------------------------------------------------------------------------

def escape_markdown(text: str) -> str:
    """`text` shown literally by a Markdown renderer that also accepts HTML: HTML-escaped, and
    Markdown punctuation backslash-escaped."""
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2) if not m.group(2)[0].isdigit()
                              else m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], text)
    return html.escape(text, quote=False)


def question_markdown(text: object, limit: int = 300) -> str:
    """A typed question as the chat shows it: cleaned, escaped, cut to a preview when long ('' when
    nothing is left)."""
    text = " ".join(clean_text(text).split())
    return escape_markdown(text if len(text) <= limit else text[:limit] + " …")


def heading_path(passage) -> str:
    """The passage's headings below the document title, joined with ' › ' ('' when there are none)."""
    heading = tuple(passage.heading or ())
    if heading and (heading[0] == passage.title or not passage.title):
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
    if answer.abstained and answer.reason:
        text += f"  \n*Why: {escape_markdown(answer.reason)}.*"
    parts.append(text)
    if answer.abstained:
        if answer.passages:
            lines = ["The closest passages (full text under Sources):"]
            for p in answer.passages[:3]:
                snippet = " ".join(p.text.split())
                snippet = snippet[:90].rsplit(" ", 1)[0] + " …" if len(snippet) > 90 else snippet
                where = p.heading[-1] if len(p.heading) > 1 else ""
                label = doc_label(p) + (f", p. {p.page}" if p.page is not None else "")
                lines.append(f"- *{escape_markdown(label)}{' › ' + escape_markdown(where) if where else ''}*: "
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


def source_url(doc: str, page: int | None = None) -> str:
    """The link to the original file of `doc`, relative to the web app's page (so it works under a
    proxy's path prefix too): "source/<doc, percent-encoded>", with "#page=N" for a page of a PDF. Every
    character that could end the attribute or start a scheme is encoded; the result is still to be
    HTML-escaped where it is written."""
    url = f"{SOURCE_ROUTE}/{quote(doc, safe='/')}"
    return f"{url}#page={int(page)}" if page is not None else url


def _card(passage, spans, label: str, extra_class: str = "", links: bool = True) -> str:
    where = heading_path(passage)
    badges = f'<span class="src-n">{html.escape(label)}</span> ' if label else ""
    at = f"{html.escape(passage.doc)} · {place(passage.page, passage.line)}"
    if links:  # the name and the place open the original, at that page for a PDF
        what = "the original document" + (f" at page {int(passage.page)}" if passage.page is not None else "")
        at = (f'<a class="src-link" href="{html.escape(source_url(passage.doc, passage.page))}" target="_blank" '
              f'rel="noopener noreferrer" title="Open {what} in a new tab">{at} ↗</a>')
    return (
        f'<div class="src-card {extra_class}">'
        f'<div class="src-title">{badges}<span class="src-doc">{html.escape(doc_label(passage))}</span></div>'
        + (f'<div class="src-path">{html.escape(where)}</div>' if where else "")
        + f'<div class="src-meta">{at} · score {float(passage.score):.4f}</div>'
        f'<p class="src-text">{_paragraph_html(highlight(passage.text, spans))}</p>'
        "</div>"
    )


EMPTY_SOURCES = ('<div class="src-empty">Ask a question: the passages behind the answer appear here, '
                 "with the cited sentence highlighted.</div>")


def sources_html(answer, links: bool = True) -> str:
    """The Sources panel: one card per cited passage (title and year, heading path, the page of the
    first cited sentence for a PDF or else its line, score, the whole paragraph with the cited
    sentences marked), then the other retrieved passages in a collapsed `<details>` (open, as 'closest
    passages', for an abstention). With `links`, each document name opens its original file (at the
    page, for a PDF) in a new tab through the web app's file route."""
    if answer is None:
        return EMPTY_SOURCES
    cited: dict[str, list] = {}  # passage id -> its citations
    for c in answer.citations:
        cited.setdefault(c.passage.id, []).append(c)
    cards = []
    for citations in cited.values():
        p = citations[0].passage
        spans = [(c.start - p.start, c.end - p.start, c.n) for c in citations]
        first = min(citations, key=lambda c: c.start)  # the place of the first cited sentence
        cards.append(_card(replace(p, line=first.line, page=first.page), spans,
                           " ".join(f"[{c.n}]" for c in citations), "src-cited", links))
    others = [p for p in answer.passages if p.id not in cited]
    parts = []
    if answer.abstained:
        parts.append('<div class="src-abstain">The documents do not answer this. '
                     + ("The closest passages are below." if others else "No passage matched.") + "</div>")
    parts.extend(cards)
    if others:
        title = "Closest passages" if answer.abstained else "Other retrieved passages"
        body = "".join(_card(p, (), f"#{i}", "src-other", links) for i, p in enumerate(others, 1))
        parts.append(f'<details class="src-more"{" open" if answer.abstained else ""}>'
                     f"<summary>{title} ({len(others)})</summary>{body}</details>")
    if not parts:
        parts.append(EMPTY_SOURCES)
    return '<div class="src-panel">' + "".join(parts) + "</div>"


def message_html(message: str, kind: str = "info") -> str:
    """A one-line notice for the Sources panel, escaped."""
    return f'<div class="src-{kind}">{html.escape(message)}</div>'


def doc_choices(passages: Sequence[Passage]) -> list[tuple[str, str]]:
    """(label, value) pairs for the document filter: 'All documents', then each document by title."""
    titles: dict[str, tuple[str, int | None]] = {}
    for p in passages:
        titles.setdefault(p.doc, (p.title, p.year))
    choices = [(ALL_DOCS, ALL_DOCS)]
    for doc in sorted(titles):
        title, year = titles.get(doc, ("", None))
        label = title or Path(doc).stem
        if year and str(year) not in label:
            label += f" ({year})"
        choices.append((f"{label} — {doc}" if label != Path(doc).stem else doc, doc))
    return choices
