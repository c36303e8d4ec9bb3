"""rag.answer.score: retrieved passages -> candidate sentences (`candidates`), each scored against the
question (`score`, `term_weights`) with the weights of rag.answer.weights. Over hand-made passages and
small corpora indexed with the fake embedder."""

from __future__ import annotations

import dataclasses

import pytest

import rag.answer.weights
from conftest import assistant_over
from rag.answer.score import candidates, score, term_weights
from rag.answer.weights import W_LEXICAL, W_NAMES, W_RANK, W_SECTION, W_TYPE
from rag.types import Passage


class Without:
    """A searcher that lacks what the LangChain baseline lacks: term statistics, aliases, sentence vectors."""

    term_stats = None
    aliases = None

    def __init__(self, inner, name_share=None):
        self.inner, self._share = inner, name_share

    def sentence_vectors(self, passage):
        return None

    def name_share(self, passage, needed):
        return self._share(passage) if self._share else self.inner.name_share(passage, needed)

    def __getattr__(self, name):
        return getattr(self.inner, name)


# ---- candidates -----------------------------------------------------------------------------------------

def _texts(text, kind="paragraph", start=100):
    return [(c.text, c.start, c.end, c.before) for c in candidates([Passage("n.txt", start, start + len(text), text,
                                                                              kind=kind)])]


def test_candidates_are_the_passage_sentences_with_file_spans():
    text = "The council met in spring at the old hall. It chose a new chair for two years."
    (first, s1, e1, _), (second, s2, e2, before) = _texts(text)
    assert (first, second) == ("The council met in spring at the old hall.", "It chose a new chair for two years.")
    assert text[s1 - 100:e1 - 100] == first and text[s2 - 100:e2 - 100] == second
    assert before == first  # it opens with a pronoun: the sentence before comes with it


def test_a_footnote_mark_is_left_out_of_the_quote_but_not_out_of_a_paragraph():
    text = "- (2) European Peace Facility: System established in March 2021."
    (note, start, _, _), = _texts(text, kind="footnote")
    assert note == "European Peace Facility: System established in March 2021." and start == 100 + text.index("European")
    assert _texts(text)[0][0] == text
    assert _texts("12 The fund was set up in 2019 by the council.", kind="footnote")[0][0] == \
        "The fund was set up in 2019 by the council."


@pytest.mark.parametrize("text", ["Ok. Fine. Yes.", "http://example.org/reports/annual-report-2021.pdf"])
def test_fragments_and_links_are_not_quotable(text):
    assert _texts(text) == []


def test_candidates_keep_the_passage_rank_and_sentence_index():
    one, two = "The first passage holds a single sentence.", "Ok. The second passage holds this one. And then this one too."
    found = candidates([Passage("a.txt", 0, len(one), one), Passage("b.txt", 0, len(two), two)])
    assert [(c.passage.doc, c.rank, c.index) for c in found] == [("a.txt", 0, 0), ("b.txt", 1, 1), ("b.txt", 1, 2)]


# ---- term_weights ---------------------------------------------------------------------------------------

def test_term_weights_are_idf_with_term_statistics_and_one_without(toy_retriever):
    weights = term_weights(toy_retriever, "What do goldfish eat?")
    assert set(weights) == {"what", "do", "goldfish", "eat"}
    assert weights["goldfish"] == pytest.approx(toy_retriever.term_stats.idf("goldfish"))
    (revenue,) = term_weights(toy_retriever, "revenue").values()  # in both yearly reports
    assert weights["goldfish"] > revenue  # rarer terms weigh more
    assert term_weights(Without(toy_retriever), "What do goldfish eat?") == dict.fromkeys(weights, 1.0)


# ---- score ----------------------------------------------------------------------------------------------

def test_scored_best_first_with_relevance_part_of_the_score(toy_retriever):
    question = "What do goldfish eat?"
    ranked = score(toy_retriever, question, candidates(toy_retriever.search(question, k=5)))
    assert ranked[0].text == "Goldfish eat flakes, plankton and tiny shrimp."
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
    assert all(c.dense and c.relevance <= c.score for c in ranked)
    assert score(toy_retriever, question, []) == []


def test_without_sentence_vectors_relevance_is_the_weighted_term_overlap(toy_retriever):
    question = "What do goldfish eat?"
    passages = toy_retriever.search(question, k=5)
    found = {c.text: c for c in score(Without(toy_retriever), question, candidates(passages))}
    goldfish = found["Goldfish eat flakes, plankton and tiny shrimp."]  # holds "goldfish" and "eat", of four terms
    assert not goldfish.dense and goldfish.relevance == pytest.approx(W_LEXICAL * 2 / 4)
    assert all(not c.dense for c in found.values())


def test_the_passage_rank_and_the_names_it_mentions_add_to_the_score(toy_retriever):
    question = "What do goldfish eat?"
    c, = [c for c in candidates(toy_retriever.search(question, k=1)) if c.text.startswith("Goldfish")]
    first, = score(toy_retriever, question, [c])
    third, = score(toy_retriever, question, [dataclasses.replace(c, rank=2)])
    assert first.score - third.score == pytest.approx(W_RANK - W_RANK / 3)
    named, = score(Without(toy_retriever, lambda p: 1.0), question, [c])
    unnamed, = score(Without(toy_retriever, lambda p: 0.0), question, [c])
    assert named.score - unnamed.score == pytest.approx(W_NAMES) and named.relevance == unnamed.relevance


