"""The index directory as generations: its file names, the two-rename swap that ends a save, crash
recovery and leftovers, and reading one generation whole.

Each save is a generation: written to a temporary sibling directory, swapped in with two renames (a
crash leaves the previous index usable) and never written again. `read_generation` reads the
manifest and every file it lists through one handle on the directory, checksums verified on the
very bytes returned, so a reader gets one generation whole; when a build swaps the directory out
under it, it reads the new one, and it waits out the instant between the two renames while the build
holds the lock file `lock_path`. Under that lock, `settle` finishes an interrupted swap and deletes
what crashed builds of this index left (`leftovers`). Does not decode or write index files
(`rag.index.local` and `rag.index.flat` do).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from rag.errors import IndexStateError
from rag.index.store import FORMAT_VERSION, Manifest

MANIFEST, PASSAGES, DENSE, BM25 = "manifest.json", "passages.jsonl", "dense.faiss", "bm25"
SENTENCES, SENTENCE_ROWS, TEXTS = "sentences.npy", "sentence_rows.npy", "texts.jsonl"
SWAP_WAIT = 10.0  # seconds a reader waits for a build's swap to finish
_INDEX_ENTRIES = {MANIFEST, PASSAGES, DENSE, BM25, SENTENCES, SENTENCE_ROWS, TEXTS}


def _recover(index_dir: Path, *, building: bool = False) -> None:
    """Finish a swap that a crash interrupted: put the previous index back if the new one is missing.

    A reader (not `building`) does so only when no build holds the lock; while one does, the directory
    is missing for the instant between the swap's two renames, so the reader waits for the new one
    (up to `SWAP_WAIT` seconds) rather than undo the swap under the builder's feet."""
    old = _displaced(index_dir)
    if index_dir.exists() or not _index_like(old):
        return
    if building:
        os.replace(old, index_dir)
        return
    from filelock import FileLock, Timeout

    try:
        with FileLock(lock_path(index_dir), timeout=0):
            if not index_dir.exists() and old.exists():
                os.replace(old, index_dir)
    except Timeout:  # a build is mid-swap
        deadline = time.monotonic() + SWAP_WAIT
        while not index_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def _displaced(index_dir: Path) -> Path:
    """Where a swap parks the previous index until the new one is in place (one fixed name)."""
    return index_dir.parent / f".{index_dir.name}.old"


def _index_like(path: Path) -> bool:
    """A real directory holding index files only (maybe not all of them): what a save writes or parks."""
    try:
        return path.is_dir() and not path.is_symlink() and {p.name for p in path.iterdir()} <= _INDEX_ENTRIES
    except OSError:  # deleted meanwhile
        return False


def leftovers(index_dir: str | Path) -> list[Path]:
    """What crashed builds of `index_dir` left beside it: its temporary directories `.NAME.tmp-XXXXXXXX`
    (`tempfile.mkdtemp`'s 8 characters) and, with the index in place, its displaced `.NAME.old`; only
    directories that hold index files only. Not the lock file, nor any other index's leftovers."""
    index_dir = Path(index_dir)
    if not index_dir.parent.is_dir():
        return []
    mine = re.compile(rf"\.{re.escape(index_dir.name)}\.tmp-[a-z0-9_]{{8}}")
    found = [p for p in index_dir.parent.iterdir() if mine.fullmatch(p.name)]
    if index_dir.exists():
        found.append(_displaced(index_dir))
    return sorted(p for p in found if _index_like(p))


def settle(index_dir: str | Path) -> None:
    """Under the build lock, before a build: finish an interrupted swap, refuse a directory that is not an
    index (`check_replaceable`), and delete the leftovers of crashed builds of this index."""
    index_dir = Path(index_dir)
    _recover(index_dir, building=True)
    check_replaceable(index_dir)
    for path in leftovers(index_dir):
        shutil.rmtree(path, ignore_errors=True)


