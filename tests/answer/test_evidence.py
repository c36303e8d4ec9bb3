"""rag.answer.evidence: `EvidenceCheck(searcher, min_relevance).gap(question, chosen)`, the checks behind an
abstention: names the documents never mention (typos and diacritics forgiven, other names allowed), a
"how many" without a count (`rag.answer.kinds`), a country the evidence never names, and evidence that is not about the
question. Directly on scored sentences, and through `Assistant.ask`; small corpora, fake embedder."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import assert_answer_well_formed, assistant_over
from rag.answer.assistant import Assistant
from rag.answer.evidence import EvidenceCheck
from rag.answer.kinds import asked_for, holds
from rag.answer.score import candidates, score
from rag.types import ABSTAIN_MESSAGE

HARBOUR_Q = "When was the old harbour on Lake Miral rebuilt?"


class Hiding:
    """A searcher without term statistics (like the LangChain baseline); `vectors=False` also hides the
    sentence vectors, `aliases=False` the other names."""

    term_stats = None

    def __init__(self, inner, *, vectors: bool = True, aliases: bool = True):
        self.inner, self.vectors, self.keep_aliases = inner, vectors, aliases

    @property
    def aliases(self):
        return self.inner.aliases if self.keep_aliases else None

    def sentence_vectors(self, passage):
        return self.inner.sentence_vectors(passage) if self.vectors else None

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _scored(searcher, question, k=5):
    return score(searcher, question, candidates(searcher.search(question, k=k)))


# ---- relevance ------------------------------------------------------------------------------------------

def test_the_threshold_sees_the_most_relevant_quoted_sentence_not_the_first(story_retriever):
    first, second = sorted(_scored(story_retriever, HARBOUR_Q)[:2], key=lambda c: c.start)
    strict = EvidenceCheck(story_retriever, min_relevance=0.5)
    chosen = [dataclasses.replace(first, relevance=0.1), dataclasses.replace(second, relevance=0.9)]  # document order
    assert strict.gap(HARBOUR_Q, chosen) == ""
    chosen = [dataclasses.replace(first, relevance=0.1), dataclasses.replace(second, relevance=0.4)]
    assert strict.gap(HARBOUR_Q, chosen) == "the evidence is not about the question (relevance 0.40 < 0.5)"


def test_the_assistant_abstains_below_its_relevance_threshold(toy_retriever):
    strict = Assistant(toy_retriever, min_relevance=10.0)  # no sentence can be that relevant
    answer = strict.ask("What do goldfish eat?")
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE and answer.citations == () and answer.passages
    # in plain words, without scores; the relevance it judged stays in `score`
    assert answer.reason.startswith("the documents") and "goldfish" in answer.reason and "10" not in answer.reason
    assert 0 < answer.score < 10.0


def test_without_sentence_vectors_relevance_is_not_judged(story_retriever):
    # with no cosine in the relevance there is nothing to hold the calibrated threshold against
    bare = Hiding(story_retriever, vectors=False)
    chosen = _scored(bare, HARBOUR_Q)[:1]
    assert not chosen[0].dense
    assert EvidenceCheck(bare, min_relevance=10.0).gap(HARBOUR_Q, chosen) == ""
    assert EvidenceCheck(story_retriever, min_relevance=10.0).gap(HARBOUR_Q, _scored(story_retriever, HARBOUR_Q)[:1]) \
        .startswith("the evidence is not about the question")


# ---- names ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("question, named", [
    ("What did the report say about Zanzibar?", "Zanzibar"),
    ("What do cats in Patagonia chase?", "Patagonia"),
])
def test_a_name_the_documents_never_mention(toy_retriever, toy_assistant, question, named):
    chosen = _scored(toy_retriever, question)[:1]
    assert EvidenceCheck(toy_retriever, -1.0).gap(question, chosen) == f"the documents never mention {named!r}"
    answer = toy_assistant.ask(question)
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE and answer.citations == ()
    assert answer.reason == f"the documents never mention {named!r}"
    assert answer.passages  # the closest passages, to show instead


def test_without_term_statistics_names_are_looked_for_in_the_evidence(toy_retriever):
    # no corpus vocabulary to consult: a name counts when the quoted sentence or its passage's heading says it
    bare = EvidenceCheck(Hiding(toy_retriever), -1.0)
    question = "What does the Annual Report say about revenue growth?"
    report = next(c for c in _scored(toy_retriever, question) if c.passage.doc == "report_2022.txt")
    cat = next(c for c in _scored(toy_retriever, "What do cats chase?") if c.passage.doc == "cat.txt")
    assert bare.gap(question, [report]) == ""  # "Annual Report 2022" is the passage's heading
    assert bare.gap(question, [cat]) == "the evidence does not mention 'Annual Report'"
    assert bare.gap("What did the report say about Zanzibar?", [report]) == "the evidence does not mention 'Zanzibar'"


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


# ---- how many -------------------------------------------------------------------------------------------

def test_how_many_without_a_count_in_the_quoted_sentences(story_retriever):
    question = "How many boats does the harbour shelter?"
    ranked = _scored(story_retriever, question)
    shelters = next(c for c in ranked if "forty fishing boats" in c.text)
    rebuilt = next(c for c in ranked if "rebuilt in 1998" in c.text)  # a year, not a count of boats
    asked = asked_for(question)
    assert holds(asked, shelters.text) and not holds(asked, rebuilt.text)


@pytest.mark.parametrize("question, topic", [
    ("How many cats are there?", "the documents do not say"),
    ("How many herons nest in the reeds?", "the documents do not say"),
])
def test_the_assistant_abstains_on_how_many_without_a_number(story_assistant, question, topic):
    answer = story_assistant.ask(question)
    assert answer.abstained and answer.citations == () and answer.passages
    assert answer.reason.startswith(topic) and "how many" in answer.reason.lower()


def test_the_assistant_answers_how_many_with_a_number(story_assistant, story_docs):
    answer = story_assistant.ask("How many fishing boats does the harbour shelter?")
    assert_answer_well_formed(answer, story_docs)
    assert "forty fishing boats" in answer.text


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


@pytest.fixture
def alliance(alliance_assistant):
    """The alliance corpus's sentences by their first words, and its evidence check."""
    searcher = alliance_assistant.retriever
    found = {c.text: c for c in candidates(searcher.passages)}
    pick = {key: next(c for t, c in found.items() if t.startswith(key)) for key in
            ("Japan and Norway", "Sweden:", "Japan welcomed", "Finland:")}
    return pick, EvidenceCheck(searcher, min_relevance=-1.0)


