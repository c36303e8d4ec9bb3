"""rag.answer.followup: rewriting follow-up questions into standalone ones, and the entity extraction it
rests on (`rag.search.names.entities`)."""

from __future__ import annotations

import pytest

from rag.answer.followup import rewrite, reworded
from rag.answer.language import pipeline
from rag.search.names import entities

GERMANY = ("How much did Germany give Ukraine in 2024?", "About 37 billion euro. [1]")
EPF = ("When was the European Peace Facility set up?", "In March 2021. [1]")


# ---- questions that stand on their own ----------------------------------------------------------------

@pytest.mark.parametrize("question", [
    "When was ASEM established?",
    "How much did Germany give Ukraine in 2024?",
    "When did Japan sign its agreement with NATO?",  # a pronoun, but it names its subject
    "Which fighter jets did France announce for Ukraine?",
])
@pytest.mark.parametrize("history", [(), [GERMANY], [EPF, GERMANY]])
def test_standalone_question_is_unchanged(question, history):
    assert rewrite(question, history) == question


@pytest.mark.parametrize("question", ["And in 2021?", "What about Norway?", "When did they sign it?", "Why?"])
@pytest.mark.parametrize("history", [(), [("", "an answer without a question")], [("   ", "x")]])
def test_no_earlier_question_leaves_it_unchanged(question, history):
    assert rewrite(question, history) == question


def test_white_space_is_folded():
    assert rewrite("  When   was\tASEM\nestablished? ") == "When was ASEM established?"


# ---- "And in 2021?" -----------------------------------------------------------------------------------

@pytest.mark.parametrize("question", [
    "And in 2021?", "in 2021?", "2021?", "And for 2021?", "What about 2021?", "How about the 2021 one?",
    "And the 2021 Bluebook?", "  And   in 2021 ? ",
])
def test_year_follow_up_replaces_the_year(question):
    assert rewrite(question, [GERMANY]) == "How much did Germany give Ukraine in 2021?"


def test_year_follow_up_adds_the_year_when_there_was_none():
    assert rewrite("And in 2021?", [("How much did Germany give Ukraine?", "x")]) == \
        "How much did Germany give Ukraine in 2021?"


def test_year_follow_up_replaces_only_the_first_year():
    history = [("Did trade grow between 2019 and 2020?", "x")]
    assert rewrite("And in 2021?", history) == "Did trade grow between 2021 and 2020?"


def test_the_last_question_of_the_history_is_the_one_rewritten():
    history = [EPF, GERMANY, ("", "a turn without a question is skipped")]
    assert rewrite("And in 2021?", history) == "How much did Germany give Ukraine in 2021?"


# ---- "What about Norway?" -----------------------------------------------------------------------------

@pytest.mark.parametrize("question", ["What about Norway?", "what about Norway", "How about Norway?",
                                      "And what about Norway?"])
def test_what_about_replaces_the_entity_of_the_same_type_and_role(question):
    # Germany and Ukraine are both places; Germany, the subject (the actor), is replaced; the predicate stays
    assert rewrite(question, [GERMANY]) == "How much did Norway give Ukraine in 2024?"


def test_what_about_a_multi_word_entity():
    history = [("What did the Council of Europe say about Japan?", "x")]
    assert rewrite("What about the Asia-Europe Foundation?", history) == \
        "What did the Asia-Europe Foundation say about Japan?"


def test_what_about_without_entities_appends():
    assert rewrite("What about Norway?", [("how much aid was given?", "x")]) == "how much aid was given Norway?"


# ---- pronouns -----------------------------------------------------------------------------------------

def test_pronoun_question_gets_the_previous_entities_and_year():
    history = [("What did Japan and the EU sign in 2018?", "x")]
    assert rewrite("When did they sign it?", history) == "When did they sign it (Japan, EU, 2018)?"
    assert rewrite("And when did they sign it?", history) == "When did they sign it (Japan, EU, 2018)?"


def test_carried_entities_skip_what_the_question_already_says():
    history = [("What did Japan and the EU sign in 2018?", "x")]
    assert rewrite("and why did they sign it in 2018 with the eu?", history) == \
        "Why did they sign it in 2018 with the eu (Japan)?"


def test_very_short_question_is_a_follow_up():
    assert rewrite("Why?", [GERMANY]) == "Why (Germany, Ukraine, 2024)?"


def test_a_leading_and_with_its_own_subject_only_loses_the_and():
    assert rewrite("And what fighter jets did France say it would provide?", [EPF]) == \
        "What fighter jets did France say it would provide?"


@pytest.mark.parametrize("lead", ["And", "and", "Also", "But", "So", "Then", "OK,", "Okay", "Now"])
def test_leading_words_that_are_dropped(lead):
    assert rewrite(f"{lead} which jets did France provide?", [EPF]) == "Which jets did France provide?"


# ---- entities -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("What did the European Peace Facility do?", ["European Peace Facility"]),
    ("When did Prime Minister Kishida visit Washington, D.C.?", ["Prime Minister Kishida", "Washington", "D.C."]),
    ("Who is the Minister of Foreign Affairs?", ["Minister of Foreign Affairs"]),
    ("The United Kingdom (UK) and France", ["United Kingdom", "UK", "France"]),
    ("According to Japan-EU rules", ["Japan-EU"]),
    ("Did Japan and NATO cooperate?", ["Japan", "NATO"]),
    ("What is the Asia-Europe Meeting (ASEM)?", ["Asia-Europe Meeting", "ASEM"]),
    ("how much money?", []),
    ("When did they sign it?", []),
    ("", []),
])
def test_entities(text, expected):
    assert entities(text) == expected