def check_replaceable(index_dir: str | Path) -> None:
    """IndexStateError unless `index_dir` is missing, empty, has a manifest (an index of any version)
    or holds only index files: a build swaps the whole directory out and deletes it, so it must never
    be a file or a folder of other things (`--index seeds` or `--index notes.txt` by mistake)."""
    index_dir = Path(index_dir)
    if not os.path.lexists(index_dir):
        return
    if not index_dir.is_dir():
        raise IndexStateError(f"{str(index_dir)!r} is not a directory; refusing to replace it with an index "
                              "(choose another index path)")
    others = sorted(p.name for p in index_dir.iterdir() if p.name not in _INDEX_ENTRIES)
    if others and not (index_dir / MANIFEST).is_file():
        raise IndexStateError(f"{str(index_dir)!r} is not an index directory (it holds {others[0]!r}"
                              f"{f' and {len(others) - 1} more' if len(others) > 1 else ''}); refusing to "
                              "replace it with an index (choose another index path)")


def lock_path(index_dir: str | Path) -> Path:
    """The lock file of a build of `index_dir`: a sibling, since the directory itself is swapped."""
    index_dir = Path(index_dir)
    return index_dir.parent / f".{index_dir.name}.lock"


def _no_index(index_dir: Path) -> IndexStateError:
    return IndexStateError(f"no index at {str(index_dir)!r} (missing {MANIFEST}); build one with `rag index`")


def _open_dir(index_dir: Path, deadline: float) -> int:
    """A handle on the index directory now in place, waiting (until `deadline`) through a build's swap."""
    while True:
        _recover(index_dir)
        try:
            return os.open(index_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            if index_dir.exists() or (_index_like(_displaced(index_dir)) and time.monotonic() < deadline):
                time.sleep(0.01)  # mid-swap: the new one is moving in, or the old one is being put back
                continue
            raise _no_index(index_dir) from None
        except NotADirectoryError:
            raise _no_index(index_dir) from None


def _moved(index_dir: Path, handle: int) -> bool:
    """Whether the directory at `index_dir` is no longer the one `handle` opened (a build swapped it out;
    the open handle keeps that directory's inode from being reused meanwhile)."""
    mine = os.fstat(handle)
    try:
        now = os.stat(index_dir)
    except OSError:
        return True
    return (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino)


def _read_in(index_dir: Path, handle: int, name: str) -> bytes:
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=handle)
    except FileNotFoundError:
        if name == MANIFEST:
            raise _no_index(index_dir) from None
        raise IndexStateError(f"index at {str(index_dir)!r} is missing {name}; rebuild it") from None
    with open(fd, "rb") as f:
        return f.read()


def _parse_manifest(index_dir: Path, data: bytes) -> Manifest:
    try:
        raw = json.loads(data)
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexStateError(
                f"index at {str(index_dir)!r} has format version {version}, this rag reads {FORMAT_VERSION}; rebuild it")
        return Manifest(**raw)
    except (ValueError, TypeError, AttributeError) as exc:
        raise IndexStateError(f"index at {str(index_dir)!r} has a corrupted {MANIFEST}: {exc}") from None


def read_generation(index_dir: Path, checked: bool) -> tuple[Manifest, dict[str, bytes]]:
    """The manifest and (if `checked`) the bytes of every file it lists, checksums verified, all read from
    one directory: one generation. Read again when a build swapped it out meanwhile (a file vanished)."""
    deadline = time.monotonic() + SWAP_WAIT
    while True:
        handle = _open_dir(index_dir, deadline)
        try:
            manifest = _parse_manifest(index_dir, _read_in(index_dir, handle, MANIFEST))
            files = {}
            for name, expected in (manifest.checksums.items() if checked else ()):
                files[name] = _read_in(index_dir, handle, name)
                if hashlib.sha256(files[name]).hexdigest() != expected:
                    raise IndexStateError(f"index at {str(index_dir)!r} is corrupted: {name} does not match "
                                          "its checksum")
            return manifest, files
        except (IndexStateError, OSError) as exc:
            if not _moved(index_dir, handle) or time.monotonic() > deadline:
                if isinstance(exc, IndexStateError):
                    raise
                raise IndexStateError(f"index at {str(index_dir)!r} could not be read: {exc}") from None
        finally:
            os.close(handle)


def swap_in(new: Path, index_dir: Path) -> None:
    """Put the finished generation `new` in place of `index_dir` with two renames (the previous one
    parked at `.NAME.old` in between, then deleted)."""
    old = _displaced(index_dir)
    shutil.rmtree(old, ignore_errors=True)  # left over from a swap whose clean-up did not run
    if index_dir.exists():
        os.replace(index_dir, old)
    os.replace(new, index_dir)
    shutil.rmtree(old, ignore_errors=True)
