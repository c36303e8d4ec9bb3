"""rag.answer.kinds: the kind of answer a question asks for, and whether a sentence holds one that the
question does not already give; with spaCy's entity recogniser when installed and with the regular
expressions alone."""

from __future__ import annotations

import pytest

from rag.answer import kinds, language
from rag.answer.kinds import asked_for, holds


@pytest.fixture(params=["installed", "regex"])
def analysis(request, monkeypatch):
    """Each test runs with whatever `language.pipeline` finds and without spaCy."""
    caches = (language.entities_in, language.parse, language.mentions, kinds.counted)
    if request.param == "regex":
        monkeypatch.setattr(language, "pipeline", lambda: None)
        for cache in caches:
            cache.cache_clear()
        yield "regex"
        for cache in caches:
            cache.cache_clear()
    else:
        yield "installed"


@pytest.mark.parametrize("question, kind", [
    ("When was the European Peace Facility set up?", "date"),
    ("In what year did the summit take place?", "date"),
    ("How many countries are in ASEM?", "count"),
    ("How much money has Japan contributed to the Trust Fund?", "amount"),
    ("What is the annual budget of the European Peace Facility?", "amount"),
    ("How long has the magazine been in circulation?", "duration"),
    ("Who succeeded Morikawa Toru as Executive Director of ASEF?", "person"),
    ("Who is Japan's ambassador to NATO?", "person"),
    ("Which leaders attended the summit when it was held in 2021?", "person"),
    ("Which Japanese foreign minister visited Ukraine?", "person"),  # two words before the office
    ("Who gave keynote speeches at the meetings?", "agent"),
    ("Where do herons nest?", "place"),
    ("What did Prime Minister Suga welcome in his call?", ""),  # "what did": no kind, despite "prime minister"
    ("Why does Japan need a tailored approach?", ""),
])
def test_the_kind_asked_for(analysis, question, kind):
    assert asked_for(question).kind == kind


def test_only_dates_counts_amounts_and_people_are_required():
    assert asked_for("How many boats are there?").strict and asked_for("Who is the president of X?").strict
    assert not asked_for("Where do herons nest?").strict and not asked_for("Who made the videos?").strict
    assert not asked_for("What do goldfish eat?").strict


@pytest.mark.parametrize("question, sentence, expected", [
    # counts in digits or words, next to what is counted, or opening the sentence; not a year, not the question's own
    ("How many countries are in ASEM?", "It currently comprises 51 countries and two institutions.", True),
    ("How many boats does the harbour shelter?", "It now shelters forty fishing boats and a ferry pier.", True),
    ("How many boats does the harbour shelter?", "The old harbour was rebuilt in 1998 by the town council.", False),
    ("How many Mirage 2000-5 fighter jets will France deliver?", "France announced the provision of Mirage 2000-5 "
     "fighter jets in June.", False),
    ("How many Huguenots emigrated?", "Four thousand emigrated to the North American colonies.", True),
    ("How many years in a row had Kishida attended?", "Kishida attended the summit for the third consecutive year.", True),
    # amounts: a figure that is not a footnote mark, a year or part of a name ("V4", "COVID-19")
    ("How much did Japan give to the fund?", "Japan contributed 2.5 million dollars to the fund.", True),
    ("How much did Japan give to the fund?", "Japan and the V4 cooperate despite COVID-19 through the fund,(2) since 2020.",
     False),
    # dates
    ("When was the harbour rebuilt?", "The old harbour was rebuilt in 1998.", True),
    ("When was the harbour rebuilt in 1998?", "The old harbour was rebuilt in 1998.", False),
    ("When did the last glacial start?", "The last glacial ran from ~74,000 BP until the end.", True),
])
def test_holds(analysis, question, sentence, expected):
    assert holds(asked_for(question), sentence) is expected


def test_a_count_in_the_sentence_after_its_subject():
    # "It currently comprises 51 countries": the sentence before it names what "it" is
    asked = asked_for("How many countries are in ASEM?")
    assert holds(asked, "It currently comprises 51 countries.", before="ASEM is an informal forum.")


