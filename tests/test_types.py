"""rag.types: the records' JSON round trip, derived values and named constructors."""

from __future__ import annotations

import dataclasses

import pytest

from rag.settings import DEFAULT_K, DEFAULT_MODE
from rag.types import ABSTAIN_MESSAGE, Answer, Citation, Passage, Query

P = Passage("notes/a.txt", 10, 40, "Cats purr.\nThey chase mice.", heading=("Notes 2020", "Cats"), title="Notes 2020",
            year=2020, kind="paragraph", score=0.25, line=3)


def test_passage_json_round_trip():
    row = P.to_json()
    assert row["heading"] == ["Notes 2020", "Cats"] and row["score"] == 0.25
    assert set(row) == {"doc", "start", "end", "heading", "title", "year", "kind", "line", "page", "page_breaks",
                        "score", "text"}
    assert row["page"] is None and row["page_breaks"] == []
    assert Passage.from_json(row) == P
    del row["score"]  # the index stores passages without a score
    assert Passage.from_json(row) == dataclasses.replace(P, score=0.0)


def test_pages_of_a_passage_and_its_citations():
    p = Passage("r.pdf", 100, 200, "x" * 100, page=3, page_breaks=(150, 180))
    assert [p.page_at(i) for i in (100, 149, 150, 179, 180, 199)] == [3, 3, 4, 4, 5, 5]
    assert Passage.from_json(p.to_json()) == p and p.to_json()["page_breaks"] == [150, 180]
    assert [Citation(1, "r.pdf", s, s + 5, "xxxxx", p).page for s in (100, 160, 190)] == [3, 4, 5]
    assert Citation(1, "notes/a.txt", 10, 20, P.text[:10], P).page is None and P.page_at(20) is None


def test_passage_id_and_context():
    assert P.id == "notes/a.txt:10-40"
    assert P.context() == "Notes 2020 > Cats\nCats purr.\nThey chase mice."  # the title is the heading's first
    assert Passage("b.txt", 0, 3, "Hi.", title="B").context() == "B\nHi."
    assert Passage("b.txt", 0, 3, "Hi.").context() == "Hi."


def test_citation_line_counts_from_its_passage():
    c = Citation(1, P.doc, 21, 37, "They chase mice.", P)
    assert c.line == 4  # one newline into the passage, which starts on line 3


def test_answer_constructors():
    no = Answer.abstain("Why?", reason="no passage matched", original_question="why", passages=(P,), score=0.1)
    assert (no.text, no.abstained, no.citations, no.passages, no.reason, no.score) == (
        ABSTAIN_MESSAGE, True, (), (P,), "no passage matched", 0.1)
    c = Citation(1, P.doc, 10, 20, "Cats purr.", P)
    yes = Answer.cited("Do cats purr?", "Cats purr. [1]", (c,), passages=[P])
    assert (yes.abstained, yes.citations, yes.passages, yes.reason) == (False, (c,), (P,), "")


def test_records_are_frozen_and_query_has_the_shared_defaults():
    q = Query("cats")
    assert (q.k, q.mode, q.doc, q.year) == (DEFAULT_K, DEFAULT_MODE, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.k = 3  # type: ignore[misc]
