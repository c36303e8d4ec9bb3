"""Passages and documents' texts on disk, read lazily: the JSON-lines files and the tables that find a
line without reading the others.

`passages.jsonl` holds one passage a line (as `Passage.to_json`, without the score); `passage_table.npy`
holds, per passage, the byte offset of its line and its columns (document number, start, end, year;
0 for none), so the retriever filters and looks passages up without making `Passage` objects.
`texts.jsonl` holds one document's text a line, `documents.json` the documents in that order and
`text_offsets.npy` where each line starts. `PassageRecords` is a `Sequence[Passage]` over those
files' contents (`bytes`, or an open file read at an offset) that makes a `Passage` when one is
asked for; `DocumentTexts` is a `Mapping` doc -> text that decodes a text when asked. `npy_array`
views a .npy file as an array without copying it (an open file is memory-mapped); `NpyRows` reads
rows of a 2-d one at an offset (or views it whole through a memory map advised for random reads).
Does not verify checksums (`rag.index.generations` does) nor search.
"""

from __future__ import annotations

import io
import json
import mmap
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from rag.types import Passage

OFFSET, DOC, START, END, YEAR = range(5)  # the columns of passage_table.npy


def npy_header(data) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, Fortran order, where the array starts) of a .npy file's bytes (or open file);
    ValueError for anything but an array of numbers (pickled objects included)."""
    head = io.BytesIO(data[:min(len(data), 65536)])
    version = np.lib.format.read_magic(head)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(head)
    if dtype.hasobject:
        raise ValueError("a .npy file of Python objects")
    return dtype, shape, fortran, head.tell()


def npy_array(data) -> np.ndarray:
    """The array a .npy file holds, viewing `data` without a copy: its bytes, or an open file
    (`rag.index.generations.VerifiedFile`), which is then memory-mapped."""
    dtype, shape, fortran, offset = npy_header(data)
    buffer = data.map() if hasattr(data, "map") else data
    array = np.frombuffer(buffer, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)), offset=offset)
    return array.reshape(shape, order="F" if fortran else "C")


class NpyRows:
    """Rows of a 2-d .npy file read when asked for (`rows(a, b)`), from its bytes or through an open
    file at an offset: what random access to a big file needs (a memory map would keep every page
    around each row it touched, 64 KB a row on Linux, in the process's memory)."""

    def __init__(self, data):
        self.dtype, self.shape, fortran, self.offset = npy_header(data)
        if len(self.shape) != 2 or fortran:
            raise ValueError(f"a .npy file of shape {self.shape}, not rows")
        self.data, self.width = data, self.shape[1] * self.dtype.itemsize
        if len(data) < self.offset + self.shape[0] * self.width:
            raise ValueError(f"a .npy file shorter than its {self.shape} array")

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, a: int, b: int) -> np.ndarray:
        raw = self.data[self.offset + a * self.width:self.offset + b * self.width]
        return np.frombuffer(raw, dtype=self.dtype).reshape(b - a, self.shape[1])

    def mapped(self) -> np.ndarray:
        """The whole array, viewing the bytes, or an open file through a read-only memory map advised
        for random reads (a row faults in its own page, without read-ahead): for gathering scattered
        rows, which one `pread` each would make ten times slower. The pages read stay in the
        process's resident memory (at most the file's size)."""
        buffer = self.data
        if hasattr(self.data, "map"):
            buffer = self.data.map()
            if hasattr(mmap, "MADV_RANDOM"):
                buffer.madvise(mmap.MADV_RANDOM)
        return np.frombuffer(buffer, dtype=self.dtype, count=self.shape[0] * self.shape[1],
                             offset=self.offset).reshape(self.shape)


