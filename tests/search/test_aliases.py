"""rag.search.aliases: abbreviations the documents define, and how retrieval and answers use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import assistant_over
from rag.search.aliases import Aliases

TEXT = ("The Asia-Europe Meeting (ASEM) was set up to link two regions. The Council of Europe (CoE) "
        "has 46 members. Both (they say) matter, and the gross domestic product (GDP) grew.")


def test_finds_the_defined_abbreviations():
    aliases = Aliases.from_texts([TEXT])
    assert ("ASEM", "Asia-Europe Meeting") in aliases.pairs
    assert ("CoE", "Council of Europe") in aliases.pairs
    assert ("GDP", "gross domestic product") in aliases.pairs
    assert all(short != "they" for short, _ in aliases.pairs)  # a parenthesis that is not an abbreviation


@pytest.mark.parametrize("bad", [
    "Chinese Tran (Chen) was there.",            # one capital letter: a name, not an abbreviation
    "the Office of Alien Property (OAP) said",    # the algorithm's long form would start with "of"
])
def test_implausible_pairs_are_dropped(bad):
    assert Aliases.from_texts([bad]).pairs in ((), (("OAP", "Office of Alien Property"),))


def test_the_first_definition_wins_and_order_is_stable():
    a = Aliases.from_texts(["Special Monitoring Mission (SMM) here.", "Single Market Measure (SMM) there."])
    b = Aliases.from_texts(["Special Monitoring Mission (SMM) here.", "Single Market Measure (SMM) there."])
    assert a == b and dict(a.pairs)["SMM"] == "Special Monitoring Mission"


@pytest.mark.parametrize("text, added", [
    ("When was the Asia-Europe Meeting founded?", "ASEM"),
    ("when was the asia-europe meeting founded?", "ASEM"),          # long forms match in any case
    ("How many members does ASEM have?", "Asia-Europe Meeting"),
    ("The CoE met.", "Council of Europe"),
])
def test_expand_adds_the_other_form(text, added):
    aliases = Aliases.from_texts([TEXT])
    assert aliases.expand(text) == f"{text} {added}"


@pytest.mark.parametrize("text", [
    "ASEM, the Asia-Europe Meeting, met.",   # both forms already there
    "The asem of the coe",                   # short forms are case-sensitive
    "ASEMS and XCoE",                        # only whole words
    "Nothing to see here.",
])
def test_expand_leaves_other_texts_alone(text):
    assert Aliases.from_texts([TEXT]).expand(text) == text


def test_no_abbreviations_no_change():
    assert Aliases().expand("The ASEM met.") == "The ASEM met."
    assert Aliases.from_texts([]).pairs == ()


COUNTRIES = ("Finland: the foreign minister called. The Netherlands and Denmark agreed. "
             "The United Kingdom (UK) pledged support. Japan sent Japanese experts.")


@pytest.mark.parametrize("text, added", [
    ("Which Finnish minister called?", "Finland"),            # a demonym: the documents' name for the country
    ("What did the Dutch agree?", "Netherlands"),
    ("Did the Danish side agree?", "Denmark"),
    ("What did the British pledge?", "United Kingdom, UK"),   # with the abbreviation the documents define
    ("What did the UK pledge?", "United Kingdom"),
    ("What did Britain pledge?", "United Kingdom, UK"),       # everyday names countryinfo lacks
    ("Did Holland agree?", "Netherlands"),
    ("Did Japanese experts visit?", "Japan"),                 # the documents use both forms: the name stands in
])
def test_countries_are_known_by_their_other_names(text, added):
    assert Aliases.from_texts([COUNTRIES]).expand(text) == f"{text} {added}"


@pytest.mark.parametrize("text", [
    "Did Finland call?",         # the documents' own name: nothing to add (no flood of demonyms)
    "Did Japan send experts?",
    "Is Rhode Island a state?",  # "Island" (Iceland's native name) is not an alias
    "Which Swedish minister?",   # the documents never name Sweden
    "the finnish minister",      # country names are proper nouns: as written
])
def test_country_names_left_alone(text):
    assert Aliases.from_texts([COUNTRIES]).expand(text) == text


ALIAS_FILES = {
    "forum.txt": ("The Northern Rivers Forum (NRF) was founded by five towns, three villages, two abbeys and one "
                  "old mill on the valley road.\n\n"
                  "Each spring the members of the NRF meet in a different town.\n\n"
                  "Salmon return to the rivers each autumn.\n"),
}


@pytest.fixture
def alias_assistant(tmp_path: Path):
    return assistant_over(ALIAS_FILES, tmp_path)


def test_bm25_finds_a_passage_that_uses_only_the_abbreviation(alias_assistant):
    retriever = alias_assistant.retriever
    assert ("NRF", "Northern Rivers Forum") in retriever.aliases.pairs
    hits = retriever.search("When does the Northern Rivers Forum meet?", k=3, mode="bm25")
    assert any("members of the NRF meet" in p.text for p in hits)


def test_answer_quotes_the_sentence_that_uses_the_abbreviation(alias_assistant):
    answer = alias_assistant.ask("When do the members of the Northern Rivers Forum meet?")
    assert not answer.abstained
    assert answer.citations[0].quote == "Each spring the members of the NRF meet in a different town."


def test_a_query_gets_short_forms_but_not_long_ones_without_long_forms():
    aliases = Aliases.from_texts([TEXT])
    assert aliases.expand("How many members does ASEM have?", long_forms=False) == "How many members does ASEM have?"
    assert aliases.expand("When was the Asia-Europe Meeting founded?", long_forms=False) == \
        "When was the Asia-Europe Meeting founded? ASEM"


def test_a_hyphenated_compound_holds_its_names():
    assert Aliases.from_texts([TEXT]).expand("The Japan-CoE talks") == "The Japan-CoE talks Council of Europe"
    assert Aliases.from_texts([COUNTRIES]).countries("the Japan-Finland summit") == {"Japan", "Finland"}


def test_expand_without_countries_keeps_only_abbreviations():
    aliases = Aliases.from_texts([COUNTRIES + " " + TEXT])
    assert aliases.expand("Which Finnish minister met the CoE?", countries=False) == \
        "Which Finnish minister met the CoE? Council of Europe"
    assert aliases.expand("Which Finnish minister met the CoE?") == \
        "Which Finnish minister met the CoE? Council of Europe, Finland"


def test_forms_lists_the_names_it_knows_in_a_text():
    aliases = Aliases.from_texts([COUNTRIES])
    assert aliases.forms("Did Britain and the Dutch call Finland?") == {"Britain", "Dutch", "Finland"}
    assert aliases.forms("Did Sweden call?") == set()  # the documents never name Sweden


def test_a_saved_index_holds_the_aliases_the_retriever_would_find(tmp_path, fake_embedder):
    from conftest import write_files
    from rag.index.build import build_index
    from rag.search.retriever import Retriever

    docs = write_files(tmp_path / "docs", {"a.txt": TEXT, "b.txt": COUNTRIES})
    build_index(docs, tmp_path / "index", embedder=fake_embedder)
    retriever = Retriever.load(tmp_path / "index", embedder=fake_embedder)
    found = Aliases.from_texts("\n".join(p.text for p in retriever.passages if p.doc == doc) for doc in retriever.docs)
    assert retriever.index.saved_aliases() == found.groups and retriever.aliases == found
    assert ("ASEM", "Asia-Europe Meeting") in retriever.aliases.pairs
