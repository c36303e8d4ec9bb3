"""End to end on the seeds with the real all-MiniLM-L6-v2 model, FAISS and BM25 (one shared index)."""

from __future__ import annotations

import numpy as np
import pytest

import rag.index.build
from conftest import SEED_2021, SEED_2025, SEEDS
from rag import build_index
from rag.index import local as store
from rag.ingest.load import read_text
from rag.settings import MODES

pytestmark = pytest.mark.e2e


def test_real_index_shape(seed_index, real_embedder):
    loaded = store.load(seed_index)
    assert loaded.manifest.model == "all-MiniLM-L6-v2" and loaded.manifest.dim == real_embedder.dim == 384
    assert {p.doc for p in loaded.passages} == {SEED_2021, SEED_2025}
    texts = {d: read_text(SEEDS / d) for d in (SEED_2021, SEED_2025)}
    assert all(texts[p.doc][p.start:p.end] == p.text for p in loaded.passages)
    norms = np.linalg.norm(loaded.vectors(), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)


def test_fighter_jets(seed_retriever):
    top = seed_retriever.search("Which fighter jets did France announce for Ukraine?", k=5)
    assert "Mirage 2000-5" in top[0].text
    assert top[0].doc == SEED_2025


def test_european_peace_facility_footnote(seed_retriever):
    top = seed_retriever.search("When was the European Peace Facility set up?", k=3)
    hits = [p for p in top if "March 2021" in p.text]
    assert hits, [p.text[:60] for p in top]
    assert hits[0].kind == "footnote" and hits[0].text.startswith("- (2) European Peace Facility")


def test_year_in_question_prefers_that_bluebook(seed_retriever):
    top = seed_retriever.search("What did the 2021 Bluebook say about ASEM?", k=5)
    assert [p.doc for p in top] == [SEED_2021] * 5
    assert all(p.year == 2021 for p in top)
    assert any("ASEM" in p.text for p in top[:2])


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_returns_k(seed_retriever, mode):
    for k in (1, 5, 10):
        results = seed_retriever.search("cooperation between Japan and NATO", k=k, mode=mode)
        assert len(results) == k
        scores = [p.score for p in results]
        assert scores == sorted(scores, reverse=True)


def test_doc_filter_on_seeds(seed_retriever):
    results = seed_retriever.search("Ukraine", k=5, doc=SEED_2021)
    assert len(results) == 5 and {p.doc for p in results} == {SEED_2021}


def test_search_is_deterministic(seed_retriever):
    for mode in MODES:
        a = seed_retriever.search("What did Japan do about COVID-19 in Europe?", k=8, mode=mode)
        b = seed_retriever.search("What did Japan do about COVID-19 in Europe?", k=8, mode=mode)
        assert [(p.id, p.score) for p in a] == [(p.id, p.score) for p in b]


def test_two_builds_give_identical_passages(seed_index, real_embedder, tmp_path):
    other = tmp_path / "index"
    summary = build_index(SEEDS, other, embedder=real_embedder)
    assert summary.embedded == summary.passages == len(store.load(seed_index).passages)
    assert (other / store.PASSAGES).read_bytes() == (seed_index / store.PASSAGES).read_bytes()
    np.testing.assert_allclose(store.load(other).vectors(), store.load(seed_index).vectors(), atol=1e-5)


def test_unchanged_reindex_embeds_nothing(seed_index, real_embedder, monkeypatch):
    before = {p.name: p.stat().st_mtime_ns for p in seed_index.iterdir()}
    summary = build_index(SEEDS, seed_index, embedder=real_embedder)
    assert summary.embedded == 0 and not summary.wrote and summary.unchanged == 2

    # without an embedder, an unchanged corpus does not even load the model
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded for an unchanged corpus")

    monkeypatch.setattr(rag.index.build, "document_embedder", refuse)
    summary = build_index(SEEDS, seed_index)
    assert summary.embedded == 0 and summary.passages > 0
    assert {p.name: p.stat().st_mtime_ns for p in seed_index.iterdir()} == before
