"""Documents a person uploads in the web chat: checked, converted, saved into the uploads folder, indexed.

An upload is accepted in the formats a documents folder is (`rag.ingest.formats.SUFFIXES`: text and
Markdown, PDF, Word .docx, HTML), and its format is what its content is, not what its name says
(`detect`): a PDF named "notes.txt" is saved as "notes.pdf", while an executable or a zip named
"x.pdf" is refused. Each file is converted (`convert`) before it is saved, so a scan without a text
layer, a damaged Word file or a binary file is refused at once with the converter's one-line reason.
`safe_filename` keeps a safe base name; files are written whole (a temporary file, then a rename),
never over an existing one, with the permissions 0644, into `pipeline.upload_dir` only (the uploads
folder when the app has one, else the documents folder).

Limits. A text file may be at most `MAX_UPLOAD_BYTES` (its bytes are its text). A PDF, Word or HTML
file may be at most `MAX_DOCUMENT_BYTES` (most of its bytes are layout, fonts, images or markup; the
same as the web app's own upload limit). What costs time is embedding the text, so the text extracted
from any one file may be at most `MAX_UPLOAD_TEXT` (about a minute of embedding on one core), and
the budget is in text too: at most `UPLOAD_BUDGET_BYTES` of extracted text (UTF-8 bytes) may wait to be
indexed at a time, so an upload never holds the index build for long. `start_upload` checks and
converts the files (without holding the upload lock), saves the good ones and has the pipeline index
them on its background thread (incrementally, then swapping the new index in) and returns at once;
until then questions are answered from the index as it was. If indexing fails, the saved files are
removed again. `add_documents` does the same and waits. Does not create Gradio components, retrieve
or answer.
"""

from __future__ import annotations

import logging
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
from typing import NamedTuple

from rag.errors import InputError, RagError, UnreadableFile
from rag.ingest.formats import FORMAT_NAMES, FORMATS, by_name, convert, detect
from rag.pipeline import Pipeline
from rag.query import clean_text
from rag.serve.render import escape_markdown
from rag.types import Progress

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 256 * 1024  # a text file: about a minute of embedding (~4 KB of text a second on one core)
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024  # a PDF, Word or HTML file (its text is a fraction of its bytes)
MAX_UPLOAD_TEXT = 256 * 1024  # the text extracted from one file (UTF-8 bytes): the same minute of embedding
UPLOAD_BUDGET_BYTES = 512 * 1024  # extracted text of all uploads waiting to be indexed at once
FILE_MODE = 0o644
MAX_NAME_CHARS = 100
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

_SAVING = threading.Lock()  # uploads take turns at the name checks and the budget
_WAITING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pipeline -> text bytes saved, not yet indexed


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


def limits_text() -> str:
    """The upload limits in a sentence, for the web page."""
    return (f"Up to {size_text(MAX_UPLOAD_BYTES)} a text file and {size_text(MAX_DOCUMENT_BYTES)} a PDF, Word or HTML "
            f"file, with at most {size_text(MAX_UPLOAD_TEXT)} of text each and {size_text(UPLOAD_BUDGET_BYTES)} of "
            "text waiting to be indexed at a time.")


class Checked(NamedTuple):
    """An uploaded file that may be saved: its safe name (with its format's suffix), its bytes, its
    format and the size of its text (UTF-8 bytes, what the upload budget counts)."""

    name: str
    data: bytes
    fmt: str
    text_bytes: int