def save_npy(path: Path, array: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


def write_passages(path: Path, passages: Sequence[Passage], doc_numbers: Mapping[str, int]) -> np.ndarray:
    """Write passages.jsonl at `path`; returns the passage table (one row per passage)."""
    table = np.zeros((len(passages), 5), dtype=np.int64)
    offset = 0
    with open(path, "wb") as f:
        for i, p in enumerate(passages):
            row = p.to_json()
            del row["score"]
            line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
            table[i] = (offset, doc_numbers[p.doc], p.start, p.end, p.year or 0)
            f.write(line)
            offset += len(line)
    return table


def write_texts(path: Path, texts: Mapping[str, str]) -> np.ndarray:
    """Write texts.jsonl at `path` (documents in the mapping's order); returns the lines' offsets (one
    more than documents)."""
    offsets = [0]
    with open(path, "wb") as f:
        for doc, text in texts.items():
            line = (json.dumps({"doc": doc, "text": text}, ensure_ascii=False) + "\n").encode("utf-8")
            f.write(line)
            offsets.append(offsets[-1] + len(line))
    return np.array(offsets, dtype=np.int64)


def _passage(line) -> Passage:
    return Passage.from_json(json.loads(line))


class PassageRecords(Sequence[Passage]):
    """The passages of passages.jsonl (`data`), each made when asked for; iterating reads the lines in
    order. Compare with a tuple through `tuple(records)`."""

    def __init__(self, data, table: np.ndarray):
        self.data, self.table = data, table  # passages.jsonl (bytes or an open file); passage_table.npy
        self._spans: dict | None = None if passages_in_order(table) else {
            (int(d), int(s), int(e)): i for i, (d, s, e) in enumerate(table[:, [DOC, START, END]].tolist())}

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"passage {i} of {len(self)}")
        start = int(self.table[i, OFFSET])
        end = int(self.table[i + 1, OFFSET]) if i + 1 < len(self) else len(self.data)
        return _passage(self.data[start:end])

    def __iter__(self) -> Iterator[Passage]:
        step = 4096
        for a in range(0, len(self), step):
            b = min(len(self), a + step)
            end = int(self.table[b, OFFSET]) if b < len(self) else len(self.data)
            lines = self.data[int(self.table[a, OFFSET]):end].split(b"\n")  # not splitlines: U+2028 stays
            yield from map(_passage, lines[:b - a])

    def position(self, doc_number: int, start: int, end: int) -> int | None:
        """The passage with this span: by binary search, passages being in (document, start, end) order
        as a build writes them (else through a dictionary made at load)."""
        key = (doc_number, start, end)
        if self._spans is not None:
            return self._spans.get(key)
        t = self.table
        i = bisect_left(range(len(t)), key, key=lambda j: (t[j, DOC], t[j, START], t[j, END]))
        return i if i < len(t) and (t[i, DOC], t[i, START], t[i, END]) == key else None


def passages_in_order(table: np.ndarray) -> bool:
    """Whether the passages are sorted by (document, start, end), as a build writes them."""
    if len(table) < 2:
        return True
    keys = table[:, [DOC, START, END]]
    a, b = keys[:-1], keys[1:]
    later_span = (a[:, 1] < b[:, 1]) | ((a[:, 1] == b[:, 1]) & (a[:, 2] < b[:, 2]))
    return bool(((a[:, 0] < b[:, 0]) | ((a[:, 0] == b[:, 0]) & later_span)).all())


class DocumentTexts(Mapping[str, str]):
    """doc -> its text, decoded from texts.jsonl (`data`) when asked for; the last few are kept."""

    def __init__(self, data, docs: Sequence[str], offsets: np.ndarray, keep: int = 64):
        self.data, self.docs, self.offsets = data, tuple(docs), offsets
        self._number = {doc: i for i, doc in enumerate(self.docs)}
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._keep, self._lock = keep, threading.Lock()

    def __len__(self) -> int:
        return len(self.docs)

    def __iter__(self) -> Iterator[str]:
        return iter(self.docs)

    def __contains__(self, doc) -> bool:
        return doc in self._number

    def __getitem__(self, doc: str) -> str:
        with self._lock:
            text = self._cache.get(doc)
            if text is not None:
                self._cache.move_to_end(doc)
                return text
        i = self._number[doc]
        row = json.loads(self.data[int(self.offsets[i]):int(self.offsets[i + 1])])
        if row.get("doc") != doc:
            raise ValueError(f"line {i + 1} of the texts holds {row.get('doc')!r}, not {doc!r}")
        text = row["text"]
        with self._lock:
            self._cache[doc] = text
            while len(self._cache) > self._keep:
                self._cache.popitem(last=False)
        return text

    def number(self, doc: str) -> int | None:
        return self._number.get(doc)
