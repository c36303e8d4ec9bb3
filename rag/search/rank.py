"""Rankings and their fusion: the top of a score array, and reciprocal rank fusion with the small
bonuses of a hybrid search (a year the question names, the question's names mentioned).

Pure functions over arrays of scores and lists of passage positions; deterministic (ties go to the
earlier passage). Does not encode, search an index or know about passages.
"""

from __future__ import annotations

import numpy as np

RRF_K = 60
NAME_BONUS = 0.5 / (RRF_K + 1)  # for a passage that mentions every name in the question
YEAR_BONUS = 0.5 / (RRF_K + 1)  # half of one first place in one ranking


def rrf(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: each id scores sum(1 / (k + rank)) over the rankings it is in (rank from 1)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, i in enumerate(ranking, 1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (k + rank)
    return fused


def top(scores: np.ndarray, n: int, mask: np.ndarray | None, floor: float) -> list[tuple[int, float]]:
    """The `n` best (position, score) pairs scoring above `floor`, by score, ties by position; positions
    outside `mask` score -1."""
    if mask is not None:
        scores = np.where(mask, scores, -1.0)
    n = min(n, len(scores))
    if n < 1:
        return []
    best = np.argpartition(-scores, n - 1)[:n]
    best = best[np.lexsort((best, -scores[best]))]
    return [(int(i), float(scores[i])) for i in best if scores[i] > floor]
