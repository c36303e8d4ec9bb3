"""What a build finds in a documents folder: which files to index, which to keep, which to skip and why.

`scan` fingerprints every file (reading it once), converts and chunks the new and changed ones
(`rag.ingest.load.load_document`: any supported format), marks the ones whose fingerprint matches the
previous build as unchanged (their old passages and text stand), and skips, with the reason and the
fingerprint, a file of an unknown type, over the size limit, undecodable, binary, damaged, encrypted,
a scan without text, empty or unreadable; each skipped file gives one warning line naming it. A file
of an unknown type or over the limit is fingerprinted by its size alone, so it is never read whole.
`count_changes` compares the files of two builds, skipped ones included, so an unchanged bad file is
no change. `scan_file` is the work on one file and `Scan.add` gathers its outcome, so another executor
(`rag.index.distributed`: Ray workers) can read files elsewhere and give the same `Scan`. Does not
embed, store or decide whether an old index can be reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag.index.store import UNREADABLE, bytes_fingerprint
from rag.ingest.chunk import ChunkSettings, chunk_document
from rag.errors import UnreadableFile
from rag.ingest.formats import by_name, detect, sniff
from rag.ingest.load import check_size, load_document
from rag.types import Document, Passage, Progress


@dataclass
class Scan:
    files: dict = field(default_factory=dict)  # doc -> fingerprint, of every file indexed
    skipped: dict = field(default_factory=dict)  # doc -> fingerprint + "reason", of every file skipped
    unchanged: list[str] = field(default_factory=list)  # docs whose fingerprint matches the previous build
    fresh: list[Passage] = field(default_factory=list)  # the passages of new and changed files
    documents: list[Document] = field(default_factory=list)  # the new and changed files' documents (their text)
    warnings: list[str] = field(default_factory=list)  # one line per skipped file

    def add(self, one: FileScan) -> None:
        """Gather the outcome of `scan_file` (files are added in the order they were found)."""
        if one.reason:
            self.skipped[one.doc] = {**one.fingerprint, "reason": one.reason}
            self.warnings.append(one.warning)
            return
        if one.document is None:
            self.unchanged.append(one.doc)
        else:
            self.fresh.extend(one.passages)
            self.documents.append(one.document)
        self.files[one.doc] = one.fingerprint


@dataclass(frozen=True)
class FileScan:
    """What reading one file gave: its fingerprint and, when it is new or changed, its document and
    passages (None and () when unchanged); for a skipped file the reason and its warning line."""

    doc: str
    fingerprint: dict
    document: Document | None = None
    passages: tuple[Passage, ...] = ()
    reason: str = ""
    warning: str = ""


def _read(path: Path, rel: str, old_fingerprint: dict | None, max_bytes: int | None) -> tuple[dict, Document | None]:
    """The file's fingerprint and its document (None when the fingerprint is `old_fingerprint`);
    UnreadableFile, carrying the fingerprint, when the file is skipped. A file of an unknown type or
    over the size limit is not read whole: its fingerprint is its size."""
    size = path.stat().st_size
    try:
        _check_name(path, rel)
        check_size(path, size, max_bytes)
        _check_type(path)
        data = path.read_bytes()
        check_size(path, len(data), max_bytes)  # it grew since
    except UnreadableFile as exc:
        raise UnreadableFile(path, exc.reason, {"sha256": "", "bytes": size}) from None
    fingerprint = bytes_fingerprint(data)
    if fingerprint == old_fingerprint:
        return fingerprint, None
    try:
        return fingerprint, load_document(rel, data, str(path))
    except UnreadableFile as exc:
        raise UnreadableFile(path, exc.reason, fingerprint) from None


def _check_name(path: Path, rel: str) -> None:
    """UnreadableFile for a file name that is not valid UTF-8 (the index stores names as UTF-8)."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise UnreadableFile(path, "its name is not valid UTF-8; rename it") from None


def _check_type(path: Path) -> None:
    """UnreadableFile for a file no converter reads, from its suffix and its first bytes (a PDF or a
    web page without its suffix is still read)."""
    if by_name(path.name) is None:
        with open(path, "rb") as f:
            head = f.read(1024)
        if sniff(head) not in ("pdf", "html"):
            detect(head, str(path))  # raises: unsupported file type


def scan(found: list[tuple[str, Path]], old_files: dict, max_bytes: int | None, settings: ChunkSettings,
         progress: Progress | None = None) -> Scan:
    """Read the files `found` ((doc, path) pairs) against `old_files` (doc -> fingerprint of the
    previous build)."""
    out = Scan()
    for n, (rel, path) in enumerate(found, 1):
        out.add(scan_file(rel, path, old_files.get(rel), max_bytes, settings))
        if progress:
            progress("read", n, len(found))
    return out


def scan_file(rel: str, path: Path, old_fingerprint: dict | None, max_bytes: int | None,
              settings: ChunkSettings) -> FileScan:
    """Read, convert and chunk one file, unless its fingerprint is `old_fingerprint`."""
    try:
        fingerprint, document = _read(path, rel, old_fingerprint, max_bytes)
        if document is None:
            return FileScan(rel, fingerprint)
        passages = chunk_document(document, settings)
        if not passages:
            raise UnreadableFile(path, "no text to index (empty, or headings only)", fingerprint)
        return FileScan(rel, fingerprint, document, tuple(passages))
    except UnreadableFile as exc:
        return FileScan(rel, exc.fingerprint, reason=exc.reason, warning=_printable(f"skipped {exc}"))
    except OSError as exc:  # gone, or not readable: unchanged while it stays so
        reason = f"could not be read ({exc.strerror or exc})"
        return FileScan(rel, UNREADABLE, reason=reason, warning=_printable(f"skipped {path}: {reason}"))


def _printable(line: str) -> str:
    """`line` with the undecodable bytes of a file name shown as escapes, so that it can be printed."""
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def count_changes(old_files: dict, old_skipped: dict, files: dict, skipped: dict) -> tuple[int, int, int, int]:
    """(added, changed, removed, unchanged) over every file, indexed or skipped; a file that turned
    from indexed to skipped or back, or was skipped for another reason, changed."""
    before = {**{d: ("skipped", r) for d, r in old_skipped.items()}, **{d: ("indexed", f) for d, f in old_files.items()}}
    now = {**{d: ("skipped", r) for d, r in skipped.items()}, **{d: ("indexed", f) for d, f in files.items()}}
    added = len(set(now) - set(before))
    unchanged = sum(1 for d in now if before.get(d) == now[d])
    return added, len(now) - added - unchanged, len(set(before) - set(now)), unchanged
