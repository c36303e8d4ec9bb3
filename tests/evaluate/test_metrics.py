"""rag.evaluate.metrics: the retrieval and answer figures computed by hand over fake search and ask
functions."""

from __future__ import annotations

import pytest

from rag.evaluate.metrics import answer_metrics, retrieval_metrics
from rag.evaluate.qa import GoldSpan, QAItem
from rag.types import Answer, Citation, Passage


# ---- retrieval_metrics --------------------------------------------------------------------------------

def passage(doc, start, end) -> Passage:
    return Passage(doc, start, end, "x" * (end - start))


def miss(i) -> Passage:
    return passage("other.txt", 100 * i, 100 * i + 50)


def test_retrieval_metrics_by_hand():
    items = [
        QAItem("1", "q1", ("a",), (GoldSpan("a.txt", 0, 10),)),        # relevant at rank 1
        QAItem("2", "q2", ("a",), (GoldSpan("a.txt", 100, 110),)),     # rank 3
        QAItem("3", "q3", None, (GoldSpan("b.txt"),)),                  # any passage of b.txt: rank 7
        QAItem("4", "q4", ("a",), (GoldSpan("a.txt", 500, 510),)),     # only at rank 11: a miss
        QAItem("5", "q5", (), ()),                                      # no gold: not scored
    ]
    results = {
        "q1": [passage("a.txt", 5, 15), miss(1), passage("a.txt", 0, 3)],
        "q2": [passage("a.txt", 0, 100), passage("b.txt", 100, 110), passage("a.txt", 105, 200), miss(1)],
        "q3": [miss(i) for i in range(6)] + [passage("b.txt", 900, 950)],
        "q4": [miss(i) for i in range(10)] + [passage("a.txt", 500, 510)],
    }
    searched = []

    def search(question):
        searched.append(question)
        return results[question]

    m = retrieval_metrics(items, search)
    assert searched == ["q1", "q2", "q3", "q4"]
    assert m["n_retrieval"] == 4
    # ranks 1, 3, 7, none
    assert m["recall@1"] == 0.25 and m["recall@3"] == 0.5 and m["recall@5"] == 0.5 and m["recall@10"] == 0.75
    assert m["mrr@10"] == round((1 + 1 / 3 + 1 / 7) / 4, 4) == 0.369
    assert 0 <= m["latency_p50_ms"] <= m["latency_p95_ms"]


def test_retrieval_metrics_with_nothing_to_score():
    m = retrieval_metrics([QAItem("1", "q", (), ())], lambda q: pytest.fail("no search expected"))
    assert m["n_retrieval"] == 0 and m["recall@10"] == 0 and m["mrr@10"] == 0


# ---- answer_metrics -----------------------------------------------------------------------------------

def answered(text, *spans) -> Answer:
    citations = tuple(Citation(n, doc, s, e, "x" * (e - s), passage(doc, s, e)) for n, (doc, s, e) in enumerate(spans, 1))
    return Answer("q", text, False, citations)


ABSTAINED = Answer("q", "The documents do not answer this.", True)


def test_answer_metrics_by_hand():
    items = [
        QAItem("A", "qa", ("Paris",), (GoldSpan("a.txt", 0, 10),)),    # right answer, right citation
        QAItem("B", "qb", ("42",), (GoldSpan("a.txt", 20, 30),)),      # wrong answer, citation elsewhere
        QAItem("C", "qc", ("blue",), (GoldSpan("a.txt", 40, 50),)),    # abstains although answerable
        QAItem("D", "qd", (), ()),                                     # unanswerable, abstains: right
        QAItem("E", "qe", (), ()),                                     # unanswerable, answers: wrong
        QAItem("F", "qf", None, (GoldSpan("a.txt"),)),                 # retrieval only: never asked
        QAItem("G", "qg", ("cat",), (GoldSpan("a.txt", 60, 70),)),     # right answer, citation in another file
    ]
    replies = {
        "qa": answered("It is Paris. [1]", ("a.txt", 5, 15)),
        "qb": answered("It is 41. [1]", ("a.txt", 0, 20), ("b.txt", 20, 30)),
        "qc": ABSTAINED,
        "qd": ABSTAINED,
        "qe": answered("Made up. [1]", ("a.txt", 0, 5)),
        "qg": answered("A cat! [1]", ("b.txt", 60, 70)),
    }
    asked = []

    def ask(question):
        asked.append(question)
        return replies[question]

    m = answer_metrics(items, ask)
    assert asked == ["qa", "qb", "qc", "qd", "qe", "qg"]
    # answerable: A B C G (4), correct: A G; answered (answerable, not abstained): A B G, cited: A
    assert m["answer_accuracy"] == 0.5
    assert m["answered"] == 3
    assert m["citation_accuracy"] == round(1 / 3, 4)
    # abstained: C D, of which D is unanswerable; unanswerable: D E
    assert m["abstention_precision"] == 0.5 and m["abstention_recall"] == 0.5
    assert m["answer_chars_p50"] == sorted(len(replies[q].text) for q in ("qa", "qb", "qg"))[1]
    assert 0 <= m["ask_latency_p50_ms"] <= m["ask_latency_p95_ms"]


@pytest.mark.parametrize("items, reply, expected", [
    # nothing abstained: no abstention precision; no unanswerable item: no recall
    ([QAItem("1", "q", ("x",), (GoldSpan("a.txt", 0, 5),))], answered("x [1]", ("a.txt", 0, 5)),
     {"answer_accuracy": 1.0, "citation_accuracy": 1.0, "abstention_precision": None, "abstention_recall": None}),
    # answers without gold quotes: citation accuracy cannot be measured
    ([QAItem("1", "q", ("x",), ())], answered("y [1]", ("a.txt", 0, 5)),
     {"answer_accuracy": 0.0, "citation_accuracy": None, "abstention_precision": None, "abstention_recall": None}),
    # only unanswerable items, all abstained
    ([QAItem("1", "q", (), ()), QAItem("2", "q", (), ())], ABSTAINED,
     {"answer_accuracy": None, "citation_accuracy": None, "abstention_precision": 1.0, "abstention_recall": 1.0}),
    # everything abstained on answerable items
    ([QAItem("1", "q", ("x",), (GoldSpan("a.txt", 0, 5),))], ABSTAINED,
     {"answer_accuracy": 0.0, "citation_accuracy": None, "abstention_precision": 0.0, "abstention_recall": None}),
])
def test_answer_metrics_undefined_ratios(items, reply, expected):
    m = answer_metrics(items, lambda q: reply)
    assert {k: m[k] for k in expected} == expected


# ---- default_index_for --------------------------------------------------------------------------------
