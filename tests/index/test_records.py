"""rag.index.records: passages and documents' texts written as JSON lines with their tables, read back
lazily from bytes or a memory map, and .npy files viewed without a copy."""

from __future__ import annotations

import io
import mmap

import numpy as np
import pytest

from conftest import texts_for
from rag.index import records
from rag.types import Passage

PASSAGES = [Passage("b.txt", 0, 5, "Alpha", ("B",), "B", 2020), Passage("b.txt", 7, 11, "Beta"),
            Passage("a.txt", 2, 9, "Gam\u2028ma.", page=3, page_breaks=(5,)), Passage("c.txt", 0, 4, "Zeta")]


@pytest.fixture
def written(tmp_path):
    texts = {doc: texts_for(PASSAGES)[doc] for doc in sorted(texts_for(PASSAGES))}
    numbers = {doc: i for i, doc in enumerate(texts)}
    table = records.write_passages(tmp_path / "passages.jsonl", PASSAGES, numbers)
    offsets = records.write_texts(tmp_path / "texts.jsonl", texts)
    return tmp_path, table, offsets, texts


@pytest.mark.parametrize("mapped", [False, True])
def test_passages_read_back_one_at_a_time(written, mapped):
    folder, table, _, _ = written
    with open(folder / "passages.jsonl", "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if mapped else f.read()
    lazy = records.PassageRecords(data, table)
    assert len(lazy) == 4 and tuple(lazy) == tuple(PASSAGES) and list(lazy[1:3]) == PASSAGES[1:3]
    assert lazy[-1] == PASSAGES[-1] and lazy[2].text == "Gam\u2028ma."
    with pytest.raises(IndexError):
        lazy[4]
    assert table[:, records.YEAR].tolist() == [2020, 0, 0, 0]
    # written out of (document, start, end) order: found through a dictionary instead of a binary search
    assert [lazy.position(d, s, e) for d, s, e in table[:, 1:4].tolist()] == [0, 1, 2, 3]
    assert lazy.position(0, 2, 10) is None


def test_position_by_binary_search_in_build_order(tmp_path):
    ordered = sorted(PASSAGES, key=lambda p: (p.doc, p.start, p.end))
    numbers = {"a.txt": 0, "b.txt": 1, "c.txt": 2}
    table = records.write_passages(tmp_path / "p.jsonl", ordered, numbers)
    lazy = records.PassageRecords((tmp_path / "p.jsonl").read_bytes(), table)
    assert records.passages_in_order(table) and lazy._spans is None
    assert [lazy.position(numbers[p.doc], p.start, p.end) for p in ordered] == [0, 1, 2, 3]
    assert lazy.position(1, 0, 6) is None and lazy.position(3, 0, 4) is None


def test_texts_decoded_when_asked(written):
    folder, _, offsets, texts = written
    lazy = records.DocumentTexts((folder / "texts.jsonl").read_bytes(), list(texts), offsets, keep=1)
    assert dict(lazy) == texts and lazy.get("zzz.txt") is None and "a.txt" in lazy and lazy.number("c.txt") == 2
    assert lazy["b.txt"] == lazy["b.txt"] == texts["b.txt"]
    wrong = records.DocumentTexts((folder / "texts.jsonl").read_bytes(), ["x.txt", "b.txt", "c.txt"], offsets)
    with pytest.raises(ValueError, match="holds 'a.txt', not 'x.txt'"):
        wrong["x.txt"]


@pytest.mark.parametrize("array", [np.arange(12, dtype=np.int64).reshape(3, 4), np.zeros((0, 5), np.int64),
                                   np.asfortranarray(np.ones((2, 3), np.float32)), np.array([1.5], np.float16)])
def test_npy_array_views_the_bytes(array):
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    view = records.npy_array(out.getvalue())
    np.testing.assert_array_equal(view, array)
    assert view.dtype == array.dtype and not view.flags.writeable


def test_npy_array_refuses_objects():
    out = io.BytesIO()
    np.save(out, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="objects"):
        records.npy_array(out.getvalue())


def test_npy_rows_reads_rows_at_an_offset():
    array = np.arange(60, dtype=np.int8).reshape(12, 5)
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    rows = records.NpyRows(out.getvalue())
    assert len(rows) == 12 and rows.rows(3, 7).tolist() == array[3:7].tolist() and rows.rows(5, 5).shape == (0, 5)
    with pytest.raises(ValueError, match="shorter"):
        records.NpyRows(out.getvalue()[:-1])
    one = io.BytesIO()
    np.save(one, np.arange(3), allow_pickle=False)
    with pytest.raises(ValueError, match="not rows"):
        records.NpyRows(one.getvalue())
