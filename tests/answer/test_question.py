"""rag.answer.question: what kind of thing a question asks for (`question_type`), whether a sentence offers it
(`offers`, `TYPE_PATTERNS`), and the "how many X" check (`missing_slot`). Pure functions, no index."""

from __future__ import annotations

import pytest

from rag.answer.question import TYPE_PATTERNS, missing_slot, offers, question_type


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


# ---- missing_slot ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("question, evidence, expected", [
    ("How many offices did the company open?", "the company opened two new offices", ""),
    ("How many boats does the harbour shelter?", "It now shelters forty fishing boats", ""),
    ("How many members does it have?", "it has 51 members", ""),
    ("How many visits were made?", "visits rose by 40 percent", ""),
    ("How many cats are there?", "Cats are small furry pets", "no number of cat in the evidence"),
    # a number far (more than five words) before the thing counted does not count
    ("How many offices did the company open?", "In 2021 the company, after a long and slow year, opened new offices",
     "no number of office in the evidence"),
    # a footnote mark "(3)" is not a number
    ("How many soldiers were trained?", "the EU mission (3) soldiers were trained", "no number of soldier in the evidence"),
    # a year is not a count, unless years are what is counted
    ("How many troops are stationed there?", "In 2019 troops were sent to the region", "no number of troop in the evidence"),
    ("How many years has the forum met?", "it has met since 2015 every year", ""),
    # people are counted by a population too; "single" and "both" are counts
    ("How many people were in the colonies?", "the colonies had 60,000 inhabitants", ""),
    ("How many people were in the colonies?", "roughly 60,000 of the population", ""),
    ("How many people were in the colonies?", "the colonies had 60,000 cattle", "no number of people in the evidence"),
    ("How many outputs are expected for each input?", "a single output is expected for every input", ""),
    ("How many herons nest in the reeds?", "Herons nest in the tall reeds", "no number of herons nest in the evidence"),
    ("What do goldfish eat?", "nothing numeric here", ""),  # not a "how many" question
    ("How much did it cost?", "it was expensive", ""),  # "how much" is not checked
])
def test_missing_slot(question, evidence, expected):
    assert missing_slot(question, evidence) == expected
