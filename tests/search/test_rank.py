"""rag.search.rank: reciprocal rank fusion and the top of a score array (order, ties, mask, floor)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.search.rank import RRF_K, rrf, top


def test_rrf_arithmetic():
    fused = rrf([[3, 1, 2], [1, 4]], k=60)
    assert fused == pytest.approx({
        3: 1 / 61,
        1: 1 / 62 + 1 / 61,
        2: 1 / 63,
        4: 1 / 62,
    })
    assert max(fused, key=fused.get) == 1  # in both lists beats first in one


def test_rrf_small_k_and_edge_cases():
    assert rrf([[7, 8]], k=1) == pytest.approx({7: 1 / 2, 8: 1 / 3})
    assert rrf([]) == {}
    assert rrf([[], []]) == {}
    assert rrf([[5], [5], [5]]) == pytest.approx({5: 3 / (RRF_K + 1)})


def test_top_orders_by_score_then_position():
    scores = np.array([0.5, 0.9, 0.5, 0.0, 0.7], dtype=np.float32)
    assert [i for i, _ in top(scores, 5, None, floor=0.0)] == [1, 4, 0, 2]  # 0.0 is not above the floor
    assert [i for i, _ in top(scores, 2, None, floor=0.0)] == [1, 4]


def test_top_keeps_to_the_mask_and_handles_small_arrays():
    scores = np.array([0.5, 0.9, 0.7], dtype=np.float32)
    mask = np.array([True, False, True])
    assert top(scores, 10, mask, floor=0.0) == [(2, pytest.approx(0.7)), (0, pytest.approx(0.5))]
    assert top(np.zeros(0, dtype=np.float32), 3, None, floor=0.0) == []
    assert top(scores, 3, np.zeros(3, dtype=bool), floor=-1.0) == []  # masked out scores -1, not above -1
