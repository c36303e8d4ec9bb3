"""The testable helpers behind the web chat (`app.py`).

Does: validate and sanitise uploaded files (extension, size, UTF-8, NUL bytes,
safe base name inside the documents folder); and hold the one `Engine` that every session shares:
the embedding model, the `Retriever` and the `Assistant`, with an upload rebuilding the index
incrementally and swapping in a new `Assistant` under a lock while questions keep being answered.

Cleaning questions and rendering answers is `rag.render` (re-exported here). Does not: create Gradio components or start a server (that is `app.py`), retrieve or compose answers
(`rag.retrieve`, `rag.answer`), or chunk and embed (`rag.build`). Gradio is not imported here.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from rag.errors import RagError

from rag.render import (  # noqa: F401 - re-exported for app.py
    MAX_QUESTION_CHARS, ALL_DOCS, MAX_K, MODES, InputError, clean_text, clean_question, clean_settings,
    escape_markdown, heading_path, doc_label, answer_markdown, highlight, EMPTY_SOURCES, sources_html,
    message_html, doc_choices,
)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
UPLOAD_SUFFIXES = (".txt", ".md")
MAX_NAME_CHARS = 100
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

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
                         + (". They are" if len(self.saved) != 1 else ". It is") + " searchable now.")
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


STAGES = {"wait": "Waiting for another build", "read": "Reading files", "embed": "Embedding passages",
          "save": "Saving the index"}


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
