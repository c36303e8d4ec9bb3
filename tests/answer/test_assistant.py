"""rag.answer.assistant: `Assistant.ask` end to end on the toy and story corpora with the fake embedder:
markers, verified citations, abstention, input checks, years, determinism, loading, and any `Searcher`
(a bare one, the LangChain baseline). The parts are unit-tested in test_score, test_evidence,
test_compose and test_question; the real model on the seeds is in test_e2e_answer.py."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from conftest import (
    STORY_FILES,
    TOY_FILES,
    FakeEmbedder,
    assert_answer_well_formed,
    assistant_over,
)

import rag.search.retriever
from rag.answer.assistant import Assistant
from rag.answer.weights import MAX_ANSWER_CHARS
from rag.errors import InputError, RagError
from rag.index.store import stale_files
from rag.query import make_query
from rag.search.retriever import Retriever
from rag.settings import MAX_QUESTION_CHARS
from rag.types import Citation

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


def test_a_second_sentence_only_when_it_adds_to_the_answer(story_assistant, story_docs):
    # The best sentence names 1998 (a "when" answer); its neighbour holds no date, so it is left out.
    answer = story_assistant.ask("When was the old harbour on Lake Miral rebuilt?")
    assert_well_formed(answer, story_docs)
    (only,) = answer.citations
    assert only.quote == "The old harbour on Lake Miral was rebuilt in 1998 by the town council."


def test_two_sentences_are_numbered_in_order(story_assistant, story_docs):
    # A question that asks for no particular kind: the best sentence's neighbour comes with it, in reading order.
    answer = story_assistant.ask("What happened to the old harbour on Lake Miral?")
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


# ---- verification: against the source text the searcher gives -----------------------------------------

@pytest.fixture
def good_citation(toy_assistant) -> Citation:
    answer = toy_assistant.ask("What do goldfish eat?")
    assert not answer.abstained
    return answer.citations[0]


@pytest.mark.parametrize("change, genuine", [
    ({}, True),
    ({"quote": "Goldfish eat flakes, plankton and tiny sharks."}, False),  # changed quote, same span
    ({"end": 10_000}, False),                                             # span past the end of the file
    ({"doc": "dog.txt"}, False),                                          # right text, wrong file
    ({"doc": "dog.txt", "passage": "dog.txt"}, False),                    # ... and its passage says so too
    ({"doc": "missing.txt", "passage": "missing.txt"}, False),            # no such file
])
def test_verify_reads_the_file_the_citation_names(toy_assistant, good_citation, change, genuine):
    if "passage" in change:
        change = {**change, "passage": dataclasses.replace(good_citation.passage, doc=change["passage"])}
    assert toy_assistant.verify(dataclasses.replace(good_citation, **change)) is genuine


def test_source_text_comes_from_the_searcher_not_a_docs_folder(toy_retriever, toy_docs, good_citation, monkeypatch):
    # the retriever reads the folder its index was built from; Assistant no longer takes docs=
    assert toy_retriever.document_text("fish.md") == (toy_docs / "fish.md").read_text(encoding="utf-8")
    with pytest.raises(TypeError, match="docs"):
        Assistant(toy_retriever, docs=toy_docs)
    assistant = Assistant(toy_retriever, min_relevance=0.3)
    monkeypatch.setattr(toy_retriever, "document_text", lambda doc: TOY_FILES[doc].replace("shrimp", "krill!"))
    assert assistant.verify(good_citation) is False
    answer = assistant.ask("What do goldfish eat?")
    assert answer.abstained and answer.reason == "no citation could be verified against the source files"


def test_without_source_text_nothing_verifies_so_it_abstains(good_citation):
    class Bare:  # the whole Searcher protocol, over one passage, with no source text, statistics or vectors
        embedder, passages, docs, years = FakeEmbedder(), [good_citation.passage], ("fish.md",), {"fish.md": None}
        aliases = term_stats = None
        retrieve = lambda self, query: [good_citation.passage]  # noqa: E731
        embed_query = lambda self, text: self.embedder.encode([text])  # noqa: E731
        sentence_vectors = lambda self, passage: None  # noqa: E731
        name_share = lambda self, passage, needed: 1.0  # noqa: E731
        named_years = lambda self, question: set()  # noqa: E731
        document_text = lambda self, doc: None  # noqa: E731
        source_file = lambda self, doc: None  # noqa: E731
        first_passages = lambda self: [good_citation.passage]  # noqa: E731
        clear_cache = lambda self: None  # noqa: E731

    assistant = Assistant(Bare())
    assert assistant.verify(good_citation) is False
    answer = assistant.ask("What do goldfish eat?")
    assert answer.abstained and answer.citations == () and answer.passages == (good_citation.passage,)
    assert answer.reason == "no citation could be verified against the source files"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    st = path.stat()
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # surely a new mtime


@pytest.mark.parametrize("edit", [
    lambda p: _edit(p, "chase mice", "catch rats"),    # same length, quoted words changed
    lambda p: _edit(p, "The Cat\n", "The Cats\n"),     # text inserted before: offsets shift
    lambda p: p.unlink(),                              # the file is gone
])
def test_a_file_changed_after_indexing_is_quoted_as_indexed_and_the_index_is_stale(toy_assistant, toy_docs, edit):
    """Citations are verified against the text stored in the index, so an answer quotes exactly what
    was indexed whatever happens to the file; the change makes the index stale (a refresh re-reads it)."""
    question = "What do cats chase?"
    before = toy_assistant.ask(question)
    assert not before.abstained and before.citations[0].doc == "cat.txt"
    edit(toy_docs / "cat.txt")
    after = toy_assistant.ask(question)
    assert after.citations == before.citations and toy_assistant.verify(before.citations[0])
    text = toy_assistant.retriever.document_text("cat.txt")
    assert all(text[c.start:c.end] == c.quote for c in after.citations)
    assert stale_files(toy_assistant.retriever.index.manifest) == ["cat.txt"]


# ---- abstention (the checks themselves are in test_evidence) ------------------------------------------------

def test_no_passage_at_all(toy_assistant):
    answer = toy_assistant.ask("Fish?", doc="fish.md", year=2021)  # each filter is valid; together they leave nothing
    assert answer.abstained and answer.passages == () and answer.citations == ()
    assert answer.reason == "no passage matched"


# ---- input handling (rag.query checks, once, before anything is retrieved) ----------------------------------

@pytest.mark.parametrize("question, why", [("", "empty"), ("   ", "empty"), ("\n\t", "empty"), (None, "empty"),
                                           ("?!?", "has no words"), ("...", "has no words"), ("¿?", "has no words")])
def test_an_empty_question_or_one_without_words_is_an_error(toy_assistant, question, why):
    with pytest.raises(InputError, match=why):
        toy_assistant.ask(question)


def test_an_overlong_question_is_refused_not_cut(toy_assistant):
    question = "What do goldfish eat? " + "please " * 600
    assert len(" ".join(question.split())) > MAX_QUESTION_CHARS
    with pytest.raises(InputError, match=f"limit is {MAX_QUESTION_CHARS:,}"):
        toy_assistant.ask(question)
    longest = question[:MAX_QUESTION_CHARS - 1] + "x"
    assert toy_assistant.ask(longest).original_question == longest  # the limit itself is fine, and kept whole


@pytest.mark.parametrize("settings, named", [
    ({"doc": "nosuch.txt"}, "nosuch"), ({"year": 1999}, "1999"), ({"k": 0}, "out of range"),
    ({"k": 51}, "out of range"), ({"k": 2.5}, "whole number"), ({"mode": "fuzzy"}, "fuzzy"),
])
def test_an_unusable_setting_is_an_error(toy_assistant, settings, named):
    with pytest.raises(InputError, match=named) as raised:
        toy_assistant.ask("What do goldfish eat?", **settings)
    assert isinstance(raised.value, RagError) and "\n" not in str(raised.value)


def test_white_space_in_the_question_is_folded(toy_assistant):
    a = toy_assistant.ask("  What   do\ngoldfish  eat?  ")
    assert a.original_question == a.question == "What do goldfish eat?"
    assert a == toy_assistant.ask("What do goldfish eat?")


def test_ask_is_make_query_then_answer(toy_assistant, toy_retriever):
    query = make_query("What do goldfish eat?", k=3, mode="dense", docs=toy_retriever.docs)
    answer = toy_assistant.answer(query)
    assert answer == toy_assistant.ask("What do goldfish eat?", k=3, mode="dense")
    assert len(answer.passages) == 3


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


def test_two_years_named_bring_evidence_from_each(toy_assistant, toy_docs):
    answer = toy_assistant.ask("How did revenue grow in 2021 and 2022?")
    assert_well_formed(answer, toy_docs)
    assert [p.year for p in answer.passages] == [2021, 2022]  # each year's best, in turn
    assert {c.doc for c in answer.citations} == {"report_2021.txt", "report_2022.txt"}
    narrowed = toy_assistant.ask("How did revenue grow in 2021 and 2022?", year=2021)
    assert {p.doc for p in narrowed.passages} == {"report_2021.txt"}


# ---- determinism, loading and other searchers ---------------------------------------------------------------

@pytest.mark.parametrize("question", ["What do goldfish eat?", "When was the old harbour on Lake Miral rebuilt?",
                                      "What did the report say about Zanzibar?"])
def test_same_question_same_answer(story_assistant, story_retriever, question):
    first = story_assistant.ask(question)
    assert story_assistant.ask(question) == first
    assert Assistant(story_retriever, min_relevance=0.3).ask(question) == first


def test_assistant_over_a_loaded_index_with_an_injected_embedder(toy_index, toy_docs):
    retriever = Retriever.load(toy_index, embedder=FakeEmbedder())
    answer = Assistant(retriever).ask("What do goldfish eat?")
    assert_well_formed(answer, toy_docs)
    assert answer.citations[0].doc == "fish.md"


def test_assistant_load(toy_index, toy_docs, monkeypatch):
    asked = []

    def factory(name, *args, **kwargs):  # the model the index names, faked
        asked.append(name)
        return FakeEmbedder(name)

    monkeypatch.setattr(rag.search.retriever, "query_embedder", factory)
    assistant = Assistant.load(toy_index, k=3)
    assert assistant.k == 3 and asked == []  # the model loads on first use
    answer = assistant.ask("What do goldfish eat?")
    assert asked == ["fake-hash"]
    assert len(answer.passages) == 3
    assert_well_formed(answer, toy_docs)


def test_over_the_langchain_baseline(toy_docs):
    pytest.importorskip("langchain_community")
    from rag.evaluate.baseline import NaiveRetriever

    assistant = Assistant(NaiveRetriever(toy_docs, FakeEmbedder()))  # no sentence vectors, statistics or aliases
    answer = assistant.ask("What do goldfish eat?")
    assert_well_formed(answer, toy_docs)
    assert answer.citations[0].doc == "fish.md" and "Goldfish eat flakes" in answer.text
    unknown = assistant.ask("What did the report say about Zanzibar?")  # no vocabulary: looked for in the evidence
    assert unknown.abstained and unknown.reason == "the evidence does not mention 'Zanzibar'"


def test_the_fixture_corpora_are_what_the_tests_assume(tmp_path):
    assert "chase mice" in TOY_FILES["cat.txt"]
    harbour = STORY_FILES["harbour.txt"].split("\n")
    assert harbour[3].startswith("They are painted blue")  # line 4, continuing the paragraph of line 3
    assert len(STORY_FILES["canal.txt"].split("\n")[2]) > MAX_ANSWER_CHARS
    assert assistant_over({"a.txt": "Goldfish eat flakes.\n"}, tmp_path).ask("What do goldfish eat?").citations
