"""The testable helpers behind the web chat (`app.py`).

Does: clean a typed question (control characters, lone surrogates, length limit); render an
`Answer` as chat Markdown and its sources as an HTML panel (every piece of question or document text
goes through `html.escape`, the cited sentence is wrapped in `<mark>` by splitting the paragraph at
the citation's offsets); validate and sanitise uploaded files (extension, size, UTF-8, NUL bytes,
safe base name inside the documents folder); and hold the one `Engine` that every session shares:
the embedding model, the `Retriever` and the `Assistant`, with an upload rebuilding the index
incrementally and swapping in a new `Assistant` under a lock while questions keep being answered.

Does not: create Gradio components or start a server (that is `app.py`), retrieve or compose answers
(`rag.retrieve`, `rag.answer`), or chunk and embed (`rag.build`). Gradio is not imported here.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath

from rag.errors import RagError

MAX_QUESTION_CHARS = 2000
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
UPLOAD_SUFFIXES = (".txt", ".md")
MAX_NAME_CHARS = 100
MODES = ("hybrid", "dense", "bm25")
ALL_DOCS = "All documents"
MAX_K = 10

# Bidirectional overrides and isolates change how the surrounding text is displayed: drop them.
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F])
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|~$])")
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
    """The question to ask, on one line; InputError (a message for the person) if it is empty or too long."""
    question = " ".join(clean_text(raw).split())
    if not question:
        raise InputError("Please type a question first.")
    if len(question) > limit:
        raise InputError(f"That question is {len(question):,} characters long; the limit is {limit:,}. "
                         "Please shorten it.")
    return question


def clean_settings(k: object, mode: object, doc: object, docs: Sequence[str]) -> tuple[int, str, str | None]:
    """Validated (k, mode, doc) from what the settings controls or an API caller sent."""
    try:
        k_int = int(float(k)) if k not in (None, "") else 5
    except (TypeError, ValueError):
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
    differs from what was typed, and for an abstention the closest passages in brief."""
    parts = []
    if answer.original_question and answer.question != answer.original_question:
        parts.append(f"*Read as: {escape_markdown(answer.question)}*")
    text = escape_markdown(answer.text)
    # Escaped markers look like \[1\]; show them as bold [1] so they stand out as citations.
    text = re.sub(r"\\\[(\d{1,2})\\\]", r"**\\[\1\\]**", text)
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


# -- uploads -----------------------------------------------------------------------------------

def safe_filename(name: object) -> str:
    """A safe base name for an uploaded file: the last path component only (either slash), ASCII
    letters, digits, '.', '_' and '-', no leading dots (no hidden files), at most 100 characters,
    the extension lower-cased. InputError when nothing usable is left."""
    raw = clean_text(name).strip()
    base = PureWindowsPath(PurePosixPath(raw).name).name  # drops "../", "a/b/", "C:\\x\\"
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = re.sub(r"[^a-z0-9]", "", suffix.lower())[:10]
    stem = _UNSAFE_NAME.sub("_", stem)
    stem = re.sub(r"\.{2,}", ".", stem).strip("._- ")[: MAX_NAME_CHARS - len(suffix) - 1]
    if not stem:
        raise InputError(f"{raw}: not a usable file name")
    return f"{stem}.{suffix}" if suffix else stem


def shown_name(path: str | Path, name: str | None = None) -> str:
    """The name to show a person for an uploaded file: its base name, cleaned (not yet made safe)."""
    raw = clean_text(name if name is not None else Path(path).name).strip()
    return PurePosixPath(raw.replace("\\", "/")).name or raw or "(no name)"


