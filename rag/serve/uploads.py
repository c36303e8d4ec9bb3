"""Documents a person uploads in the web chat: checked, saved into the documents folder, indexed.

`check_upload` refuses a wrong extension, a file too big, empty, binary (NUL bytes) or not UTF-8;
`safe_filename` keeps a safe base name inside the documents folder; `add_documents` saves the good
files and has the pipeline index them incrementally and swap the new index in, removing the saved
files again if indexing fails. Does not create Gradio components, retrieve or answer.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from rag.errors import InputError, RagError
from rag.pipeline import Pipeline
from rag.query import clean_text
from rag.serve.render import escape_markdown
from rag.types import Progress

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


def add_documents(pipeline: Pipeline, files: Iterable[tuple[str | Path, str | None]],
                  progress: Progress | None = None) -> UploadReport:
    """Save the acceptable files into the pipeline's documents folder, re-index incrementally and swap
    in the new index. If indexing fails, the files just saved are removed again and the old index stays."""
    docs_dir = pipeline.docs_dir
    with pipeline.lock:  # uploads take turns: the name checks and the build see one folder
        report = save_uploads(files, docs_dir)
        if not report.saved:
            return report
        try:
            summary = pipeline.refresh(progress)
        except (RagError, OSError) as exc:
            for name in report.saved:
                (Path(docs_dir) / name).unlink(missing_ok=True)
            report.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            report.rejected.extend((n, "not added because indexing failed") for n in report.saved)
            report.saved = []
            return report
        report.summary = str(summary) + "".join(f"; {w}" for w in summary.warnings)
        return report
