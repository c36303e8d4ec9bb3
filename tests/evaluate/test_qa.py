"""rag.evaluate.qa: loading QA files (quotes located, errors naming the line), span overlap and
SQuAD-style answer matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT, SEEDS
from rag.errors import RagError
from rag.evaluate.qa import GoldSpan, answer_correct, load_qa, normalize, overlaps

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


def test_load_qa_finds_quotes_in_the_text_an_index_stores_and_with_white_space_collapsed(tmp_path, qa_docs):
    stored = {"a.txt": "Printed:  the harbour was\nrebuilt   in 1998 after the storm."}
    path = write_qa(tmp_path, {"question": "When?", "answers": ["1998"],
                               "sources": [{"doc": "a.txt", "quote": "was rebuilt in 1998"},
                                           {"doc": "sub/b.txt", "quote": "Herons"}]})
    (item,) = load_qa(path, qa_docs, stored.get)  # b.txt is not in `stored`: read from the folder
    a, b = item.gold
    assert stored["a.txt"][a.start:a.end] == "was\nrebuilt   in 1998" and DOC_B[b.start:b.end] == "Herons"


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
