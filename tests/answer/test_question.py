"""rag.answer.question: what kind of thing a question asks for (`question_type`), whether a sentence offers it
(`offers`, `TYPE_PATTERNS`). Pure functions, no index."""

from __future__ import annotations

import pytest

from rag.answer.question import TYPE_PATTERNS, offers, question_type


# ---- question_type --------------------------------------------------------------------------------------

@pytest.mark.parametrize("question, kind", [
    ("When was the harbour rebuilt?", "when"),
    ("In what year was ASEM founded?", "when"),
    ("Which year did Japan join?", "when"),
    ("Since when has Japan sent experts?", "when"),
    ("How many boats are there?", "number"),
    ("How much did Germany give?", "number"),
    ("How long did it take?", "number"),
    ("What percentage of people live there?", "number"),
    ("Who became prime minister?", "who"),
    ("Whose ministry was it?", "who"),
    ("Where is the foundation?", "where"),
    ("Who decided when to meet?", "when"),  # "when" is checked first
    ("What do goldfish eat?", None),
    ("Why did they do it?", None),
])
def test_question_type(question, kind):
    assert question_type(question) == kind


def test_every_question_type_has_a_pattern():
    kinds = {question_type(q) for q in ("When?", "How many?", "Who?", "Where?")}
    assert kinds == set(TYPE_PATTERNS)


# ---- offers ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, sentence, question, expected", [
    ("when", "It opened in 2019.", "When did it open in 2019?", False),   # the question's own year
    ("when", "It opened in 2019 and closed in 2021.", "When did it close after 2019?", True),
    ("when", "It opened in March.", "When did it open?", True),
    ("when", "It opened long ago.", "When did it open?", False),
    ("number", "Sweden has 10 million people.", "How many people does Sweden have?", True),
    ("number", "The 10 members met.", "What did the 10 members do?", False),
    ("number", "Several members met.", "How many members met?", True),
    ("who", "The treaty was signed by Anna Lind.", "Who signed the treaty?", True),
    ("who", "The treaty was signed in Stockholm.", "Who signed the treaty in Stockholm?", False),
    ("where", "The treaty was signed in Stockholm.", "Where was the treaty signed?", True),
    ("where", "The treaty was signed in Stockholm.", "Where in Stockholm was the treaty signed?", False),
    (None, "The treaty was signed in 2019.", "Why was the treaty signed?", False),
])
def test_offers_the_kind_asked_for_only_when_the_question_does_not_already_say_it(kind, sentence, question, expected):
    assert offers(kind, sentence, question) is expected
