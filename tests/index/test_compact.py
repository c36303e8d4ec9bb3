"""rag.index.compact: int8 sentence vectors (codes and a power-of-two scale each) and their scores, and
rag.index.ann.best, the top-n selection the index ranks with."""

from __future__ import annotations

import io

import numpy as np
import pytest

from rag.index import ann, compact
from rag.index.records import NpyRows
from rag.search.rank import top


def unit(rows: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_codes_are_a_quarter_of_float32_and_close_to_it():
    vectors = unit(500)
    codes, scales = compact.encode(vectors)
    assert codes.dtype == np.int8 and scales.dtype == np.float32 and codes.nbytes == vectors.nbytes // 4
    decoded = compact.decode(codes, scales)
    assert np.abs(decoded - vectors).max() <= np.abs(vectors).max() / 127 + 1e-7
    queries = unit(20, seed=1)
    error = np.abs(decoded @ queries.T - vectors @ queries.T)  # cosines of vectors the size of all-MiniLM's
    assert error.max() < 4e-3 and error.mean() < 1e-3


def test_encoding_decoded_vectors_again_gives_the_same_bytes():
    codes, scales = compact.encode(unit(300))
    again = compact.encode(compact.decode(codes, scales))
    assert again[0].tobytes() == codes.tobytes() and again[1].tobytes() == scales.tobytes()
    assert set(np.log2(scales).tolist()) <= set(range(-30, 1))  # powers of two
    assert np.abs(codes).max(axis=1).min() >= 64  # each vector's largest component uses the range


@pytest.mark.parametrize("row", [np.zeros(8), np.full(8, 127.0), np.array([1e-30] + [0.0] * 7),
                                 np.array([-3.0, 1, 0, 0, 0, 0, 0, 0])])
def test_edge_vectors(row):
    codes, scales = compact.encode(row[None, :])
    np.testing.assert_allclose(compact.decode(codes, scales)[0], row, rtol=1 / 64, atol=0)


def npy_rows(array: np.ndarray) -> NpyRows:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return NpyRows(out.getvalue())


def test_vectors_in_memory_and_read_from_the_file_score_alike():
    vectors, rows = unit(40, dim=16), np.array([0, 3, 3, 10, 11, 40])  # passage 1 has no sentences
    codes, scales = compact.encode(vectors)
    decoded, mapped = (compact.SentenceVectors(npy_rows(codes), scales, rows, in_memory=m) for m in (True, False))
    q = unit(1, dim=16, seed=2)[0]
    np.testing.assert_allclose(mapped.best(q), decoded.best(q), atol=1e-6)
    assert decoded.best(q)[1] == -1.0
    expected = [max(vectors[a:b] @ q) if b > a else -1.0 for a, b in zip(rows[:-1], rows[1:])]
    np.testing.assert_allclose(decoded.best(q), expected, atol=0.01)
    for which in ([0, 1, 4], [3], [1], [4, 2, 0], [2, 3, 4], [4, 3, 2, 1, 0]):
        np.testing.assert_allclose(mapped.best_of(q, np.array(which)), decoded.best(q)[which], atol=1e-6)
        np.testing.assert_allclose(decoded.best_of(q, np.array(which)), decoded.best(q)[which], atol=1e-6)
    np.testing.assert_array_equal(mapped.of(3), decoded.of(3))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("floor", [-1.0, 0.0])
def test_best_ranks_as_rank_top(seed, floor):
    rng = np.random.default_rng(seed)
    scores = rng.integers(-1, 5, size=300).astype(np.float32) / 4  # many ties
    mask = rng.random(300) < 0.5
    for n in (1, 10, 50, 300, 400):
        for allowed in (None, mask):
            ranked = ann.best(scores, n, allowed, floor)
            assert [(int(i), float(scores[i])) for i in ranked] == top(scores, n, allowed, floor)
