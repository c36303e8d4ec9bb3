"""rag.search.retriever: modes, ordering, filters, the year preference, rrf(), and embedder checks (fake embedder)."""

from __future__ import annotations

import pytest

import rag.search.retriever
from conftest import FakeEmbedder
from rag.errors import IndexStateError, InputError, RagError
from rag.search.rank import RRF_K, YEAR_BONUS, rrf
from rag.search.retriever import Retriever
from rag.settings import MAX_K, MODES

RANKINGS = 3  # dense, BM25 and the best sentence

OBVIOUS = [
    ("Why do cats purr and chase mice?", "cat.txt"),
    ("Which dogs bark at strangers and fetch sticks?", "dog.txt"),
    ("Where do birds build nests of twigs?", "animals/bird.txt"),
    ("Do fish breathe through gills?", "fish.md"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("question, doc", OBVIOUS)
def test_obvious_query_finds_obvious_doc(toy_retriever, mode, question, doc):
    results = toy_retriever.search(question, k=3, mode=mode)
    assert results[0].doc == doc


@pytest.mark.parametrize("mode", MODES)
def test_scores_descending_and_k_respected(toy_retriever, mode):
    for k in (1, 2, 3):
        results = toy_retriever.search("revenue grew and cats purr", k=k, mode=mode)
        assert 1 <= len(results) <= k
        scores = [p.score for p in results]
        assert scores == sorted(scores, reverse=True)
        assert len({p.id for p in results}) == len(results)


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_k_larger_than_the_index(toy_retriever, mode):
    assert len(toy_retriever.passages) < MAX_K
    results = toy_retriever.search("animals", k=MAX_K, mode=mode)
    assert len(results) == len(toy_retriever.passages)  # dense ranks every passage


def test_bm25_returns_only_matching_passages(toy_retriever):
    results = toy_retriever.search("goldfish", k=5, mode="bm25")
    assert [p.doc for p in results] == ["fish.md"]
    assert results[0].text == "Goldfish eat flakes, plankton and tiny shrimp."
    assert toy_retriever.search("zzzunknownword", k=5, mode="bm25") == []


def test_dense_scores_are_cosine_similarities(toy_retriever, fake_embedder):
    (top,) = toy_retriever.search("Do fish breathe through gills?", k=1, mode="dense")
    q = fake_embedder.vector("Do fish breathe through gills?")
    expected = float(q @ fake_embedder.vector(top.context()))
    assert top.score == pytest.approx(expected, abs=1e-5)


def test_results_are_exact_spans_of_the_files(toy_retriever, toy_docs):
    for p in toy_retriever.search("cats dogs birds fish revenue", k=10, mode="hybrid"):
        assert (toy_docs / p.doc).read_text(encoding="utf-8")[p.start:p.end] == p.text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("doc", ["dog.txt", "dog", "animals/bird.txt", "bird.txt"])
def test_doc_filter(toy_retriever, mode, doc):
    results = toy_retriever.search("cats purr and chase mice, dogs bark, birds sing", k=5, mode=mode, doc=doc)
    assert results
    expected = "dog.txt" if doc.startswith("dog") else "animals/bird.txt"
    assert {p.doc for p in results} == {expected}


def test_unknown_doc_is_an_error(toy_retriever):
    with pytest.raises(RagError, match="no document 'unicorn.txt'") as info:
        toy_retriever.search("cats", doc="unicorn.txt")
    assert "cat.txt" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("mode", MODES)
def test_year_filter(toy_retriever, mode):
    results = toy_retriever.search("revenue grew strongly", k=5, mode=mode, year=2021)
    assert results and {p.doc for p in results} == {"report_2021.txt"}
    with pytest.raises(InputError, match="no document of year 1999 in the index .it has 2021, 2022"):
        toy_retriever.search("revenue grew strongly", k=5, mode=mode, year=1999)


def test_question_naming_a_year_prefers_that_doc_in_hybrid(toy_retriever):
    question = "revenue growth from exports in 2021"
    # Without the year preference report_2022 wins: it says "revenue" three times and mentions exports.
    for mode in ("dense", "bm25"):
        ranked = toy_retriever.search(question, k=2, mode=mode)
        assert [p.doc for p in ranked] == ["report_2022.txt", "report_2021.txt"]
    hybrid = toy_retriever.search(question, k=2, mode="hybrid")
    assert [p.doc for p in hybrid] == ["report_2021.txt", "report_2022.txt"]
    # second in every ranking, plus the bonus; the other is first in every ranking
    assert hybrid[0].score == pytest.approx(RANKINGS / (RRF_K + 2) + YEAR_BONUS, abs=1e-6)
    assert hybrid[1].score == pytest.approx(RANKINGS / (RRF_K + 1), abs=1e-6)
    # a year that is no document's year changes nothing
    assert toy_retriever.named_years("revenue in 1999 and 2021") == {2021}
    plain = toy_retriever.search("revenue growth from exports in 1999", k=2, mode="hybrid")
    assert plain[0].doc == "report_2022.txt"


def test_explicit_year_filter_disables_the_bonus(toy_retriever):
    (only,) = toy_retriever.search("revenue growth from exports in 2021", k=3, mode="hybrid", year=2021)
    assert only.doc == "report_2021.txt"
    assert only.score == pytest.approx(RANKINGS / (RRF_K + 1), abs=1e-6)  # first in every ranking, no bonus


@pytest.mark.parametrize("mode", ["nope", "hybrid2", "naive"])
def test_bad_mode(toy_retriever, mode):
    with pytest.raises(InputError, match=f"mode '{mode}' is not one of hybrid, dense, bm25"):
        toy_retriever.search("cats", mode=mode)


def test_mode_is_read_without_case_or_spaces(toy_retriever):
    assert toy_retriever.search("cats", mode=" BM25 ") == toy_retriever.search("cats", mode="bm25")


@pytest.mark.parametrize("k", [0, -1, 2.5, "x", MAX_K + 1, float("inf")])
def test_bad_k(toy_retriever, fake_embedder, k):
    calls = fake_embedder.calls
    with pytest.raises(InputError, match="k of"):
        toy_retriever.search("cats", k=k)
    assert fake_embedder.calls == calls  # refused before any work


@pytest.mark.parametrize("k, n", [("3", 3), (2.0, 2), (None, 5)])
def test_k_as_a_number_in_any_form(toy_retriever, k, n):
    assert len(toy_retriever.search("cats dogs birds fish revenue", k=k, mode="dense")) == n


@pytest.mark.parametrize("question", ["", "   ", "\n\t", None, "?!?"])
def test_question_without_words_is_refused_before_any_work(toy_retriever, fake_embedder, question):
    calls = fake_embedder.calls
    with pytest.raises(InputError, match="the question"):
        toy_retriever.search(question)
    assert fake_embedder.calls == calls


def test_hybrid_scores_are_rrf_of_dense_bm25_and_best_sentence(toy_retriever):
    q = "cats purr at night"
    n = len(toy_retriever.passages)
    dense_results = toy_retriever.search(q, k=n, mode="dense")
    bm25_results = toy_retriever.search(q, k=n, mode="bm25")
    rankings = [[(p.id, p.score) for p in dense_results], [(p.id, p.score) for p in bm25_results],
                [(toy_retriever.passages[i].id, s) for i, s in toy_retriever._best_sentence(q, n, None)]]
    expected = rrf([[i for i, _ in r] for r in rankings])
    hybrid = {p.id: p.score for p in toy_retriever.search(q, k=n, mode="hybrid")}
    assert set(hybrid) == set(expected)
    # passages whose score ties with another's may take either rank; check all the others exactly
    tied = set()
    for results in rankings:
        scores = [s for _, s in results]
        tied |= {i for i, s in results if scores.count(s) > 1}
    untied = [i for i in expected if i not in tied]
    assert len(untied) >= 3
    assert {i: hybrid[i] for i in untied} == pytest.approx({i: expected[i] for i in untied}, abs=1e-6)
    assert max(hybrid, key=hybrid.get) == dense_results[0].id == bm25_results[0].id


def test_wrong_dimension_embedder(toy_index):
    with pytest.raises(IndexStateError, match="dimension 64") as info:
        Retriever.load(toy_index, embedder=FakeEmbedder(dim=32))
    assert "32" in str(info.value)


def test_wrong_model_name_embedder(toy_index):
    with pytest.raises(IndexStateError, match="'fake-hash'") as info:
        Retriever.load(toy_index, embedder=FakeEmbedder(name="other-model"))
    assert "other-model" in str(info.value)


def test_missing_index(tmp_path):
    with pytest.raises(IndexStateError, match="no index"):
        Retriever.load(tmp_path / "none", embedder=FakeEmbedder())


def test_passed_embedder_is_used_and_no_model_is_loaded(toy_index, fake_embedder, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded although an embedder was passed")

    monkeypatch.setattr(rag.search.retriever, "query_embedder", refuse)
    retriever = Retriever.load(toy_index, embedder=fake_embedder)
    calls = fake_embedder.calls
    for q in ("cats", "dogs", "birds"):
        retriever.search(q, mode="dense")
    assert fake_embedder.calls > calls
    assert retriever.embedder is fake_embedder


def test_lazy_embedder_is_constructed_once(toy_index, monkeypatch):
    made = []

    def factory(name, *args, **kwargs):
        made.append(name)
        return FakeEmbedder(name=name)

    monkeypatch.setattr(rag.search.retriever, "query_embedder", factory)
    retriever = Retriever.load(toy_index)
    assert made == []  # nothing loaded until a question needs it
    assert retriever.search("cats purr", mode="bm25")  # BM25 needs no model
    assert made == []
    for q in ("cats purr", "dogs bark", "fish swim", "birds sing"):
        for mode in ("dense", "hybrid"):
            assert retriever.search(q, mode=mode)
    assert made == ["fake-hash"]  # the model named in the manifest, once


def test_lazy_embedder_of_wrong_dimension_is_refused(toy_index, monkeypatch):
    monkeypatch.setattr(rag.search.retriever, "query_embedder", lambda name, *a, **k: FakeEmbedder(name, dim=16))
    retriever = Retriever.load(toy_index)
    with pytest.raises(IndexStateError, match="dimension"):
        retriever.search("cats", mode="dense")


@pytest.mark.parametrize("change", ["edit", "add", "delete"])
def test_a_stale_index_is_refused_naming_the_files(toy_docs, toy_index, change):
    target = toy_docs / ("new.txt" if change == "add" else "dog.txt")
    if change == "delete":
        target.unlink()
    else:
        target.write_text("Title\n\nSomething else entirely.\n", encoding="utf-8")
    with pytest.raises(IndexStateError, match=r"is stale: 1 file\(s\) changed .*(dog|new)\.txt"):
        Retriever.load(toy_index, embedder=FakeEmbedder())
    # asked not to check, it loads what was indexed
    assert Retriever.load(toy_index, embedder=FakeEmbedder(), check_sources=False).passages


def test_first_passages_are_each_documents_first(toy_retriever):
    firsts = {}
    for p in toy_retriever.passages:
        firsts.setdefault(p.doc, p)
    assert toy_retriever.first_passages() == list(firsts.values())
