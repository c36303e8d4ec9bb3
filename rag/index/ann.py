"""The dense index over passage vectors: exact up to `ANN_THRESHOLD` passages, approximate above.

Up to the threshold it is FAISS's `IndexFlatIP` (exact inner products over float32 vectors: small
corpora keep every figure they had). Above it, an inverted file (`IndexIVFScalarQuantizer`: vectors
stored as float16 in about 4 * sqrt(n) lists, k-means with a fixed seed over an evenly spaced
sample; `IVF_NPROBE` lists probed), or by name an HNSW graph (`IndexHNSWSQ`, float16, M = `HNSW_M`,
built on one thread). Both give the same bytes for the same vectors on any run.

Measured by `eval/bench_scale.py` (a million generated passages, 2 cores): IVF with 4,096 lists
finds 0.972 of the exact top 10 probing 256 lists (4.4 ms on one thread, 3.1 ms with the probes split
between the 2 cores as a single question's search does unless `serve_threads` limits it; 0.956 at
128), built in 2 to 3.5 minutes, 790 MB; HNSW (M 48, efConstruction 120) found 0.898 with a beam
of 512 (2 ms), built in 17 minutes on its one thread, 1.17 GB; so IVF is the default (at 100k
passages both reach 0.97). The threshold: an exact hybrid search costs about
a microsecond per passage (the best-sentence ranking scans every sentence vector): 47 ms at 50,000
passages and 63 ms at 100,000, against 9-13 ms approximate; at 50,000 an index is twenty times
SQuAD-dev's 2,500 passages, and everything smaller stays exact.

A search limited to a few allowed passages (a document or year filter) is exact over their
vectors; a wider one probes with FAISS's ID selector. `best` is the top-n selection every ranking
here uses (the order of `rag.search.rank.top`: score, then position). Does not read or write files,
and knows nothing of passages.
"""

from __future__ import annotations

import os

import numpy as np

ANN_THRESHOLD = 50_000  # passages: at most this many are searched exactly (see the module docstring)
HNSW_M = 48  # graph neighbours per vector
EF_CONSTRUCTION = 120  # beam while building
EF_SEARCH = 256  # beam while searching (raised to n when more are asked for)
IVF_NPROBE = 256  # lists an IVF search probes (of about 4 * sqrt(n): 4,096 for a million passages)
EXACT_FILTER = 20_000  # a filtered search over at most this many passages is exact
KINDS = ("flat", "hnsw", "ivf")


def kind_for(n: int, threshold: int | None = None, approximate: str = "ivf") -> str:
    """The kind of index for `n` passages: "flat" up to the threshold, else `approximate`."""
    if approximate not in KINDS[1:]:
        raise ValueError(f"approximate index {approximate!r} is not one of {KINDS[1:]}")
    return "flat" if n <= (ANN_THRESHOLD if threshold is None else threshold) else approximate


def build(vectors: np.ndarray, dim: int, kind: str = "flat"):
    """A FAISS index of `kind` over `vectors` (normalised, float32), deterministic: one thread for the
    graph, a fixed seed and sample for k-means."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if kind != "flat":  # as stored: vectors read back from an index (an incremental build) give the same graph
        vectors = vectors.astype(np.float16).astype(np.float32)
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction, index.hnsw.efSearch = EF_CONSTRUCTION, EF_SEARCH
        index.train(vectors[:1])  # float16 needs no training
    elif kind == "ivf":
        lists = _ivf_lists(len(vectors))
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, lists, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        index.cp.seed, index.nprobe = 1234, IVF_NPROBE
        index.by_residual = False  # float16 of the vector itself: read back, it is what was added
        sample = vectors[np.linspace(0, len(vectors) - 1, min(len(vectors), 64 * lists)).astype(np.int64)]
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        index.train(sample)
    else:
        raise ValueError(f"index kind {kind!r} is not one of {KINDS}")
    threads = faiss.omp_get_max_threads()
    # threads would insert into a graph in a different order each run; k-means and list assignment
    # give the same bytes on any number of threads, so they take every core
    faiss.omp_set_num_threads(1 if kind == "hnsw" else os.cpu_count() or 1)
    try:
        for a in range(0, len(vectors), 65536):
            index.add(vectors[a:a + 65536])
    finally:
        faiss.omp_set_num_threads(threads)
    if kind == "ivf":
        index.make_direct_map()  # for `reconstruct`
    return prepare(index)


def _ivf_lists(n: int) -> int:
    """About 4 * sqrt(n) inverted lists, a power of two, with at least 64 vectors to train each."""
    return int(2 ** round(np.log2(max(1.0, min(4 * np.sqrt(n), n / 64)))))


def kind_of(index) -> str:
    import faiss

    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    return "flat"


def prepare(index):
    """`index` as read from a file, set to search (its beam or probes)."""
    import faiss

    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = EF_SEARCH
    elif isinstance(index, faiss.IndexIVF):
        index.nprobe = IVF_NPROBE
        index.parallel_mode = 1  # one question's probes split between threads (mode 0 splits questions)
    return index


def search(index, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    """The `n` (position, inner product) pairs nearest `vector`, only among `allowed` positions if given."""
    import faiss

    query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    approximate = kind_of(index) != "flat"
    if allowed is not None:
        ids = np.flatnonzero(allowed).astype(np.int64)
        if approximate and len(ids) <= EXACT_FILTER:
            if not len(ids):
                return []
            scores = np.einsum("ij,j->i", index.reconstruct_batch(ids), query[0])
            return [(int(ids[j]), float(scores[j])) for j in best(scores, n)]
        params = faiss.SearchParametersHNSW(efSearch=max(EF_SEARCH, n)) if kind_of(index) == "hnsw" else (
            faiss.SearchParametersIVF(nprobe=IVF_NPROBE) if approximate else faiss.SearchParameters())
        params.sel = faiss.IDSelectorBatch(ids)
    elif kind_of(index) == "hnsw":
        params = faiss.SearchParametersHNSW(efSearch=max(EF_SEARCH, n))
    elif approximate:
        params = faiss.SearchParametersIVF(nprobe=IVF_NPROBE)
    else:
        params = None
    if approximate and kind_of(index) == "ivf":  # its lists are probed on every core a question may use
        from rag.index.cpu import query_threads

        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(query_threads())
        try:
            scores, found = index.search(query, n, params=params)
        finally:
            faiss.omp_set_num_threads(threads)
    else:
        scores, found = index.search(query, n, params=params)
    return [(int(i), float(s)) for i, s in zip(found[0], scores[0]) if i >= 0]


def best(scores: np.ndarray, n: int, allowed: np.ndarray | None = None, floor: float | None = None) -> np.ndarray:
    """Positions of the `n` best scores above `floor`, best first, ties to the earlier position;
    positions outside `allowed` score -1 (as `rag.search.rank.top`, so the same scores give the same
    ranking)."""
    if allowed is not None:
        scores = np.where(allowed, scores, -1.0)
    n = min(n, len(scores))
    if n < 1:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.lexsort((top, -scores[top]))]
    return top if floor is None else top[scores[top] > floor]
