"""Documents a person uploads in the web chat: checked, saved into the documents folder, indexed.

`check_upload` refuses a wrong extension, a file too big, empty, binary (NUL bytes) or not UTF-8;
`safe_filename` keeps a safe base name inside the documents folder. Uploads have a budget: a file
may be at most `MAX_UPLOAD_BYTES` (about a minute of embedding on one core) and at most
`UPLOAD_BUDGET_BYTES` may wait to be indexed at a time, so an upload never holds the index build for
long. `start_upload` saves the good files and has the pipeline index them on its background thread
(incrementally, then swapping the new index in) and returns at once; until then questions are
answered from the index as it was. If indexing fails, the saved files are removed again.
`add_documents` does the same and waits. Does not create Gradio components, retrieve or answer.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import unicodedata
import weakref
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from rag.errors import InputError, RagError
from rag.pipeline import Pipeline
from rag.query import clean_text
from rag.serve.render import escape_markdown
from rag.types import Progress

MAX_UPLOAD_BYTES = 256 * 1024  # one file: about a minute of embedding (~4 KB of text a second on one core)
UPLOAD_BUDGET_BYTES = 512 * 1024  # all uploads waiting to be indexed at once
UPLOAD_SUFFIXES = (".txt", ".md")
MAX_NAME_CHARS = 100
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

_SAVING = threading.Lock()  # uploads take turns at the name checks and the budget
_WAITING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pipeline -> bytes saved, not yet indexed


def size_text(size: int) -> str:
    """A size for people: '300 KB', '5.0 MB'."""
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{max(1, round(size / 1024))} KB"

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
        raise InputError(f"{shown}: too big ({size_text(size)}; the limit is {size_text(MAX_UPLOAD_BYTES)}, "
                         f"what can be indexed in a minute or two)")
    with open(path, "rb") as f:
        data = f.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"{shown}: too big (the limit is {size_text(MAX_UPLOAD_BYTES)})")
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
    """What an upload did: names saved into the documents folder, (name, reason) rejections, and
    while `pending` the Future of the background indexing that will make the saved ones searchable."""

    saved: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    summary: str = ""
    error: str = ""
    pending: bool = False
    future: Future | None = field(default=None, repr=False, compare=False)
    size: int = 0  # bytes saved

    def message(self, progress: str = "") -> str:
        """Markdown for the upload status box (names escaped); `progress` is a line about the indexing."""
        lines = []
        if self.saved:
            names = ", ".join(f"**{escape_markdown(n)}**" for n in self.saved)
            one = len(self.saved) == 1
            if self.pending:
                lines.append(f"Saved {len(self.saved)} document{'s' * (not one)}: {names}. "
                             f"{'It is' if one else 'They are'} being indexed in the background; until then, "
                             "questions are answered from the documents indexed before.")
                if progress:
                    lines.append(f"\n*Indexing: {escape_markdown(progress)}.*")
            else:
                lines.append(f"Added {len(self.saved)} document{'s' * (not one)}: {names}. "
                             f"{'It is' if one else 'They are'} searchable now.")
        if self.error:
            lines.append(f"Indexing failed, nothing was added: {escape_markdown(self.error)}")
        if self.rejected:
            lines.append("Rejected:")
            lines.extend(f"- **{escape_markdown(n)}**: {escape_markdown(r)}" for n, r in self.rejected)
        return "\n".join(lines) or "No files were uploaded."


def save_uploads(files: Iterable[tuple[str | Path, str | None]], docs_dir: str | Path,
                 budget: int | None = None, busy: str = "") -> UploadReport:
    """Check each (temp path, original name) and write the good ones into `docs_dir` (never anywhere
    else, never over an existing file), at most `budget` bytes in all (None: no limit; `busy` ends
    the message of a file refused for that). The caller holds the lock that serialises uploads."""
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
            if budget is not None and report.size + len(data) > budget:
                raise InputError(f"{shown}: not saved, the documents uploaded before are still being indexed "
                                 f"(at most {size_text(UPLOAD_BUDGET_BYTES)} may wait at a time){busy}")
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
            report.size += len(data)
        except InputError as exc:
            reason = str(exc)
            report.rejected.append((shown, reason[len(shown) + 2:] if reason.startswith(shown + ": ") else reason))
        except OSError as exc:
            report.rejected.append((shown, f"could not be saved ({exc.strerror or exc})"))
    return report


def start_upload(pipeline: Pipeline, files: Iterable[tuple[str | Path, str | None]],
                 progress: Progress | None = None) -> UploadReport:
    """Save the acceptable files into the pipeline's documents folder and have them indexed in the
    background; returns at once, `pending` until the new index is swapped in (or indexing failed:
    then the files just saved are removed again, `error` says why and the old index stays)."""
    docs_dir = pipeline.docs_dir
    with _SAVING:
        waiting = _WAITING.get(pipeline, 0)
        left = pipeline.indexing.left
        busy = f"; try again in about {max(10, round(left)):,} s" if left else "; try again in a minute"
        report = save_uploads(files, docs_dir, budget=max(0, UPLOAD_BUDGET_BYTES - waiting), busy=busy)
        if not report.saved:
            return report
        _WAITING[pipeline] = waiting + report.size
        report.pending = True

    def done(summary, error) -> None:
        with _SAVING:
            _WAITING[pipeline] = max(0, _WAITING.get(pipeline, 0) - report.size)
            if error is None:
                report.summary = str(summary) + "".join(f"; {w}" for w in summary.warnings)
            else:  # RagError, OSError or a bug: the old index stays, so the folder goes back to match it
                for name in report.saved:
                    (Path(docs_dir) / name).unlink(missing_ok=True)
                first = str(error).splitlines()[0] if str(error).strip() else ""
                report.error = first if isinstance(error, (RagError, OSError)) and first else type(error).__name__
                report.rejected.extend((n, "not added because indexing failed") for n in report.saved)
                report.saved = []
            report.pending = False

    report.future = pipeline.refresh_in_background(progress, on_done=done)
    return report


def add_documents(pipeline: Pipeline, files: Iterable[tuple[str | Path, str | None]],
                  progress: Progress | None = None, timeout: float | None = None) -> UploadReport:
    """`start_upload`, then wait (up to `timeout` seconds) until the files are searchable or refused."""
    report = start_upload(pipeline, files, progress)
    if report.future is not None:
        try:
            report.future.result(timeout)
        except Exception:  # noqa: BLE001 - the report says what went wrong
            pass
    return report