# ---- context a sentence borrows: its section heading, and the sentence before a leading pronoun --------

FESTIVAL_FILES = {
    "town.md": ("# Town guide\n\n"
                "## The Lantern Festival\n\n"
                "Many visitors come to the quay. It is held on the last Friday of the summer.\n\n"
                "## Market days\n\n"
                "Stalls are held near the old square on Tuesdays.\n"),
}
FESTIVAL = "It is held on the last Friday of the summer."
MARKET = "Stalls are held near the old square on Tuesdays."


@pytest.fixture
def festival_assistant(tmp_path):
    return assistant_over(FESTIVAL_FILES, tmp_path)


def _scores(searcher, question):
    return {c.text: c for c in score(searcher, question, candidates(searcher.search(question, k=5)))}


def test_a_sentence_borrows_its_section_heading_at_half_weight(festival_assistant, monkeypatch):
    question = "When is the Lantern Festival held?"
    searcher = festival_assistant.retriever
    with_heading = _scores(searcher, question)
    monkeypatch.setattr(rag.answer.weights, "W_SECTION", 0.0)
    without = _scores(searcher, question)
    assert with_heading[FESTIVAL].score > without[FESTIVAL].score  # "Lantern Festival" is in its heading
    assert with_heading[MARKET].score == without[MARKET].score     # its heading does not match
    assert with_heading[FESTIVAL].score > with_heading[MARKET].score
    monkeypatch.undo()
    assert FESTIVAL in [c.quote for c in festival_assistant.ask(question).citations]


def test_a_sentence_opening_with_a_pronoun_keeps_the_sentence_before(festival_assistant):
    searcher = festival_assistant.retriever
    found = {c.text: c for c in candidates(searcher.passages)}
    assert found[FESTIVAL].before == "Many visitors come to the quay."
    assert found["Many visitors come to the quay."].before == ""
    assert found[MARKET].before == ""
    # "quay" is only in the sentence before "It is held ...": it counts for that sentence, at half weight
    held = found[FESTIVAL]
    question = "When is the event near the quay held?"
    borrowed, = score(searcher, question, [held])
    alone, = score(searcher, question, [dataclasses.replace(held, before="")])
    quay = W_LEXICAL * W_SECTION * searcher.term_stats.idf("quay") / sum(term_weights(searcher, question).values())
    assert borrowed.score - alone.score == pytest.approx(quay)


# ---- phrases -------------------------------------------------------------------------------------------

PHRASE_FILES = {"council.txt": "The coordinator of the regional council was elected in spring.\n\n"
                               "The regional coordinator of the council was elected in autumn.\n"}


def test_a_sentence_with_the_question_s_phrase_in_order_scores_higher(tmp_path, monkeypatch):
    searcher = assistant_over(PHRASE_FILES, tmp_path).retriever
    question = "When was the regional coordinator elected?"
    ordered = "The regional coordinator of the council was elected in autumn."
    scattered = "The coordinator of the regional council was elected in spring."
    with_pairs = _scores(searcher, question)
    monkeypatch.setattr(rag.answer.weights, "W_BIGRAM", 0.0)
    without = _scores(searcher, question)
    assert with_pairs[ordered].score > without[ordered].score  # holds "regional coordinator" in order
    assert with_pairs[scattered].score == without[scattered].score  # same words, no pair in order
    assert with_pairs[ordered].relevance == without[ordered].relevance  # the threshold does not see pairs
    assert with_pairs[ordered].score > with_pairs[scattered].score


def test_a_sentence_offering_the_kind_asked_for_scores_higher(tmp_path, monkeypatch):
    searcher = assistant_over(PHRASE_FILES, tmp_path).retriever
    question = "When was the coordinator elected?"
    spring = _scores(searcher, question)["The coordinator of the regional council was elected in spring."]
    dated = dataclasses.replace(spring, text="The coordinator of the regional council was elected in May 2019.")
    with_type = score(searcher, question, [spring, dated])
    monkeypatch.setattr(rag.answer.weights, "W_TYPE", 0.0)
    without = score(searcher, question, [spring, dated])
    gain = {c.text: c.score - next(w.score for w in without if w.text == c.text) for c in with_type}
    assert gain[dated.text] == pytest.approx(W_TYPE)  # "May 2019" answers "when"
    assert gain[spring.text] == 0.0                   # a season is not a date


def test_a_sentence_opening_with_a_pronoun_is_read_after_the_one_before():
    import numpy as np

    from rag.answer.score import _similarities

    class Vectors:  # two sentences: the first along the question, the second across it
        def sentence_vectors(self, passage):
            return np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)

        def embed_query(self, question):
            return np.array([[1.0, 0.0]], dtype=np.float32)

    text = "ASEM is a forum of Asia and Europe. It comprises 51 countries."
    found = candidates([Passage("a.txt", 0, len(text), text)])
    assert found[1].before == found[0].text
    assert _similarities(Vectors(), "How many countries are in ASEM?", found) == [1.0, 0.5]  # max(0, (0 + 1) / 2)
    alone = dataclasses.replace(found[1], before="")
    assert _similarities(Vectors(), "How many countries are in ASEM?", [alone]) == [0.0]