def check_upload(path: str | Path, name: str | None = None) -> tuple[str, bytes]:
    """(safe name, content) of one uploaded file, or InputError saying which file and why not:
    wrong extension, too big, empty, binary (NUL bytes) or not valid UTF-8."""
    path = Path(path)
    shown = shown_name(path, name)
    suffix = PurePosixPath(shown).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InputError(f"{shown}: only {' and '.join(UPLOAD_SUFFIXES)} files are accepted "
                         f"(this is {suffix or 'a file without an extension'})")
    safe = safe_filename(shown)
    if PurePosixPath(safe).suffix not in UPLOAD_SUFFIXES:
        raise InputError(f"{shown}: not a usable file name")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{shown}: could not be read ({exc.strerror or exc})") from None
    if size > MAX_UPLOAD_BYTES:
        raise InputError(f"{shown}: too big ({size / 1024 / 1024:.1f} MB; the limit is "
                         f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB)")
    with open(path, "rb") as f:
        data = f.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"{shown}: too big (the limit is {MAX_UPLOAD_BYTES // (1024 * 1024)} MB)")
    if b"\x00" in data:
        raise InputError(f"{shown}: looks like a binary file (it has NUL bytes), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{shown}: not valid UTF-8 text (bad byte at position {exc.start})") from None
    if not text.strip():
        raise InputError(f"{shown}: the file is empty")
    return safe, data


@dataclass
class UploadReport:
    """What an upload did: names saved into the documents folder, and (name, reason) rejections."""

    saved: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    summary: str = ""
    error: str = ""

    def message(self) -> str:
        """Markdown for the upload status box (names escaped)."""
        lines = []
        if self.saved:
            lines.append(f"Added {len(self.saved)} document{'s' * (len(self.saved) != 1)}: "
                         + ", ".join(f"**{escape_markdown(n)}**" for n in self.saved)
                         + ". They are searchable now.")
        if self.error:
            lines.append(f"Indexing failed, nothing was added: {escape_markdown(self.error)}")
        if self.rejected:
            lines.append("Rejected:")
            lines.extend(f"- **{escape_markdown(n)}**: {escape_markdown(r)}" for n, r in self.rejected)
        return "\n".join(lines) or "No files were uploaded."


def save_uploads(files: Iterable[tuple[str | Path, str | None]], docs_dir: str | Path) -> UploadReport:
    """Check each (temp path, original name) and write the good ones into `docs_dir` (never anywhere
    else, never over an existing file). The caller holds the lock that serialises uploads."""
    docs_dir = Path(docs_dir).resolve()
    report = UploadReport()
    taken = {p.name.lower() for p in docs_dir.iterdir()} if docs_dir.is_dir() else set()
    for path, name in files:
        shown = shown_name(path, name)
        try:
            safe, data = check_upload(path, name)
            target = (docs_dir / safe).resolve()
            if target.parent != docs_dir:
                raise InputError(f"{shown}: not a usable file name")
            if safe.lower() in taken or os.path.lexists(target):
                raise InputError(f"{shown}: a document named {safe!r} already exists")
            fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=docs_dir)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            except OSError:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            taken.add(safe.lower())
            report.saved.append(safe)
        except InputError as exc:
            reason = str(exc)
            report.rejected.append((shown, reason[len(shown) + 2:] if reason.startswith(shown + ": ") else reason))
        except OSError as exc:
            report.rejected.append((shown, f"could not be saved ({exc.strerror or exc})"))
    return report


STAGES = {"read": "Reading files", "embed": "Embedding passages", "save": "Saving the index"}