@pytest.mark.parametrize("original, standalone, expected", [
    ("And what did France say?", "What did France say?", False),
    ("but  when was it signed?", "When was it signed?", False),
    ("What about Norway?", "When did Norway join NATO?", True),
    ("And in 2021?", "How many members did NATO have in 2021?", True),
    ("When did Norway join NATO?", "When did Norway join NATO?", False),
    ("And what?", "And what?", False),  # nothing to carry over: left as typed
])
def test_reworded_says_whether_the_rewrite_is_worth_showing(original, standalone, expected):
    assert reworded(original, standalone) is expected


# ---- follow-ups by role (issue 14) --------------------------------------------------------------------

def test_a_follow_up_of_a_follow_up_builds_on_its_rewrite():
    history = [GERMANY, ("What about Norway?", "x")]
    assert rewrite("And in 2021?", history) == "How much did Norway give Ukraine in 2021?"


def test_it_stands_for_the_thing_the_previous_answer_named():
    history = [("What initiative did Abe announce in Serbia?", "He announced the Western Balkans Cooperation "
                "Initiative designed to advance cooperation. [1]")]
    assert rewrite("Which countries does it cover?", history) == \
        "Which countries does Western Balkans Cooperation Initiative cover?"


def test_the_group_stands_for_the_name_of_the_previous_question():
    history = [("Why was GUAM established?", "To promote democracy. [1]")]
    assert rewrite("When did Japan set up a framework with the group?", history) == \
        "When did Japan set up a framework with GUAM?"


def test_a_name_keeps_the_article_it_was_written_with():
    history = [("How many member states does the Council of Europe have?", "47 member states. [1]")]
    assert rewrite("What is Japan's status in the organization?", history) == \
        "What is Japan's status in the Council of Europe?"
    assert rewrite("What are its aims?", history) == "What are the Council of Europe's aims?"
    assert rewrite("When did Japan set up a framework with the group?", [("Why was GUAM established?", "x")]) == \
        "When did Japan set up a framework with GUAM?"  # written without one: none added


def test_the_documents_own_country_is_never_replaced():
    history = [("When did Japan and Latvia plan events for 100 years of friendship?", "x")]
    assert rewrite("What about Lithuania?", history, background=lambda name: name == "Japan") == \
        "When did Japan and Lithuania plan events for 100 years of friendship?"


def test_only_the_year_of_a_document_is_carried():
    history = [("Who did Kishida meet at the 2024 NATO summit?", "x")]
    assert rewrite("Who was NATO's Secretary General then?", history, doc_years={2024}) == \
        "Who was NATO's Secretary General in 2024?"


def test_he_stands_for_the_person_a_who_question_was_answered_with():
    from rag.answer.language import pipeline

    if pipeline() is None:
        pytest.skip("names' types need spaCy and its English model (dependencies of the project)")
    history = [("Who became the first Japanese Executive Director of ASEF?",
                "In August, Mr. Morikawa Toru took office as the first Japanese Executive Director of ASEF. [1]")]
    assert rewrite("When did he take office?", history) == "When did Morikawa Toru take office?"


# ---- pronouns and definite references read by role ------------------------------------------------------

JAPAN = lambda name: name == "Japan"  # noqa: E731  the documents' own country
needs_types = pytest.mark.skipif(pipeline() is None, reason="names' types and roles need spaCy and its English model")


@needs_types
def test_it_after_a_verb_stands_for_the_previous_questions_place_with_a_role():
    history = [("When did Russia's aggression against Ukraine begin?", "In February 2022. [1]")]
    assert rewrite("Which Japanese foreign minister visited the country?", history, background=JAPAN) == \
        "Which Japanese foreign minister visited Ukraine?"
    history.append(("Which Japanese foreign minister visited the country?", "Foreign Minister Iwaya. [1]"))
    assert rewrite("How much aid has Japan given it in total?", history, background=JAPAN) == \
        "How much aid has Japan given Ukraine in total?"


@needs_types
def test_an_acronym_is_an_organisation_that_it_can_stand_for():
    history = [("How much did Japan contribute to ASEF for COVID-19 prevention?", "About 5.7 billion yen. [1]")]
    assert rewrite("Where is it located?", history, background=JAPAN) == "Where is ASEF located?"


@needs_types
def test_they_after_a_question_about_a_person_are_the_two_people():
    history = [("Which Austrian chancellor did Abe call in September?",
                "Austria: In September, Prime Minister Abe held a telephone call with Chancellor Sebastian Kurz. [1]")]
    assert rewrite("What did they agree on?", history) == "What did Abe and Sebastian Kurz agree on?"


def test_that_summit_is_the_previous_questions_summit_with_its_owner():
    history = [("What did NATO decide to establish at its July summit?", "NSATU. [1]")]
    assert rewrite("Which Japanese prime minister attended that summit?", history) == \
        "Which Japanese prime minister attended NATO's July summit?"
    assert rewrite("Where was it held?", history) == "Where was NATO's July summit held?"  # held: an event
