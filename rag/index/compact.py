"""Sentence vectors stored compactly, and scored.

Each vector is stored as int8 codes and one power-of-two scale (its largest component becomes a code
from 64 to 127): a quarter of float32's bytes; cosines move by 0.0005 on average, 0.004 at most, on
all-MiniLM-L6-v2's SQuAD sentence vectors, and the seeds' answer figures do not move at all.
Decoding (code * scale) is exact arithmetic, so encoding decoded vectors again gives the same bytes:
an incremental build equals a fresh one. `SentenceVectors` answers what
the index is asked about sentences, in float32: an exact index decodes every vector once into memory
(as fast as float32 storage), an approximate one leaves the codes in their file and decodes only
the rows a question needs, gathered through a memory map (the pages read stay resident: at most the
file, 1.5 GB for a million passages). Does not split sentences or read files.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from rag.index.records import NpyRows


def encode(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes int8 (m, dim), scales float32 (m,)) of float vectors (m, dim)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    largest = np.abs(vectors).max(axis=1, initial=0.0).astype(np.float64) / 127.0
    mantissa, exponent = np.frexp(largest)  # largest = mantissa * 2**exponent, mantissa in [0.5, 1)
    exponent = np.where(mantissa == 0.5, exponent - 1, exponent)  # already a power of two
    scales = np.where(largest > 0, np.ldexp(1.0, exponent), 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


def decode(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The float32 vectors of `codes` and `scales` (exact: scales are powers of two), in one pass."""
    out = np.empty(codes.shape, dtype=np.float32)
    for a in range(0, len(codes), 65536):
        np.multiply(codes[a:a + 65536], scales[a:a + 65536, None], out=out[a:a + 65536])
    return out


class SentenceVectors:
    """The sentence vectors of an index: passage i owns rows `rows[i]:rows[i + 1]` of `codes`."""

    def __init__(self, codes: NpyRows, scales: np.ndarray, rows: np.ndarray, in_memory: bool):
        self.codes, self.scales, self.rows = codes, scales, rows
        self.matrix = decode(codes.rows(0, len(codes)), scales) if in_memory else None  # float32, small indexes
        has = rows[1:] > rows[:-1]
        self._has, self._starts = has, rows[:-1][has]

    def __len__(self) -> int:
        return len(self.codes)

    def of(self, i: int) -> np.ndarray:
        """Passage i's sentence vectors, float32 (len, dim)."""
        a, b = int(self.rows[i]), int(self.rows[i + 1])
        return self.matrix[a:b] if self.matrix is not None else decode(self.codes.rows(a, b), self.scales[a:b])

    def similarities(self, vector: np.ndarray, a: int = 0, b: int | None = None) -> np.ndarray:
        """Inner products of `vector` with rows a:b (all by default), float32."""
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        b = len(self) if b is None else b
        if self.matrix is not None:
            # einsum, not `@`: numpy's BLAS threads would spin against torch's on two cores (3x slower searches)
            return np.einsum("ij,j->i", self.matrix[a:b], vector)
        out = np.empty(b - a, dtype=np.float32)
        for c in range(a, b, 32768):  # 12 MB read, 48 MB decoded at a time
            d = min(b, c + 32768)
            out[c - a:d - a] = np.einsum("ij,j->i", self.codes.rows(c, d).astype(np.float32), vector) * self.scales[c:d]
        return out

    def best(self, vector: np.ndarray) -> np.ndarray:
        """Per passage, the inner product of `vector` with its most similar sentence (-1 without one)."""
        sims = self.similarities(vector)
        out = np.full(len(self.rows) - 1, -1.0, dtype=np.float32)
        if len(self._starts):
            out[self._has] = np.maximum.reduceat(sims, self._starts)
        return out

    def best_of(self, vector: np.ndarray, passages: np.ndarray) -> np.ndarray:
        """`best` for the given passages only (gathering and decoding only their sentences)."""
        passages = np.asarray(passages, dtype=np.int64)
        starts, ends = self.rows[passages], self.rows[passages + 1]
        counts = ends - starts
        out = np.full(len(passages), -1.0, dtype=np.float32)
        if not counts.sum():
            return out
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rows = np.arange(int(counts.sum())) - np.repeat(first - starts, counts)
        if self.matrix is not None:
            matrix = self.matrix[rows]
        else:
            matrix = self._codes[rows].astype(np.float32) * self.scales[rows][:, None]
        sims = np.einsum("ij,j->i", matrix, np.asarray(vector, dtype=np.float32).reshape(-1))
        has = counts > 0
        out[has] = np.maximum.reduceat(sims, first[has])
        return out

    @cached_property
    def _codes(self) -> np.ndarray:
        return self.codes.mapped()
