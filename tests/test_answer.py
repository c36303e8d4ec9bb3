"""rag.answer.Assistant (offline answerer) on the toy corpus with the fake embedder: markers, verified
citations, abstention, limits, determinism. The real model on the seeds is in test_e2e_answer.py."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

import rag.retrieve
from conftest import STORY_FILES, TOY_FILES, FakeEmbedder, assert_answer_well_formed, assistant_over
from rag.answer import ABSTAIN_MESSAGE, MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, Assistant, question_type
from rag.errors import RagError
from rag.retrieve import Retriever
from rag.types import Citation

try:  # the "how many X" check, in rag.question since the question-reading code moved there
    from rag.question import missing_slot
except ImportError:
    from rag.answer import _missing_slot as missing_slot

assert_well_formed = assert_answer_well_formed


# ---- answers and their citations ----------------------------------------------------------------------

@pytest.mark.parametrize("question, doc, words", [
    ("What do goldfish eat?", "fish.md", "Goldfish eat flakes, plankton and tiny shrimp."),
    ("What do cats chase?", "cat.txt", "chase mice around the kitchen"),
    ("What do dogs need every morning?", "dog.txt", "A dog needs a long walk every morning."),
    ("Where do birds fly for the winter?", "animals/bird.txt", "flies south for the winter"),
    ("How many offices did the company open?", "report_2021.txt", "opened two new offices"),
])
def test_answers_with_the_matching_sentence(toy_assistant, toy_docs, question, doc, words):
    answer = toy_assistant.ask(question)
    assert_well_formed(answer, toy_docs)
    assert answer.question == answer.original_question == question
    assert answer.reason == ""
    assert answer.citations[0].doc == doc
    assert words in answer.text and words in answer.citations[0].quote
    # each toy paragraph is one sentence, so the answer is that sentence with marker [1]
    assert answer.text == f"{answer.citations[0].quote} [1]"


def test_two_sentences_are_numbered_in_order(story_assistant, story_docs):
    # The best sentence names 1998 (a "when" answer); its neighbour in the same passage comes with it.
    answer = story_assistant.ask("When was the old harbour on Lake Miral rebuilt?")
    assert_well_formed(answer, story_docs)
    first, second = answer.citations
    assert first.quote == "The old harbour on Lake Miral was rebuilt in 1998 by the town council."
    assert second.quote == "It now shelters forty fishing boats and a ferry pier."
    assert first.passage == second.passage and first.end < second.start
    assert answer.text == f"{first.quote} [1] {second.quote} [2]"


def test_citation_line_inside_a_multi_line_passage(story_assistant, story_docs):
    # harbour.txt: the paragraph starts on line 3 and its third sentence ("They are painted ...") is on line 4.
    answer = story_assistant.ask("Who paints the fishing boats blue every spring?")
    assert_well_formed(answer, story_docs)
    painted = [c for c in answer.citations if c.quote.startswith("They are painted blue")]
    assert len(painted) == 1
    assert painted[0].passage.line == 3 and painted[0].line == 4
    assert "\n" in painted[0].passage.text and "\n" not in painted[0].quote


def test_citation_of_a_later_paragraph(story_assistant, story_docs):
    answer = story_assistant.ask("Where do herons nest?")
    assert_well_formed(answer, story_docs)
    (c,) = answer.citations
    assert c.quote == "Herons nest in the tall reeds along the eastern shore of the lake."
    assert c.line == 6 and c.passage.heading == ("Miral Harbour Notes 2020",)


def test_long_sentence_is_shortened_but_cited_whole(story_assistant, story_docs):
    answer = story_assistant.ask("What did the canal survey record about the lock keepers?")
    assert_well_formed(answer, story_docs)
    (c,) = answer.citations
    assert len(c.quote) > MAX_ANSWER_CHARS  # the whole sentence is the citation ...
    assert c.quote.endswith("into a ledger.")
    assert answer.text.endswith(" … [1]")  # ... but the answer text is cut at a word boundary
    body = answer.text.removesuffix(" … [1]")
    assert len(body) <= MAX_ANSWER_CHARS and c.quote.startswith(body)
    assert not c.quote[len(body)].isalnum() and not body.endswith((",", ";", ":", " "))  # cut between words


@pytest.mark.parametrize("question", [
    "What do goldfish eat?",
    "When was the old harbour on Lake Miral rebuilt?",
    "Who paints the fishing boats blue every spring?",
    "What did the canal survey record about the lock keepers?",
])
def test_answer_length_is_bounded(story_assistant, question):
    answer = story_assistant.ask(question)
    assert not answer.abstained
    without_markers = re.sub(r" \[\d+\]", "", answer.text)
    assert len(without_markers) <= MAX_ANSWER_CHARS + len(" …")


# ---- verification -----------------------------------------------------------------------------------

@pytest.fixture
def good_citation(toy_assistant) -> Citation:
    answer = toy_assistant.ask("What do goldfish eat?")
    assert not answer.abstained
    return answer.citations[0]


def test_verify_accepts_the_genuine_citation(toy_assistant, good_citation):
    assert toy_assistant.verify(good_citation) is True


@pytest.mark.parametrize("change", [
    {"quote": "Goldfish eat flakes, plankton and tiny sharks."},  # changed quote, same span
    {"quote": "goldfish eat flakes, plankton and tiny shrimp."},  # case differs
    "shift",                                                      # same quote, span moved by one
    {"end": 10_000},                                              # span past the end of the file
    {"start": -1},
    "empty",                                                      # start == end, empty quote
    {"doc": "dog.txt"},                                           # right text, wrong file
    {"doc": "missing.txt"},                                       # no such file
])
def test_verify_rejects_a_tampered_citation(toy_assistant, good_citation, change):
    if change == "shift":
        change = {"start": good_citation.start + 1, "end": good_citation.end + 1}
    elif change == "empty":
        change = {"end": good_citation.start, "quote": ""}
    tampered = dataclasses.replace(good_citation, **change)
    if "doc" in change:
        tampered = dataclasses.replace(tampered, passage=dataclasses.replace(good_citation.passage, doc=change["doc"]))
    assert toy_assistant.verify(tampered) is False


def test_verify_checks_the_file_the_citation_names(toy_assistant, good_citation):
    # the quote is genuine text of fish.md, but the citation claims it comes from dog.txt
    assert toy_assistant.verify(dataclasses.replace(good_citation, doc="dog.txt")) is False


def test_verify_uses_the_index_manifest_folder_by_default(toy_retriever, toy_docs, good_citation):
    assistant = Assistant(toy_retriever)  # no docs=: the folder the index was built from
    assert assistant.docs == toy_docs.resolve()
    assert assistant.verify(good_citation) is True


def test_without_a_documents_folder_nothing_verifies_so_it_abstains(good_citation):
    class Bare:  # a retriever with no index (like the LangChain baseline), over the same passage
        def search(self, question, k=5, mode="hybrid", doc=None, year=None):
            return [good_citation.passage]

    assistant = Assistant(Bare())
    assert assistant.docs is None and assistant.verify(good_citation) is False
    answer = assistant.ask("What do goldfish eat?")
    assert answer.abstained and answer.citations == ()
    assert "verified" in answer.reason


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    st = path.stat()
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # surely a new mtime


@pytest.mark.parametrize("edit, still_answers", [
    (lambda p: _edit(p, "chase mice", "catch rats"), False),        # same length, quoted words changed
    (lambda p: _edit(p, "The Cat\n", "The Cats\n"), False),         # text inserted before: offsets shift
    (lambda p: _edit(p, "hunts at night", "hunts at dusk!"), True),  # another paragraph, after the span
    (lambda p: p.unlink(), False),                                   # the file is gone
])
def test_a_file_changed_after_indexing_is_never_cited_wrongly(toy_assistant, toy_docs, edit, still_answers):
    question = "What do cats chase?"
    before = toy_assistant.ask(question)
    assert not before.abstained and before.citations[0].doc == "cat.txt"
    edit(toy_docs / "cat.txt")
    after = toy_assistant.ask(question)
    if still_answers:
        assert_well_formed(after, toy_docs)
        assert after.citations == before.citations
    else:
        assert after.abstained and after.text == ABSTAIN_MESSAGE
        assert after.citations == ()
        assert after.reason == "no citation could be verified against the source files"
        assert after.passages  # the closest passages are still shown
        assert toy_assistant.verify(before.citations[0]) is False


# ---- abstention ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("question, named", [
    ("What did the report say about Zanzibar?", "Zanzibar"),
    ("What do cats in Patagonia chase?", "Patagonia"),
])
def test_abstains_on_a_name_the_corpus_never_mentions(toy_assistant, question, named):
    answer = toy_assistant.ask(question)
    assert answer.abstained is True
    assert answer.text == ABSTAIN_MESSAGE
    assert answer.citations == ()
    assert answer.passages  # the closest passages, to show instead
    assert named in answer.reason and "never mention" in answer.reason


@pytest.mark.parametrize("question, missing", [
    ("How many cats are there?", "cat"),
    ("How many herons nest in the reeds?", "herons nest"),
])
def test_abstains_on_how_many_without_a_number(story_assistant, question, missing):
    answer = story_assistant.ask(question)
    assert answer.abstained and answer.citations == () and answer.passages
    assert answer.reason == f"no number of {missing} in the evidence"


def test_how_many_with_a_number_answers(story_assistant, story_docs):
    answer = story_assistant.ask("How many fishing boats does the harbour shelter?")
    assert_well_formed(answer, story_docs)
    assert "forty fishing boats" in answer.text


def test_abstains_below_the_relevance_threshold(toy_retriever, toy_docs):
    strict = Assistant(toy_retriever, docs=toy_docs, min_relevance=10.0)  # no sentence can be that relevant
    answer = strict.ask("What do goldfish eat?")
    assert answer.abstained and answer.citations == () and answer.passages
    assert answer.reason.startswith("the evidence is not about the question (relevance") and "< 10.0" in answer.reason
    assert 0 < answer.score < 10.0


def test_no_passage_at_all(toy_assistant):
    answer = toy_assistant.ask("Fish?", doc="fish.md", year=1999)  # the filters leave nothing
    assert answer.abstained and answer.passages == () and answer.citations == ()
    assert answer.reason == "no passage matched"


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
    ("What do goldfish eat?", "nothing numeric here", ""),  # not a "how many" question
    ("How much did it cost?", "it was expensive", ""),  # "how much" is not checked
])
def test_missing_slot(question, evidence, expected):
    assert missing_slot(question, evidence) == expected


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


# ---- input handling -----------------------------------------------------------------------------------

@pytest.mark.parametrize("question", ["", "   ", "\n\t", None])
def test_empty_question_is_an_error(toy_assistant, question):
    with pytest.raises(RagError, match="empty"):
        toy_assistant.ask(question)


@pytest.mark.parametrize("question", ["?!?", "...", "¿?"])
def test_a_question_without_words_is_an_error(toy_assistant, question):
    with pytest.raises(RagError, match="has no words"):
        toy_assistant.ask(question)


def test_overlong_question_is_trimmed(toy_assistant):
    question = "What do goldfish eat? " + "please " * 600
    assert len(question) > MAX_QUESTION_CHARS
    answer = toy_assistant.ask(question)
    assert len(answer.original_question) == MAX_QUESTION_CHARS
    assert answer.original_question == " ".join(question.split())[:MAX_QUESTION_CHARS]
    assert isinstance(answer.abstained, bool)


def test_white_space_in_the_question_is_folded(toy_assistant):
    a = toy_assistant.ask("  What   do\ngoldfish  eat?  ")
    assert a.original_question == a.question == "What do goldfish eat?"
    assert a == toy_assistant.ask("What do goldfish eat?")


def test_follow_up_is_rewritten_before_retrieval(toy_assistant, toy_docs):
    answer = toy_assistant.ask("And in 2022?", history=[("How did revenue grow in 2021?", "Revenue grew strongly. [1]")])
    assert answer.original_question == "And in 2022?"
    assert answer.question == "How did revenue grow in 2022?"
    assert_well_formed(answer, toy_docs)
    assert answer.citations[0].doc == "report_2022.txt"


def test_doc_filter_narrows_the_evidence(toy_assistant):
    answer = toy_assistant.ask("What does a cat do at night?", doc="cat.txt")
    assert {p.doc for p in answer.passages} == {"cat.txt"}
    assert all(c.doc == "cat.txt" for c in answer.citations)


def test_unknown_doc_is_an_error(toy_assistant):
    with pytest.raises(RagError, match="nosuch"):
        toy_assistant.ask("What do goldfish eat?", doc="nosuch.txt")


# ---- determinism and loading --------------------------------------------------------------------------

@pytest.mark.parametrize("question", ["What do goldfish eat?", "When was the old harbour on Lake Miral rebuilt?",
                                      "What did the report say about Zanzibar?"])
def test_same_question_same_answer(story_assistant, story_retriever, story_docs, question):
    first = story_assistant.ask(question)
    assert story_assistant.ask(question) == first
    assert Assistant(story_retriever, docs=story_docs).ask(question) == first


def test_assistant_over_a_loaded_index_with_an_injected_embedder(toy_index, toy_docs):
    retriever = Retriever.load(toy_index, embedder=FakeEmbedder())
    answer = Assistant(retriever, docs=toy_docs).ask("What do goldfish eat?")
    assert_well_formed(answer, toy_docs)
    assert answer.citations[0].doc == "fish.md"


def test_assistant_load(toy_index, toy_docs, monkeypatch):
    asked = []

    def factory(name, *args, **kwargs):  # the model the index names, faked
        asked.append(name)
        return FakeEmbedder(name)

    for name in ("query_embedder", "SentenceTransformerEmbedder"):  # whichever the retriever loads models with
        monkeypatch.setattr(rag.retrieve, name, factory, raising=False)
    assistant = Assistant.load(toy_index, k=3)
    assert assistant.k == 3 and assistant.docs == toy_docs.resolve()
    answer = assistant.ask("What do goldfish eat?")
    assert asked == ["fake-hash"]
    assert len(answer.passages) == 3
    assert_well_formed(answer, toy_docs)


def test_the_fixture_corpora_are_what_the_tests_assume():
    assert "chase mice" in TOY_FILES["cat.txt"]
    harbour = STORY_FILES["harbour.txt"].split("\n")
    assert harbour[3].startswith("They are painted blue")  # line 4, continuing the paragraph of line 3
    assert len(STORY_FILES["canal.txt"].split("\n")[2]) > MAX_ANSWER_CHARS


# ---- context a sentence borrows: its section heading, and the sentence before a leading pronoun --------

FESTIVAL_FILES = {
    "town.md": ("# Town guide\n\n"
                "## The Lantern Festival\n\n"
                "Many visitors come to the quay. It is held on the last Friday of the summer.\n\n"
                "## Market days\n\n"
                "Stalls are held near the old square on Tuesdays.\n"),
}


@pytest.fixture
def festival_assistant(tmp_path):
    return assistant_over(FESTIVAL_FILES, tmp_path)


def _scores(assistant, question):
    passages = assistant.retriever.search(question, k=5)
    return {c.text: c for c in assistant._score(question, assistant._candidates(passages))}


def test_a_sentence_borrows_its_section_heading_at_half_weight(festival_assistant, monkeypatch):
    question = "When is the Lantern Festival held?"
    with_heading = _scores(festival_assistant, question)
    monkeypatch.setattr(rag.answer, "W_SECTION", 0.0)
    without = _scores(festival_assistant, question)
    festival = "It is held on the last Friday of the summer."
    market = "Stalls are held near the old square on Tuesdays."
    assert with_heading[festival].score > without[festival].score  # "Lantern Festival" is in its heading
    assert with_heading[market].score == without[market].score     # its heading does not match
    assert with_heading[festival].score > with_heading[market].score
    assert festival in [c.quote for c in festival_assistant.ask(question).citations]


def test_a_sentence_opening_with_a_pronoun_keeps_the_sentence_before(festival_assistant):
    candidates = {c.text: c for c in festival_assistant._candidates(festival_assistant.retriever.passages)}
    assert candidates["It is held on the last Friday of the summer."].before == "Many visitors come to the quay."
    assert candidates["Many visitors come to the quay."].before == ""
    assert candidates["Stalls are held near the old square on Tuesdays."].before == ""
    # "quay" is only in the sentence before "It is held ...": it counts for that sentence, at half weight
    held = candidates["It is held on the last Friday of the summer."]
    question = "When is the event near the quay held?"
    borrowed, = festival_assistant._score(question, [held])
    alone, = festival_assistant._score(question, [dataclasses.replace(held, before="")])
    quay = rag.answer.W_LEXICAL * rag.answer.W_SECTION * festival_assistant._idf("quay") / sum(
        festival_assistant._terms(question).values())
    assert borrowed.score - alone.score == pytest.approx(quay)


# ---- which sentences are quoted, and the score the threshold sees --------------------------------------

def _ranked(assistant, question):
    passages = assistant.retriever.search(question, k=5)
    return assistant._score(question, assistant._candidates(passages))


def test_a_close_runner_up_from_another_passage_is_quoted_too(story_assistant):
    ranked = _ranked(story_assistant, "When was the old harbour on Lake Miral rebuilt?")
    best = ranked[0]
    elsewhere = next(c for c in ranked if c.passage != best.passage and len(best.text) + len(c.text) < MAX_ANSWER_CHARS)
    neighbour = next(c for c in ranked if c.passage == best.passage and abs(c.index - best.index) == 1)
    close = dataclasses.replace(elsewhere, score=best.score - rag.answer.SECOND_MARGIN / 2)
    far = dataclasses.replace(elsewhere, score=best.score - 2 * rag.answer.SECOND_MARGIN)
    low_neighbour = dataclasses.replace(neighbour, score=far.score - 1)
    q = "When was the old harbour on Lake Miral rebuilt?"
    assert story_assistant._choose(q, [best, close, low_neighbour]) == [best, close]   # best first
    assert story_assistant._choose(q, [best, far, low_neighbour]) == sorted([best, low_neighbour], key=lambda c: c.start)


def test_the_threshold_sees_the_most_relevant_quoted_sentence_not_the_first(story_assistant, story_docs):
    ranked = _ranked(story_assistant, "When was the old harbour on Lake Miral rebuilt?")
    first, second = sorted(ranked[:2], key=lambda c: c.start)
    strict = Assistant(story_assistant.retriever, docs=story_docs, min_relevance=0.5)
    chosen = [dataclasses.replace(first, relevance=0.1), dataclasses.replace(second, relevance=0.9)]  # document order
    assert strict.evidence_gap("When was the old harbour on Lake Miral rebuilt?", chosen) == ""
    chosen = [dataclasses.replace(first, relevance=0.1), dataclasses.replace(second, relevance=0.4)]
    assert strict.evidence_gap("When was the old harbour on Lake Miral rebuilt?", chosen) == \
        "the evidence is not about the question (relevance 0.40 < 0.5)"


# ---- a country the question names must be in the evidence ----------------------------------------------

ALLIANCE_FILES = {
    "alliance.txt": ("Japan and Norway: Norway joined the northern alliance in 1949, Japan noted.\n\n"
                     "Sweden: In April, Japan and the Swedish prime minister spoke by telephone about trade.\n\n"
                     "Japan welcomed the new members of the northern alliance in 2024.\n"),
    "finland.txt": "Finland: In May, Japan sent a trade mission to its capital.\n",
}


@pytest.fixture
def alliance_assistant(tmp_path):
    return assistant_over(ALLIANCE_FILES, tmp_path, min_relevance=-1.0)


def test_abstains_when_the_evidence_never_names_the_country_asked_about(alliance_assistant):
    # the documents name Finland (finland.txt), but the evidence about the alliance never does
    answer = alliance_assistant.ask("When did Finland join the northern alliance?", doc="alliance.txt")
    assert answer.abstained and answer.reason == "the evidence does not mention Finland"
    assert answer.passages  # the closest passages are still shown


def test_answers_when_the_evidence_names_the_country(alliance_assistant):
    answer = alliance_assistant.ask("When did Norway join the northern alliance?")
    assert not answer.abstained and "1949" in answer.text


def test_a_leading_label_names_the_country_of_its_paragraph(alliance_assistant):
    answer = alliance_assistant.ask("What did Japan discuss by telephone with Sweden in April?")
    assert not answer.abstained and "telephone" in answer.text  # "Sweden:" labels the sentence's paragraph


def test_the_documents_own_country_and_demonyms_are_not_checked(alliance_assistant):
    # "Japan" is in every passage: the documents' own country, never the missing piece
    assert alliance_assistant._missing_country("When did Japan join the northern alliance?", []) == ""
    # a demonym may be answered in other words ("German ruler" ~ "Prussia"): only names are checked
    passages = alliance_assistant.retriever.search("northern alliance 1949", k=1)
    chosen = alliance_assistant._choose("q", alliance_assistant._score("q", alliance_assistant._candidates(passages)))
    assert alliance_assistant._missing_country("Which Swedish minister welcomed the alliance?", chosen) == ""
    assert alliance_assistant._missing_country("Which minister of Sweden welcomed the alliance?", chosen) == \
        "the evidence does not mention Sweden"


def test_the_best_sentence_must_name_a_country_asked_about(alliance_assistant):
    passages = alliance_assistant.retriever.search("northern alliance Sweden telephone", k=5)
    candidates = {c.text: c for c in alliance_assistant._candidates(passages)}
    norway = next(c for t, c in candidates.items() if t.startswith("Japan and Norway"))
    sweden = next(c for t, c in candidates.items() if t.startswith("Sweden:"))
    question = "When did Sweden join the northern alliance?"
    # Sweden is only in the runner-up: the answer would rest on a sentence about something else
    rests_on_norway = [dataclasses.replace(norway, score=2.0), dataclasses.replace(sweden, score=1.95)]
    assert alliance_assistant._missing_country(question, rests_on_norway) == "the evidence does not mention Sweden"
    rests_on_sweden = [dataclasses.replace(norway, score=1.95), dataclasses.replace(sweden, score=2.0)]
    assert alliance_assistant._missing_country(question, rests_on_sweden) == ""
    # two countries asked: the best sentence names one, the other quoted sentence the other
    both = "What did Norway and Sweden do?"
    assert alliance_assistant._missing_country(both, rests_on_norway) == ""
    assert alliance_assistant._missing_country(both, rests_on_norway[:1]) == "the evidence does not mention Sweden"


def test_the_same_sentence_from_an_overlapping_passage_is_not_quoted_twice(story_assistant):
    q = "When was the old harbour on Lake Miral rebuilt?"
    ranked = _ranked(story_assistant, q)
    best = ranked[0]
    neighbour = next(c for c in ranked if c.passage == best.passage and abs(c.index - best.index) == 1)
    # overlapping chunks of one long paragraph hold the same sentence, at the same span, in two passages
    other_passage = dataclasses.replace(best.passage, start=best.passage.start - 1)
    duplicate = dataclasses.replace(best, passage=other_passage, score=best.score - 0.01)
    chosen = story_assistant._choose(q, [best, duplicate, dataclasses.replace(neighbour, score=best.score - 1)])
    assert duplicate not in chosen and len({(c.start, c.end) for c in chosen}) == len(chosen) == 2


# ---- names typed differently from the documents ----------------------------------------------------------

CASE_FILES = {"case.txt": "Ms Kücükdeveci worked for Swedex for ten years before she was dismissed by the firm.\n\n"
                          "The Setanta channel planned to launch on a digital terrestrial platform in Ireland.\n"}


@pytest.mark.parametrize("question", [
    "How long did Ms Kucukdeveci work for Swedex?",               # no diacritics
    "Which platform did the Sentanta channel plan to launch on?",  # one letter too many
    "How long did Ms Kücükdeveci work for Swedex?",               # as written
])
def test_a_name_typed_without_diacritics_or_with_a_typo_is_still_known(tmp_path, question):
    assistant = assistant_over(CASE_FILES, tmp_path)
    answer = assistant.ask(question)
    assert not answer.reason.startswith("the documents never mention"), answer.reason
    assert not answer.abstained


@pytest.mark.parametrize("question, name", [
    ("What did Ms Narnia say about Swedex?", "Ms Narnia"),    # not within one edit of any word
    ("Which platform did Peru plan to launch?", "Peru"),      # short names must match exactly
])
def test_a_name_far_from_every_word_is_unknown(tmp_path, question, name):
    answer = assistant_over(CASE_FILES, tmp_path).ask(question)
    assert answer.abstained and answer.reason == f"the documents never mention {name!r}"


# ---- phrases and the kind of thing asked for -----------------------------------------------------------

PHRASE_FILES = {"council.txt": "The coordinator of the regional council was elected in spring.\n\n"
                               "The regional coordinator of the council was elected in autumn.\n"}


def test_a_sentence_with_the_question_s_phrase_in_order_scores_higher(tmp_path, monkeypatch):
    assistant = assistant_over(PHRASE_FILES, tmp_path)
    question = "When was the regional coordinator elected?"
    ordered = "The regional coordinator of the council was elected in autumn."
    scattered = "The coordinator of the regional council was elected in spring."
    with_pairs = _scores(assistant, question)
    monkeypatch.setattr(rag.answer, "W_BIGRAM", 0.0)
    without = _scores(assistant, question)
    assert with_pairs[ordered].score > without[ordered].score  # holds "regional coordinator" in order
    assert with_pairs[scattered].score == without[scattered].score  # same words, no pair in order
    assert with_pairs[ordered].relevance == without[ordered].relevance  # the threshold does not see pairs
    assert with_pairs[ordered].score > with_pairs[scattered].score


@pytest.mark.parametrize("kind, sentence, question, expected", [
    ("when", "It opened in 2019.", "When did it open in 2019?", False),   # the question's own year
    ("when", "It opened in 2019 and closed in 2021.", "When did it close after 2019?", True),
    ("number", "Sweden has 10 million people.", "How many people does Sweden have?", True),
    ("number", "The 10 members met.", "What did the 10 members do?", False),
    ("who", "The treaty was signed by Anna Lind.", "Who signed the treaty?", True),
    ("who", "The treaty was signed in Stockholm.", "Who signed the treaty in Stockholm?", False),
    (None, "The treaty was signed in 2019.", "Why was the treaty signed?", False),
])
def test_offers_the_kind_asked_for_only_when_the_question_does_not_already_say_it(kind, sentence, question, expected):
    from rag.question import offers

    assert offers(kind, sentence, question) is expected


PLEDGE_FILES = {"pledge.txt": "The United Kingdom (UK) pledged support totaling 12 billion pounds to the fund.\n\n"
                              "The fund was set up in 2019 by the northern council.\n"}


def test_a_question_may_name_a_country_by_another_name(tmp_path):
    assistant = assistant_over(PLEDGE_FILES, tmp_path)
    answer = assistant.ask("How much support has Britain pledged to the fund?")  # the text says "United Kingdom"
    assert not answer.abstained, answer.reason
    assert "12 billion pounds" in answer.text


def test_another_name_does_not_excuse_an_unknown_word_beside_it(tmp_path):
    assistant = assistant_over(PLEDGE_FILES, tmp_path)
    answer = assistant.ask("What did Britain's Foreign Secretary pledge?")
    assert answer.abstained and answer.reason == "the documents never mention \"Britain's Foreign Secretary\""