def test_abstains_when_the_evidence_never_names_the_country_asked_about(alliance_assistant):
    # the documents name Finland (finland.txt), but the evidence about the alliance never does
    answer = alliance_assistant.ask("When did Finland join the northern alliance?", doc="alliance.txt")
    assert answer.abstained and "Finland" in answer.reason and "the evidence" not in answer.reason
    assert answer.passages  # the closest passages are still shown


def test_answers_when_the_evidence_names_the_country(alliance_assistant):
    answer = alliance_assistant.ask("When did Norway join the northern alliance?")
    assert not answer.abstained and "1949" in answer.text


def test_a_leading_label_names_the_country_of_its_paragraph(alliance_assistant):
    answer = alliance_assistant.ask("What did Japan discuss by telephone with Sweden in April?")
    assert not answer.abstained and "telephone" in answer.text  # "Sweden:" labels the sentence's paragraph


def test_the_documents_own_country_and_demonyms_are_not_checked(alliance):
    pick, check = alliance
    norway = pick["Japan and Norway"]
    text = "Norway joined the northern alliance in 1949."
    unlabelled = dataclasses.replace(norway, text=text, passage=dataclasses.replace(norway.passage, text=text))
    # "Japan" is in every passage: the documents' own country, never the missing piece; Finland is not
    assert check.gap("When did Japan join the northern alliance?", [unlabelled]) == ""
    assert check.gap("When did Finland join the northern alliance?", [unlabelled]) == \
        "the evidence does not mention Finland"
    # a demonym may be answered in other words ("German ruler" ~ "Prussia"): only names are checked
    assert check.gap("Which Swedish minister welcomed the alliance?", [norway]) == ""
    assert check.gap("Which minister of Sweden welcomed the alliance?", [norway]) == "the evidence does not mention Sweden"


