"""What a build finds in a documents folder: which files to index, which to keep, which to skip and why.

`scan` fingerprints every file (reading it once), chunks the new and changed ones, marks the ones
whose fingerprint matches the previous build as unchanged (their old passages stand, none for an
empty or headings-only file), and skips, with the reason and the fingerprint, a file over the size
limit, not UTF-8, binary or unreadable; each skipped file gives one warning line naming it.
`count_changes` compares the files of two builds, skipped ones included, so an unchanged bad file is
no change. Does not embed, store or decide whether an old index can be reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag.index.store import UNREADABLE, bytes_fingerprint, file_fingerprint
from rag.ingest.chunk import ChunkSettings, chunk_document
from rag.ingest.load import UnreadableFile, check_size, decode_text, parse
from rag.types import Passage, Progress


@dataclass
class Scan:
    files: dict = field(default_factory=dict)  # doc -> fingerprint, of every file indexed
    skipped: dict = field(default_factory=dict)  # doc -> fingerprint + "reason", of every file skipped
    unchanged: list[str] = field(default_factory=list)  # docs whose fingerprint matches the previous build
    fresh: list[Passage] = field(default_factory=list)  # the passages of new and changed files
    warnings: list[str] = field(default_factory=list)  # one line per skipped file


def _read(path: Path, rel: str, old_fingerprint: dict | None, max_bytes: int | None,
          settings: ChunkSettings) -> tuple[dict, list[Passage] | None]:
    """The file's fingerprint and its passages (None when the fingerprint is `old_fingerprint`);
    UnreadableFile, carrying the fingerprint as `.fingerprint`, when the file is skipped."""
    try:
        check_size(path, path.stat().st_size, max_bytes)
        data = path.read_bytes()
        check_size(path, len(data), max_bytes)  # it grew since
    except UnreadableFile as exc:
        exc.fingerprint = file_fingerprint(path)
        raise
    fingerprint = bytes_fingerprint(data)
    if fingerprint == old_fingerprint:
        return fingerprint, None
    try:
        return fingerprint, chunk_document(parse(rel, decode_text(data, path)), settings)
    except UnreadableFile as exc:
        exc.fingerprint = fingerprint
        raise


def scan(docs: Path, paths: list[Path], old_files: dict, max_bytes: int | None, settings: ChunkSettings,
         progress: Progress | None = None) -> Scan:
    """Read `paths` (files under `docs`) against `old_files` (doc -> fingerprint of the previous build)."""
    out = Scan()
    for n, path in enumerate(paths, 1):
        rel = path.relative_to(docs).as_posix()
        try:
            out.files[rel], passages = _read(path, rel, old_files.get(rel), max_bytes, settings)
            if passages is None:
                out.unchanged.append(rel)
            else:
                out.fresh.extend(passages)
        except UnreadableFile as exc:
            out.skipped[rel] = {**exc.fingerprint, "reason": exc.reason}
            out.warnings.append(f"skipped {exc}")
        except OSError as exc:  # gone, or not readable: unchanged while it stays so
            out.skipped[rel] = {**UNREADABLE, "reason": f"could not be read ({exc.strerror or exc})"}
            out.warnings.append(f"skipped {path}: {out.skipped[rel]['reason']}")
        if progress:
            progress("read", n, len(paths))
    return out


def count_changes(old_files: dict, old_skipped: dict, files: dict, skipped: dict) -> tuple[int, int, int, int]:
    """(added, changed, removed, unchanged) over every file, indexed or skipped; a file that turned
    from indexed to skipped or back, or was skipped for another reason, changed."""
    before = {**{d: ("skipped", r) for d, r in old_skipped.items()}, **{d: ("indexed", f) for d, f in old_files.items()}}
    now = {**{d: ("skipped", r) for d, r in skipped.items()}, **{d: ("indexed", f) for d, f in files.items()}}
    added = len(set(now) - set(before))
    unchanged = sum(1 for d in now if before.get(d) == now[d])
    return added, len(now) - added - unchanged, len(set(before) - set(now)), unchanged
