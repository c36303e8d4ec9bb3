"""The index directory as generations: its file names, the two-rename swap that ends a save, crash
recovery and leftovers, and reading one generation whole.

Each save is a generation: written to a temporary sibling directory, swapped in with two renames (a
crash leaves the previous index usable) and never written again. `read_generation` opens the
manifest and every file it lists through one handle on the directory, so a reader gets one
generation whole, and verifies each file's sha256 before returning it: a small file (under
`MAP_BYTES`) as the very bytes it hashed; a big one hashed by streaming it through the descriptor it
opened (two files at a time) and returned open (`VerifiedFile`): the index then reads it through
that same descriptor, at an offset (`os.pread`) or memory-mapped, without holding gigabytes in
memory. The descriptor is the same inode, which a generation never writes again (a swap renames
and deletes directories; an open file outlives both), so what was verified is what is read; a file
rewritten in place by something else after the load is not noticed (the price of not reading it
all into memory). When a build swaps the directory out
under it, it reads the new one, and it waits out the instant between the two renames while the build
holds the lock file `lock_path`. Under that lock, `settle` finishes an interrupted swap and deletes
what crashed builds of this index left (`leftovers`). Does not decode or write index files
(`rag.index.local` and `rag.index.flat` do).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rag.errors import IndexStateError
from rag.index.store import FORMAT_VERSION, Manifest

MANIFEST, PASSAGES, PASSAGE_TABLE, DENSE, BM25 = (
    "manifest.json", "passages.jsonl", "passage_table.npy", "dense.faiss", "bm25")
SENTENCES, SENTENCE_SCALES, SENTENCE_ROWS = "sentences.npy", "sentence_scales.npy", "sentence_rows.npy"
TEXTS, TEXT_OFFSETS, DOCUMENTS = "texts.jsonl", "text_offsets.npy", "documents.json"
ALIASES = "aliases.json"  # other names the documents use (an index saved before it was written has none)
SWAP_WAIT = 10.0  # seconds a reader waits for a build's swap to finish
MAP_BYTES = 1 << 20  # files this big or bigger are memory-mapped once verified; smaller ones are read
_INDEX_ENTRIES = {MANIFEST, PASSAGES, PASSAGE_TABLE, DENSE, BM25, SENTENCES, SENTENCE_SCALES, SENTENCE_ROWS, TEXTS,
                  TEXT_OFFSETS, DOCUMENTS, ALIASES}


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


class VerifiedFile:
    """A big file of a generation, open through the directory handle: hashed once (`sha256`, streamed),
    then read at any offset (`file[a:b]`, with `os.pread`: nothing stays mapped in the process) or
    mapped read-only (`map()`, for arrays that are read as a whole or in long runs). The descriptor is
    closed with the object."""

    def __init__(self, fd: int, size: int):
        self.fd, self.size = fd, size
        self._map: mmap.mmap | None = None

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: slice) -> bytes:
        start, stop, _ = key.indices(self.size)
        parts, at = [], start
        while at < stop:  # one pread returns at most about 2 GB
            part = os.pread(self.fd, stop - at, at)
            if not part:
                raise OSError(f"file shorter than its {self.size} bytes")
            parts.append(part)
            at += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def sha256(self) -> str:
        with open(self.fd, "rb", closefd=False) as f:
            f.seek(0)
            return hashlib.file_digest(f, "sha256").hexdigest()

    def map(self) -> mmap.mmap:
        if self._map is None:
            self._map = mmap.mmap(self.fd, self.size, access=mmap.ACCESS_READ)
        return self._map

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


def _read_in(index_dir: Path, handle: int, name: str) -> bytes | VerifiedFile:
    """File `name` of the generation `handle` opened: its bytes, or (`MAP_BYTES` or more) the file open."""
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=handle)
    except FileNotFoundError:
        if name == MANIFEST:
            raise _no_index(index_dir) from None
        raise IndexStateError(f"index at {str(index_dir)!r} is missing {name}; rebuild it") from None
    size = os.fstat(fd).st_size
    if size >= MAP_BYTES and name != MANIFEST:
        return VerifiedFile(fd, size)
    with open(fd, "rb") as f:
        return f.read()


def _verify(index_dir: Path, opened: dict[str, bytes | VerifiedFile], checksums: dict) -> None:
    """IndexStateError naming the first file that does not match its checksum (big ones hashed two at a
    time: hashlib lets go of the GIL)."""
    big = sorted((name for name, data in opened.items() if isinstance(data, VerifiedFile)),
                 key=lambda name: -opened[name].size)  # the biggest first: the two threads end together
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = dict(zip(big, pool.map(lambda name: opened[name].sha256(), big)))
    for name, data in opened.items():
        digest = digests[name] if name in digests else hashlib.sha256(data).hexdigest()
        if digest != checksums[name]:
            raise IndexStateError(f"index at {str(index_dir)!r} is corrupted: {name} does not match its checksum")


def _parse_manifest(index_dir: Path, data: bytes, checked: bool = True) -> Manifest:
    """The manifest; IndexStateError when it is corrupted, or (if `checked`) of another format version
    (unchecked, an older index's manifest still tells its folder and settings, for a rebuild)."""
    try:
        raw = json.loads(data)
        version = raw.get("format_version")
        if checked and version != FORMAT_VERSION:
            raise IndexStateError(
                f"index at {str(index_dir)!r} has format version {version}, this rag reads {FORMAT_VERSION}; rebuild it")
        return Manifest(**raw)
    except (ValueError, TypeError, AttributeError) as exc:
        raise IndexStateError(f"index at {str(index_dir)!r} has a corrupted {MANIFEST}: {exc}") from None


def read_generation(index_dir: Path, checked: bool) -> tuple[Manifest, dict[str, bytes | VerifiedFile]]:
    """The manifest and (if `checked`) every file it lists, checksums verified, all opened from one
    directory: one generation. A file is its bytes, or from `MAP_BYTES` on a `VerifiedFile`. Read again
    when a build swapped it out meanwhile (a file vanished)."""
    deadline = time.monotonic() + SWAP_WAIT
    while True:
        handle = _open_dir(index_dir, deadline)
        opened: dict[str, bytes | VerifiedFile] = {}
        try:
            manifest = _parse_manifest(index_dir, _read_in(index_dir, handle, MANIFEST), checked)
            for name in (manifest.checksums if checked else ()):
                opened[name] = _read_in(index_dir, handle, name)
            _verify(index_dir, opened, manifest.checksums)
            return manifest, opened
        except (IndexStateError, OSError) as exc:
            for data in opened.values():
                if isinstance(data, VerifiedFile):
                    data.close()
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
