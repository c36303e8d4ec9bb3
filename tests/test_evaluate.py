"""rag.evaluate: loading QA files, span overlap, SQuAD-style answer matching, and the metrics computed by
hand over fake search and ask functions. The real run over the seeds is in test_e2e_answer.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import ROOT, SEEDS
from rag.errors import RagError
from rag.evaluate import (GoldSpan, QAItem, answer_correct, answer_metrics, default_index_for, load_qa, normalize,
                          overlaps, retrieval_metrics)
from rag.types import Answer, Citation, Passage

DOC_A = "The harbour was rebuilt in 1998.\nIt holds forty boats.\n"
DOC_B = "Herons nest in the reeds.\n"


@pytest.fixture
def qa_docs(tmp_path) -> Path:
    folder = tmp_path / "qa_docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(DOC_A, encoding="utf-8")
    (folder / "sub" / "b.txt").write_text(DOC_B, encoding="utf-8")
    return folder


def write_qa(tmp_path, *lines) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
                    encoding="utf-8")
    return path


# ---- load_qa ------------------------------------------------------------------------------------------

def test_load_qa_locates_quotes(tmp_path, qa_docs):
    path = write_qa(
        tmp_path,
        {"id": "q1", "question": "When?", "answers": ["1998"], "sources": [{"doc": "a.txt", "quote": "rebuilt in 1998"}]},
        "",  # blank lines are skipped
        {"question": "Boats?", "answers": ["forty"], "sources": [{"doc": "a.txt", "quote": "forty boats"},
                                                                  {"doc": "sub/b.txt", "quote": "Herons"}]},
        {"id": 7, "question": "Who won?", "answers": [], "sources": []},
        {"id": "r", "question": "Tell me about herons", "sources": [{"doc": "sub/b.txt"}]},
    )
    items = load_qa(path, qa_docs)
    assert [it.id for it in items] == ["q1", "3", "7", "r"]  # no id: the line number (blank line counted)
    q1, boats, unanswerable, retrieval_only = items
    (g,) = q1.gold
    assert (g.doc, DOC_A[g.start:g.end]) == ("a.txt", "rebuilt in 1998")
    assert g.start == DOC_A.index("rebuilt")
    assert [(g.doc, (DOC_A if g.doc == "a.txt" else DOC_B)[g.start:g.end]) for g in boats.gold] == \
        [("a.txt", "forty boats"), ("sub/b.txt", "Herons")]
    assert q1.answers == ("1998",) and not q1.unanswerable
    assert unanswerable.answers == () and unanswerable.unanswerable and unanswerable.gold == ()
    assert retrieval_only.answers is None and not retrieval_only.unanswerable
    assert retrieval_only.gold == (GoldSpan("sub/b.txt", None, None),)  # no quote: the whole doc


def test_load_qa_on_the_seed_set():
    items = load_qa(ROOT / "eval" / "qa.jsonl", SEEDS)
    texts = {d.name: d.read_text(encoding="utf-8") for d in SEEDS.iterdir()}
    assert len(items) == len({it.id for it in items}) > 100
    rows = [json.loads(line) for line in (ROOT / "eval" / "qa.jsonl").read_text(encoding="utf-8").splitlines()]
    for it, row in zip(items, rows):
        assert it.question == row["question"]
        # one gold span per occurrence of each quote (a repeated caption is found at both places)
        expected = sum(max(1, texts[s["doc"]].count(s["quote"])) if s.get("quote") else 1 for s in row["sources"])
        assert len(it.gold) == expected
        quotes = {s["quote"] for s in row["sources"] if s.get("quote")}
        for g in it.gold:
            if g.start is None:
                assert g.end is None
            else:
                assert texts[g.doc][g.start:g.end] in quotes


@pytest.mark.parametrize("line, match", [
    ({"question": "q", "sources": [{"doc": "a.txt", "quote": "rebuilt in 1999"}]}, r":2: quote 'rebuilt in 1999' not found in 'a.txt'"),
    ({"question": "q", "sources": [{"doc": "nope.txt", "quote": "x"}]}, r":2: source document 'nope.txt' cannot be read"),
    ({"question": "q", "sources": [{"doc": "sub"}]}, r":2: source document 'sub' cannot be read"),  # a folder
    ("{not json", r":2: not a QA object"),
    ({"answers": ["x"]}, r":2: not a QA object"),  # no question
    ("[1, 2]", r":2: not a QA object"),
])
def test_load_qa_errors_name_the_line(tmp_path, qa_docs, line, match):
    path = write_qa(tmp_path, {"question": "fine", "answers": None, "sources": []}, line)
    with pytest.raises(RagError, match=match) as info:
        load_qa(path, qa_docs)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("sources", [[{"quote": "rebuilt"}], ["a.txt"]])
def test_load_qa_bad_source_names_the_line(tmp_path, qa_docs, sources):
    path = write_qa(tmp_path, {"question": "q", "answers": ["x"], "sources": sources})
    with pytest.raises(RagError, match=":1:"):
        load_qa(path, qa_docs)


def test_load_qa_missing_and_empty_files(tmp_path, qa_docs):
    with pytest.raises(RagError, match="does not exist"):
        load_qa(tmp_path / "nowhere.jsonl", qa_docs)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(RagError, match="has no questions"):
        load_qa(empty, qa_docs)


# ---- overlaps -----------------------------------------------------------------------------------------

GOLD = (GoldSpan("a.txt", 10, 20),)


@pytest.mark.parametrize("doc, start, end, expected", [
    ("a.txt", 10, 20, True),   # the same span
    ("a.txt", 0, 11, True),    # one character in common
    ("a.txt", 19, 40, True),
    ("a.txt", 12, 15, True),   # inside
    ("a.txt", 0, 100, True),   # around
    ("a.txt", 0, 10, False),   # ends where the gold starts (half-open spans)
    ("a.txt", 20, 30, False),  # starts where the gold ends
    ("b.txt", 10, 20, False),  # another file
])
def test_overlaps(doc, start, end, expected):
    assert overlaps(doc, start, end, GOLD) is expected


def test_overlaps_whole_doc_and_several_spans():
    assert overlaps("b.txt", 500, 600, [GoldSpan("a.txt", 0, 5), GoldSpan("b.txt")])
    assert overlaps("a.txt", 3, 4, [GoldSpan("a.txt", 0, 5), GoldSpan("b.txt")])
    assert not overlaps("c.txt", 0, 5, [GoldSpan("a.txt", 0, 5), GoldSpan("b.txt")])
    assert not overlaps("a.txt", 0, 5, [])


# ---- normalize and answer_correct ---------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("The Mirage 2000-5 jets [1].", "mirage 2000 5 jets"),
    ("A dog, an owl and THE cat!", "dog owl and cat"),
    ("In March 2021 [1] [12]", "in march 2021"),
    ("“Quoted” – text — here", "quoted text here"),
    ("  spaced\n\tout  ", "spaced out"),
    ("Theatre and another", "theatre and another"),  # articles only as whole words
    ("the a an", ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize("text, answers, expected", [
    ("France announced the provision of Mirage 2000-5 fighter jets. [1]", ["Mirage 2000-5"], True),
    ("It was set up in March 2021. [1]", ["march 2021"], True),                 # case
    ("It was set up in March, 2021.", ["March 2021"], True),                    # punctuation
    ("Established in the March of 2021", ["March 2021"], False),                # words in between
    ("The UK gives 3 billion UK pounds annually [1]", ["the 3 billion UK pounds"], True),  # articles
    ("Germany held it in Berlinale", ["Berlin"], False),                        # whole words only
    ("Held in Berlin.", ["Paris", "Berlin"], True),                             # any of the answers
    ("It cost 12.5 billion", ["2.5 billion"], False),
    ("Cited [1] only", ["1"], False),                                           # markers are not text
    ("Anything at all", [], False),
    ("Anything at all", ["the", "?"], False),                                   # empty after normalising
])
def test_answer_correct(text, answers, expected):
    assert answer_correct(text, answers) is expected


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

@pytest.mark.parametrize("docs", ["seeds", "./seeds", "seeds/", SEEDS])
def test_default_index_for_the_seeds(monkeypatch, docs):
    monkeypatch.chdir(ROOT)
    assert default_index_for(docs) == Path("index")


def test_default_index_for_another_folder(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.chdir(ROOT)
    first, second = tmp_path / "one" / "docs", tmp_path / "two" / "docs"
    a, b = default_index_for(first), default_index_for(second)
    assert a.parent == b.parent == cache / "rag" / "indexes"
    assert a.name == f"docs-{hashlib.sha256(str(first.resolve()).encode()).hexdigest()[:8]}"
    assert a != b  # same folder name, different folders
    assert default_index_for(first) == a  # stable
    monkeypatch.chdir(tmp_path)
    assert default_index_for(Path("one") / "docs") == a  # relative paths resolve to the same folder


def test_default_index_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(ROOT)
    assert default_index_for(tmp_path / "docs").parent == tmp_path / "home" / ".cache" / "rag" / "indexes"


def test_seeds_seen_from_elsewhere_are_just_another_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # "seeds" means the seeds folder of the current directory
    assert default_index_for(SEEDS).parent == tmp_path / "cache" / "rag" / "indexes"