def check_upload(path: str | Path, name: str | None = None) -> Checked:
    """The checked upload of one file, or InputError saying which file and why not: too big, of a
    format no converter reads (by content, then by name), or without text the converters can find
    (empty, binary, damaged, a scan), or with more text than one upload may have."""
    path = Path(path)
    shown = shown_name(path, name)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{shown}: could not be read ({exc.strerror or exc})") from None
    if size > MAX_DOCUMENT_BYTES:
        raise InputError(f"{shown}: too big ({size_text(size)}; the limit is {size_text(MAX_DOCUMENT_BYTES)} for a "
                         f"PDF, Word or HTML file and {size_text(MAX_UPLOAD_BYTES)} for a text file)")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{shown}: could not be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise InputError(f"{shown}: the file is empty")
    try:
        fmt = detect(data, shown)
    except UnreadableFile as exc:
        raise InputError(f"{shown}: {exc.reason}") from None
    if fmt == "text" and len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"{shown}: too big ({size_text(len(data))}; the limit is {size_text(MAX_UPLOAD_BYTES)}, "
                         f"what can be indexed in a minute or two)")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"{shown}: too big (the limit is {size_text(MAX_DOCUMENT_BYTES)})")
    safe = with_suffix(safe_filename(shown), fmt)
    try:
        text = convert(data, shown, fmt).text
    except UnreadableFile as exc:
        raise InputError(f"{shown}: {exc.reason}") from None
    except RagError as exc:
        raise InputError(f"{shown}: {str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    if not text.strip():
        raise InputError(f"{shown}: " + ("the file is empty" if fmt == "text" else "no text was found in it"))
    text_bytes = len(text.encode("utf-8", "surrogatepass"))
    if text_bytes > MAX_UPLOAD_TEXT:
        raise InputError(f"{shown}: too much text ({size_text(text_bytes)}; the limit is {size_text(MAX_UPLOAD_TEXT)} "
                         f"of text a file, what can be indexed in a minute or two)")
    return Checked(safe, data, fmt, text_bytes)


def with_suffix(safe: str, fmt: str) -> str:
    """`safe` with a suffix of format `fmt`: kept when its suffix already names that format; a
    document suffix of another format is replaced ("notes.txt" holding a PDF -> "notes.pdf"), any other
    suffix kept and the format's own added ("notes.exe" holding a PDF -> "notes.exe.pdf")."""
    if by_name(safe) == fmt:
        return safe
    stem = safe[: -len(PurePosixPath(safe).suffix)] if by_name(safe) else safe
    new = FORMATS[fmt][0][0]
    return stem[: MAX_NAME_CHARS - len(new)] + new


@dataclass
class UploadReport:
    """What an upload did: names saved into the uploads folder, (sent name, saved name) of files saved
    under their format's suffix, (name, reason) rejections, and while `pending` the Future of the
    background indexing that will make the saved ones searchable."""

    saved: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    summary: str = ""
    error: str = ""
    pending: bool = False
    future: Future | None = field(default=None, repr=False, compare=False)
    size: int = 0  # text bytes saved (what the budget counts)
    renamed: list[tuple[str, str]] = field(default_factory=list)

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
            for sent, saved in self.renamed:
                if saved in self.saved:
                    lines.append(f"\n*{escape_markdown(sent)} is a {FORMAT_NAMES[_format_of(saved)]} file: "
                                 f"saved as {escape_markdown(saved)}.*")
        if self.error:
            lines.append(f"Indexing failed, nothing was added: {escape_markdown(self.error)}")
        if self.rejected:
            lines.append("Rejected:")
            lines.extend(f"- **{escape_markdown(n)}**: {escape_markdown(r)}" for n, r in self.rejected)
        return "\n".join(lines) or "No files were uploaded."


def _format_of(name: str) -> str:
    return by_name(name) or "text"


Check = tuple[str, str, "Checked | None", str]  # (sent name, shown name, the checked file or None, why not)


def check_uploads(files: Iterable[tuple[str | Path, str | None]]) -> list[Check]:
    """`check_upload` for each (temp path, original name): reading and converting, the slow part,
    done before any lock is taken."""
    checks = []
    for path, name in files:
        shown = shown_name(path, name)
        try:
            checks.append((str(path), shown, check_upload(path, name), ""))
        except InputError as exc:
            reason = str(exc)
            checks.append((str(path), shown, None, reason[len(shown) + 2:] if reason.startswith(shown + ": ") else reason))
    return checks


def save_checked(checks: Iterable[Check], folder: str | Path, budget: int | None = None,
                 busy: str = "") -> UploadReport:
    """Write the checked files into `folder` (created when missing; never anywhere else, never over an
    existing file), with at most `budget` bytes of text in all (None: no limit; `busy` ends the
    message of a file refused for that). The caller holds the lock that serialises uploads."""
    folder = Path(folder)
    report = UploadReport()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        folder = folder.resolve()
        taken = {p.name.lower() for p in folder.iterdir()}
    except OSError as exc:
        report.rejected.extend((shown, f"could not be saved ({exc.strerror or exc})") for _, shown, _, _ in checks)
        return report
    for _, shown, checked, why in checks:
        try:
            if checked is None:
                raise InputError(f"{shown}: {why}")
            target = (folder / checked.name).resolve()
            if target.parent != folder:
                raise InputError(f"{shown}: not a usable file name")
            if checked.name.lower() in taken or os.path.lexists(target):
                raise InputError(f"{shown}: a document named {checked.name!r} already exists")
            if budget is not None and report.size + checked.text_bytes > budget:
                raise InputError(f"{shown}: not saved, the documents uploaded before are still being indexed "
                                 f"(at most {size_text(UPLOAD_BUDGET_BYTES)} of text may wait at a time){busy}")
            _write(folder, target, checked.data)
            taken.add(checked.name.lower())
            report.saved.append(checked.name)
            report.size += checked.text_bytes
            if PurePosixPath(checked.name).suffix != PurePosixPath(safe_or_none(shown)).suffix:
                report.renamed.append((shown, checked.name))
        except InputError as exc:
            reason = str(exc)
            report.rejected.append((shown, reason[len(shown) + 2:] if reason.startswith(shown + ": ") else reason))
        except OSError as exc:
            report.rejected.append((shown, f"could not be saved ({exc.strerror or exc})"))
    return report


def safe_or_none(name: str) -> str:
    """`safe_filename(name)`, or '' when nothing usable is left."""
    try:
        return safe_filename(name)
    except InputError:
        return ""


def _write(folder: Path, target: Path, data: bytes) -> None:
    """`data` written whole to `target` (a temporary file in `folder`, then a rename), mode 0644."""
    fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)  # mkstemp makes 0600: the documents folder's files are readable
            f.write(data)
        os.replace(tmp, target)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_uploads(files: Iterable[tuple[str | Path, str | None]], folder: str | Path,
                 budget: int | None = None, busy: str = "") -> UploadReport:
    """Check each (temp path, original name) and write the good ones into `folder` (`check_uploads`,
    then `save_checked`). The caller holds the lock that serialises uploads."""
    return save_checked(check_uploads(files), folder, budget=budget, busy=busy)


def start_upload(pipeline: Pipeline, files: Iterable[tuple[str | Path, str | None]],
                 progress: Progress | None = None) -> UploadReport:
    """Check and convert the files, save the acceptable ones into the pipeline's uploads folder
    (`pipeline.upload_dir`) and have them indexed in the background; returns at once, `pending` until
    the new index is swapped in (or indexing failed: then the files just saved are removed again,
    `error` says why and the old index stays)."""
    folder = pipeline.upload_dir
    checks = check_uploads(files)  # the slow part, outside the lock
    with _SAVING:
        waiting = _WAITING.get(pipeline, 0)
        left = pipeline.indexing.left
        busy = f"; try again in about {max(10, round(left)):,} s" if left else "; try again in a minute"
        report = save_checked(checks, folder, budget=max(0, UPLOAD_BUDGET_BYTES - waiting), busy=busy)
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
                    (Path(folder) / name).unlink(missing_ok=True)
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