@pytest.mark.skipif(language.pipeline() is None, reason="without spaCy any capitalised word may be a person")
@pytest.mark.parametrize("sentence, expected", [
    ("In August, Mr. Morikawa Toru became the first Japanese Executive Director of ASEF.", False),  # only X
    ("In 2024, Mr. Suzuki Kenji succeeded Mr. Morikawa Toru at ASEF.", True),
])
def test_who_succeeded_x_needs_a_person_other_than_x(sentence, expected):
    asked = asked_for("Who succeeded Morikawa Toru as Executive Director of ASEF?")
    assert holds(asked, sentence) is expected
    # X named by part of the name only is still X ("Mr. Morikawa Toru" is not someone other than "Morikawa")
    assert holds(asked_for("Who succeeded Morikawa as Executive Director?"), sentence) is expected


@pytest.mark.parametrize("sentence, expected", [
    ("A statement was read out by the Ambassador of Japan to NATO, stating that the environment is severe.", False),
    ("Ambassador Suzuki Kenji, Japan's ambassador to NATO, read out the statement.", True),
])
def test_who_is_the_office_holder_needs_a_name_next_to_the_office(analysis, sentence, expected):
    asked = asked_for("Who is Japan's ambassador to NATO?")
    assert asked.role == "ambassador"
    assert holds(asked, sentence) is expected


def test_a_question_of_no_kind_is_held_by_any_sentence():
    assert holds(asked_for("What do goldfish eat?"), "Goldfish eat flakes.")


@pytest.mark.parametrize("question, evidence, expected", [
    ("How many offices did the company open?", "the company opened two new offices", True),
    ("How many boats does the harbour shelter?", "It now shelters forty fishing boats", True),
    ("How many members does it have?", "it has 51 members", True),
    ("How many visits were made?", "visits rose by 40 percent", True),
    ("How many cats are there?", "Cats are small furry pets", False),
    ("How many soldiers were trained?", "the EU mission (3) soldiers were trained", False),
    ("How many troops are stationed there?", "In 2019 troops were sent to the region", False),
    ("How many years has the forum met?", "it has met since 2015 every year", True),
    ("How many people were in the colonies?", "the colonies had 60,000 inhabitants", True),
    ("How many people were in the colonies?", "roughly 60,000 of the population", True),
    ("How many people were in the colonies?", "the colonies had 60,000 cattle", False),
    ("How many outputs are expected for each input?", "a single output is expected for every input", True),
    ("How many herons nest in the reeds?", "Herons nest in the tall reeds", False),
])
def test_a_count_next_to_what_is_counted(question, evidence, expected):
    """A number next to what is counted (within five words), not a footnote mark, not a year unless years are
    counted; people are counted by a population too; "single" and "both" are counts."""
    assert holds(asked_for(question), evidence) is expected


@pytest.mark.skipif(language.pipeline() is None, reason="the question's subject needs spaCy's parse")
def test_a_count_or_amount_names_the_questions_subject():
    asked = asked_for("How much money has Japan given Ukraine in total?")
    assert asked.actor == "Japan"
    uk = "The United Kingdom has provided support totaling 12.5 billion pounds to Ukraine."
    assert not holds(asked, uk)  # what the UK gave does not say what Japan gave
    assert holds(asked, "Japan has provided support totaling 12 billion dollars to Ukraine.")
    assert holds(asked, "It has provided 12 billion dollars.", context="Japan's support for Ukraine")
    britain = kinds.with_other_names(asked_for("How much support has Britain given Ukraine?"),
                                     lambda name: name + " United Kingdom, UK")
    assert britain.actor == "Britain|United Kingdom|UK" and holds(britain, uk)


def test_a_day_of_a_month_is_not_a_count():
    asked = asked_for("How many members does ASEM have?")
    assert not holds(asked, "(December 10, Singapore) The member states of ASEM span Asia and Europe.")
    assert not holds(asked, "On 10 December the member states of ASEM met.")
    assert holds(asked, "ASEM has 53 members.")
    states = asked_for("How many member states agreed on the sanctions package?")
    assert holds(states, "In May, 27 member states agreed on the sanctions package.")  # a comma: a count