def console_progress(stream=None) -> Callable[[str, int, int], None]:
    """A build progress callback for the console: one updating line per stage on a terminal, else
    one line when each stage finishes (so logs stay short)."""
    import sys

    stream = stream or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()

    def progress(stage: str, done: int, total: int) -> None:
        label = STAGES.get(stage, stage)
        if tty:
            width = 30
            filled = int(width * done / total) if total else width
            stream.write(f"\r{label:>20} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            if done >= total:
                stream.write("\n")
        elif done >= total:
            stream.write(f"{label}: {done}/{total} done\n")
        stream.flush()

    return progress


# -- the shared engine -------------------------------------------------------------------------

Progress = Callable[[str, int, int], None]


class Engine:
    """The one model, index and Assistant shared by every session.

    `ask` reads the current Assistant without locking (a reference read is atomic and the Assistant
    is thread-safe for reads); `add_documents` saves the files, rebuilds the index incrementally and
    swaps in a new Retriever and Assistant under a lock, so uploads are serialised and questions
    asked meanwhile are answered from the previous index."""

    def __init__(self, docs_dir: str | Path, index_dir: str | Path, *, embedder=None, k: int = 5,
                 mode: str = "hybrid"):
        self.docs_dir, self.index_dir = Path(docs_dir), Path(index_dir)
        self.embedder, self.k, self.mode = embedder, k, mode
        self._lock = threading.Lock()
        self._assistant = None
        self.last_summary = None

    def start(self, progress: Progress | None = None):
        """Build or update the index (cheap when nothing changed), load it once, warm the model up."""
        from rag.build import build_index

        if self.embedder is None:
            from rag.embed import SentenceTransformerEmbedder

            self.embedder = SentenceTransformerEmbedder()
        with self._lock:
            self.last_summary = build_index(self.docs_dir, self.index_dir, embedder=self.embedder,
                                            progress=progress)
            self._swap()
        self._warm_up()
        return self.last_summary

    def _warm_up(self) -> None:
        """Ask once so that the first person does not pay for lazy set-up (model, tokenizer, caches)."""
        try:
            self._assistant.ask("What do the documents say about cooperation?")
        except RagError as exc:  # an odd corpus must not stop the app; the first real question will say why
            import logging

            logging.getLogger(__name__).warning("warm-up question failed: %s", exc)

    def _swap(self) -> None:
        from rag.answer import Assistant
        from rag.retrieve import Retriever

        retriever = Retriever.load(self.index_dir, embedder=self.embedder)
        self._assistant = Assistant(retriever, k=self.k, mode=self.mode, docs=self.docs_dir)

    @property
    def assistant(self):
        if self._assistant is None:
            raise RagError("the index is not loaded yet; call Engine.start() first")
        return self._assistant

    @property
    def retriever(self):
        return self.assistant.retriever

    @property
    def docs(self) -> tuple[str, ...]:
        return tuple(self.retriever.docs)

    def describe(self) -> str:
        """One line about the index: documents and passages."""
        r = self.retriever
        return f"{len(r.docs)} documents, {len(r.passages)} passages"

    def ask(self, question: object, history: Sequence[tuple[str, str]] = (), *, k: object = None,
            mode: object = None, doc: object = None):
        """Clean the question and settings, then ask the current Assistant. InputError / RagError
        carry a message for the person."""
        assistant = self.assistant  # one snapshot for the whole question
        q = clean_question(question)
        k_int, mode_s, doc_s = clean_settings(k if k is not None else self.k, mode or self.mode, doc,
                                              tuple(assistant.retriever.docs))
        turns = [(clean_text(a), clean_text(b)) for a, b in (history or ())][-10:]
        return assistant.ask(q, history=turns, k=k_int, mode=mode_s, doc=doc_s)

    def add_documents(self, files: Iterable[tuple[str | Path, str | None]],
                      progress: Progress | None = None) -> UploadReport:
        """Save the acceptable files into the documents folder, re-index incrementally and swap in the
        new index. If indexing fails, the files just saved are removed again and the old index stays."""
        from rag.build import build_index

        with self._lock:
            report = save_uploads(files, self.docs_dir)
            if not report.saved:
                return report
            try:
                self.last_summary = build_index(self.docs_dir, self.index_dir, embedder=self.embedder,
                                                progress=progress)
                self._swap()
            except (RagError, OSError) as exc:
                for name in report.saved:
                    (self.docs_dir / name).unlink(missing_ok=True)
                report.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                report.rejected.extend((n, "not added because indexing failed") for n in report.saved)
                report.saved = []
                return report
            report.summary = str(self.last_summary)
            skipped = [w for w in self.last_summary.warnings]
            if skipped:
                report.summary += "; " + "; ".join(skipped)
            return report
