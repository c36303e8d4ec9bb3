"""rag.answer.reasons: why the assistant did not answer, in plain words (what the documents mention of the
question's names, and the question turned indirect), never with scores."""

from __future__ import annotations

import pytest

from rag.answer import language, reasons
from rag.answer.reasons import indirect, refusal
from rag.types import Passage

FUND = Passage("fund.txt", 0, 60, "Japan supports the PfP Trust Fund for demining in Ukraine.", year=2021)


@pytest.mark.parametrize("question, expected", [
    ("How much money has Japan contributed to the PfP Trust Fund?",
     "how much money Japan has contributed to the PfP Trust Fund"),
    ("When did Sweden formally become a NATO member?", "when Sweden formally became a NATO member"),
    ("Who is Japan's ambassador to NATO?", "who Japan's ambassador to NATO is"),
    ("What is the annual budget of the European Peace Facility?",
     "what the annual budget of the European Peace Facility is"),
    ("Who won the most seats in the elections?", "who won the most seats in the elections"),
    ("How many members does ASEM have?", "how many members ASEM has"),
    ("How much does Japan rely on imports?", "how much Japan relies on imports"),
    ("What does NATO teach?", "what NATO teaches"),
])
def test_a_question_turned_indirect(question, expected):
    if language.pipeline() is None:
        pytest.skip("spaCy's English pipeline is not installed: the question is quoted as asked")
    assert indirect(question) == expected


def test_without_a_parse_the_question_is_quoted(monkeypatch):
    monkeypatch.setattr(reasons, "parse", lambda text: None)
    assert indirect("How much did Japan give?") == "the answer to “How much did Japan give?”"


def test_a_refusal_names_what_the_documents_mention_and_what_they_do_not_say(monkeypatch):
    monkeypatch.setattr(reasons, "indirect", lambda q: "how much Japan gave")
    assert refusal("How much did Japan give to the PfP Trust Fund?", [FUND]) == \
        "the documents mention Japan and PfP Trust Fund but not how much Japan gave"
    own = lambda name: name == "Japan"  # noqa: E731  the documents' own country is not news
    assert refusal("How much did Japan give to the PfP Trust Fund?", [FUND], own) == \
        "the documents mention PfP Trust Fund but not how much Japan gave"
    assert refusal("How much did Japan give to Zanzibar?", [FUND], own) == "the documents do not say how much Japan gave"


def test_a_refusal_for_a_year_no_document_is_of(monkeypatch):
    monkeypatch.setattr(reasons, "indirect", lambda q: "how much Japan gave")
    assert refusal("How much did Japan give in 2025?", [FUND], year=2025) == \
        "the documents do not say how much Japan gave for 2025"


def test_a_refusal_has_no_scores():
    reason = refusal("How much money has Japan contributed to the PfP Trust Fund?", [FUND])
    assert not any(ch.isdigit() for ch in reason), reason


def test_a_name_is_mentioned_without_its_possessive(monkeypatch):
    monkeypatch.setattr(reasons, "indirect", lambda q: "how much Japan gave")
    assert refusal("How much did the PfP Trust Fund's donors give?", [FUND]) == \
        "the documents mention PfP Trust Fund but not how much Japan gave"