def test_a_country_label_outranks_the_countries_its_heading_lists(alliance):
    pick, check = alliance
    sweden = pick["Sweden:"]  # "Sweden: In April, Japan and the Swedish prime minister spoke ..."
    listed = dataclasses.replace(sweden, passage=dataclasses.replace(
        sweden.passage, heading=("Nordic partners (Norway, Sweden, Finland)",)))
    # the paragraph is about Sweden: the heading's list does not make it about Norway
    assert check.gap("What did Japan discuss with Norway in April?", [listed]) == "the evidence does not mention Norway"
    assert check.gap("What did Japan discuss with Sweden in April?", [listed]) == ""
    assert not check.names_all("What did Japan discuss with Norway in April?")(listed)
    unlabelled = dataclasses.replace(listed, passage=dataclasses.replace(listed.passage, text=listed.text[8:]),
                                     text=listed.text[8:])
    assert check.gap("What did Japan discuss with Norway in April?", [unlabelled]) == ""  # no label: the heading


def test_a_sentence_about_other_countries_alone_is_elsewhere(alliance):
    pick, check = alliance
    elsewhere = check.elsewhere("What did Japan discuss with Norway in April?")
    assert elsewhere(pick["Sweden:"])  # labelled Sweden, naming no Norway
    assert not elsewhere(pick["Japan and Norway"]) and not elsewhere(pick["Japan welcomed"])  # Norway; no country
    assert not check.elsewhere("What did Japan discuss in April?")(pick["Sweden:"])  # no country asked about


def test_a_date_or_count_belongs_to_the_event_asked_about(alliance_assistant, alliance):
    pick, check = alliance
    on_topic = check.on_topic("When did Sweden sign the fishing treaty?")
    assert not on_topic(pick["Sweden:"])  # a telephone call in April: Sweden's, but not a treaty
    assert check.on_topic("When did Norway join the alliance?")(pick["Japan and Norway"])  # "joined the ... alliance"
    assert check.on_topic("In what year did Sweden ...?")(pick["Sweden:"])  # nothing asked beyond the country
    answer = alliance_assistant.ask("When did Sweden sign the fishing treaty?")
    assert answer.abstained and "Sweden" in answer.reason


def test_the_best_sentence_must_name_a_country_asked_about(alliance):
    pick, check = alliance
    norway, sweden = pick["Japan and Norway"], pick["Sweden:"]
    question = "When did Sweden join the northern alliance?"
    # Sweden is only in the runner-up: the answer would rest on a sentence about something else
    rests_on_norway = [dataclasses.replace(norway, score=2.0), dataclasses.replace(sweden, score=1.95)]
    assert check.gap(question, rests_on_norway) == "the evidence does not mention Sweden"
    rests_on_sweden = [dataclasses.replace(norway, score=1.95), dataclasses.replace(sweden, score=2.0)]
    assert check.gap(question, rests_on_sweden) == ""
    # two countries asked: the best sentence names one, the other quoted sentence the other
    both = "What did Norway and Sweden do?"
    assert check.gap(both, rests_on_norway) == ""
    assert check.gap(both, rests_on_norway[:1]) == "the evidence does not mention Sweden"


def test_without_term_statistics_countries_are_not_checked(alliance, alliance_assistant):
    # no document frequencies, so no telling the documents' own country: only the names check remains,
    # and it looks in the evidence (the passage's "Sweden:" label counts there)
    pick, check = alliance
    bare = EvidenceCheck(Hiding(alliance_assistant.retriever), min_relevance=-1.0)
    rests_on_japan = [dataclasses.replace(pick["Japan welcomed"], score=2.0), dataclasses.replace(pick["Sweden:"], score=1.0)]
    assert check.gap("When did Sweden join the northern alliance?", rests_on_japan) == \
        "the evidence does not mention Sweden"  # with statistics: the best sentence must name Sweden
    assert bare.gap("When did Sweden join the northern alliance?", rests_on_japan) == ""
    assert bare.gap("When did Sweden join the northern alliance?", rests_on_japan[:1]) == \
        "the evidence does not mention 'Sweden'"
    for aliases in (True, False):
        assert EvidenceCheck(Hiding(alliance_assistant.retriever, aliases=aliases), -1.0).gap(
            "When did Norway join the northern alliance?", [pick["Japan and Norway"]]) == ""
