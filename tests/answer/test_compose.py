"""rag.answer.compose: `verify` (a quote is its source's exact text at its span), `choose` (which scored
sentences are quoted), `compose` (the numbered, verified answer) and `shorten`. Mostly on hand-made
passages; the runner-up rules also on the story corpus as the scorer ranks it."""

from __future__ import annotations

import dataclasses

import pytest

from rag.answer.compose import choose, compose, shorten, verify
from rag.answer.score import Candidate, candidates, score
from rag.answer.weights import MAX_ANSWER_CHARS, SECOND_MARGIN
from rag.types import ABSTAIN_MESSAGE, Citation, Passage

SOURCE = ("Harbour Notes\n\n"
          "The fund was set up in 2019 by the council. It now pays for forty\nboats. The ferry runs daily.\n\n"
          "Herons nest in the reeds along the shore.\n")


def passage(text: str = SOURCE, para: int = 1, doc: str = "notes.txt", year: int | None = None) -> Passage:
    """The `para`-th paragraph of `text` as a passage of `doc` (exact span)."""
    body = text.split("\n\n")[para].strip("\n")
    start = text.index(body)
    return Passage(doc, start, start + len(body), body, year=year, line=text.count("\n", 0, start) + 1)


def sentences(p: Passage, scores: list[float] | None = None, rank: int = 0) -> list[Candidate]:
    found = [dataclasses.replace(c, rank=rank) for c in candidates([p])]
    return [dataclasses.replace(c, score=s) for c, s in zip(found, scores)] if scores else found


def cite(c: Candidate, n: int = 1) -> Citation:
    return Citation(n, c.passage.doc, c.start, c.end, c.text, c.passage)


# ---- verify ---------------------------------------------------------------------------------------------

def test_the_fixture_passages_are_exact_spans():
    for para in (1, 2):
        p = passage(para=para)
        assert SOURCE[p.start:p.end] == p.text
    assert [c.text for c in sentences(passage())] == [
        "The fund was set up in 2019 by the council.", "It now pays for forty\nboats.", "The ferry runs daily."]


def test_verify_accepts_the_exact_text_at_the_span():
    for c in sentences(passage()):
        assert verify(cite(c), SOURCE) is True


@pytest.mark.parametrize("change", [
    lambda c: {"start": c.start + 1, "end": c.end + 1},              # same quote, span moved by one
    lambda c: {"start": c.start - 1},                                # span one longer than the quote
    lambda c: {"quote": c.quote.replace("2019", "2018")},            # quote changed, same span
    lambda c: {"quote": c.quote.lower()},                            # case differs
    lambda c: {"end": len(SOURCE) + 10},                             # past the end of the source
    lambda c: {"start": -1},
    lambda c: {"end": c.start, "quote": ""},                         # an empty span
    lambda c: {"doc": "other.txt"},                                  # not the file its passage is from
])
def test_verify_rejects_a_wrong_span_or_quote(change):
    good = cite(sentences(passage())[0])
    assert verify(dataclasses.replace(good, **change(good)), SOURCE) is False


def test_verify_without_source_text_is_false():
    assert verify(cite(sentences(passage())[0]), None) is False


def test_verify_against_a_changed_source_is_false():
    good = cite(sentences(passage())[0])
    assert verify(good, SOURCE.replace("Harbour Notes", "Harbour notes")) is True  # before the span: same offsets
    assert verify(good, SOURCE.replace("Harbour Notes", "Notes")) is False           # offsets shifted
    assert verify(good, SOURCE.replace("council", "cabinet")) is False               # the quoted words changed


# ---- choose ---------------------------------------------------------------------------------------------

def test_a_close_runner_up_from_another_passage_comes_second():
    best, neighbour, _ = sentences(passage(), [2.0, 1.0, 0.5])
    herons, = sentences(passage(para=2), [2.0 - SECOND_MARGIN / 2], rank=1)
    assert choose([best, herons, neighbour], set()) == [best, herons]  # best first, whatever the file order


def test_without_a_close_runner_up_the_better_neighbour_is_quoted_in_file_order():
    first, second, third = sentences(passage(), [1.0, 0.4, 2.0])
    herons, = sentences(passage(para=2), [2.0 - 2 * SECOND_MARGIN], rank=1)
    # the best is the third sentence; of its neighbours only the second is next to it
    assert choose([third, herons, first, second], set()) == [second, third]
    assert choose([third, herons, first], set()) == [third]  # no neighbour and no close runner-up


def test_two_sentences_that_do_not_fit_together_are_not_both_quoted():
    long_text = "Notes\n\n" + "The survey listed " + ", ".join(f"gate {i}" for i in range(60)) + ". It ended.\n"
    survey, = sentences(passage(long_text), [2.0])
    other, = sentences(passage(para=2), [1.99], rank=1)
    assert len(survey.text) + len(other.text) >= MAX_ANSWER_CHARS
    assert choose([survey, other], set()) == [survey]


def test_the_same_sentence_twice_is_quoted_once():
    best, neighbour, _ = sentences(passage(), [2.0, 1.0, 0.5])
    overlapping = dataclasses.replace(best.passage, start=best.passage.start - 1)  # an overlapping chunk
    duplicate = dataclasses.replace(best, passage=overlapping, score=1.99)
    copy_elsewhere = dataclasses.replace(best, passage=dataclasses.replace(best.passage, doc="copy.txt"), score=1.99)
    assert choose([best, duplicate, neighbour], set()) == [best, neighbour]
    assert choose([best, copy_elsewhere, neighbour], set()) == [best, neighbour]  # the same words in another file


def test_nearly_the_same_sentence_from_another_paragraph_is_quoted_once():
    text = ("Notes\n\nIn August, Mr. Morikawa Toru became the first Japanese Executive Director of ASEF.\n\n"
            "In August, Mr. Morikawa Toru took office as the first Japanese Executive Director of ASEF.\n\n"
            "In August, Mr. Morikawa Toru met the first Japanese Executive Director of Slovakia.\n")
    first, = sentences(passage(text), [2.0])
    again, = sentences(passage(text, para=2), [1.99], rank=1)
    other, = sentences(passage(text, para=3), [1.98], rank=2)  # names something the first does not: another fact
    assert choose([first, again], set()) == [first]
    assert choose([first, again, other], set()) == [first, other]


def test_the_sentence_that_answers_comes_first_and_a_second_only_when_it_adds():
    fund, pays, ferry = sentences(passage(), [2.0, 1.95, 0.5])
    dated = lambda c: "2019" in c.text  # noqa: E731  a "when" question
    counted = lambda c: "forty" in c.text  # noqa: E731  a "how many" question
    assert choose([fund, pays, ferry], set(), dated) == [fund]  # the neighbour holds no date
    assert choose([fund, pays, ferry], set(), counted) == [pays]  # the one that answers, alone
    assert choose([fund, pays, ferry], set(), lambda c: True) == [fund, pays]  # both answer: in reading order


def test_when_no_quoted_sentence_answers_the_next_that_does_and_is_about_the_question():
    fund, pays, ferry = sentences(passage(), [2.0, 1.95, 0.5])
    fund, pays, ferry = (dataclasses.replace(c, relevance=r) for c, r in zip((fund, pays, ferry), (0.9, 0.8, 0.5)))
    daily = lambda c: "daily" in c.text  # noqa: E731
    assert choose([fund, pays, ferry], set(), daily, min_relevance=0.4) == [ferry]
    assert choose([fund, pays, ferry], set(), daily, min_relevance=0.6) == []  # not about the question: refuse
    assert choose([fund, pays, ferry], set(), daily, min_relevance=0.4, about=lambda c: False) == []
    assert choose([fund, pays, ferry], set(), daily, strict=False) == [fund, pays]  # a soft kind: as quoted


def test_asked_about_two_years_one_sentence_from_each_years_document():
    new, = sentences(passage("Report 2022\n\nRevenue grew strongly again in 2022.\n", year=2022), [2.0])
    undated, = sentences(passage(para=2), [1.99], rank=1)  # close, but of neither year
    again, = sentences(passage("Report 2022\n\nRevenue per customer rose in 2022.\n", year=2022), [1.9], rank=2)
    old, = sentences(passage("Report 2021\n\nRevenue grew strongly in 2021.\n", year=2021), [0.5], rank=3)
    assert choose([new, undated, again, old], {2021, 2022}) == [new, old]
    assert choose([new, undated, again], {2021, 2022}) == [new]  # no sentence of the other year: the best alone
    assert choose([new, undated, again, old], set()) == [new, undated]  # no years asked: the close runner-up


def _ranked(retriever, question):
    return score(retriever, question, candidates(retriever.search(question, k=5)))


def test_the_runner_up_rules_on_the_story_corpus(story_retriever):
    ranked = _ranked(story_retriever, "When was the old harbour on Lake Miral rebuilt?")
    best = ranked[0]
    elsewhere = next(c for c in ranked if c.passage != best.passage and len(best.text) + len(c.text) < MAX_ANSWER_CHARS)
    neighbour = next(c for c in ranked if c.passage == best.passage and abs(c.index - best.index) == 1)
    close = dataclasses.replace(elsewhere, score=best.score - SECOND_MARGIN / 2)
    far = dataclasses.replace(elsewhere, score=best.score - 2 * SECOND_MARGIN)
    low_neighbour = dataclasses.replace(neighbour, score=far.score - 1)
    assert choose([best, close, low_neighbour], set()) == [best, close]
    assert choose([best, far, low_neighbour], set()) == sorted([best, low_neighbour], key=lambda c: c.start)
    # overlapping chunks of one long paragraph hold the same sentence, at the same span, in two passages
    duplicate = dataclasses.replace(best, passage=dataclasses.replace(best.passage, start=best.passage.start - 1),
                                    score=best.score - 0.01)
    chosen = choose([best, duplicate, dataclasses.replace(neighbour, score=best.score - 1)], set())
    assert duplicate not in chosen and len({(c.start, c.end) for c in chosen}) == len(chosen) == 2


# ---- compose --------------------------------------------------------------------------------------------

def test_compose_numbers_the_verified_quotes_in_order():
    p = passage()
    first, second, _ = sentences(p)
    answer = compose("When was the fund set up?", "And the fund?", [first, second], [p], 0.7, {"notes.txt": SOURCE}.get)
    assert not answer.abstained and answer.reason == ""
    assert answer.text == "The fund was set up in 2019 by the council. [1] It now pays for forty boats. [2]"
    assert [(c.n, c.quote) for c in answer.citations] == [(1, first.text), (2, "It now pays for forty\nboats.")]
    assert all(SOURCE[c.start:c.end] == c.quote and c.passage == p for c in answer.citations)
    assert (answer.question, answer.original_question, answer.score, answer.passages) == \
        ("When was the fund set up?", "And the fund?", 0.7, (p,))
    assert [c.line for c in answer.citations] == [3, 3]  # the second quote runs on to line 4


def test_an_unverifiable_quote_is_left_out_and_the_rest_renumbered():
    p, herons_passage = passage(), passage(para=2)
    fund, = sentences(p)[:1]
    herons, = sentences(herons_passage)
    texts = {"notes.txt": SOURCE, "moved.txt": None}
    moved = dataclasses.replace(fund, passage=dataclasses.replace(p, doc="moved.txt"))
    answer = compose("q", "q", [moved, herons], [p, herons_passage], 0.5, texts.get)
    assert answer.text == f"{herons.text} [1]"
    assert [(c.n, c.doc) for c in answer.citations] == [(1, "notes.txt")]


def test_nothing_verifiable_abstains_and_keeps_the_passages_and_score():
    p = passage()
    chosen = sentences(p)[:2]
    answer = compose("q", "orig", chosen, [p], 0.61, lambda doc: SOURCE.replace("council", "cabinet!"))
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE and answer.citations == ()
    assert answer.reason == "no citation could be verified against the source files"
    assert (answer.passages, answer.score, answer.original_question) == ((p,), 0.61, "orig")


def test_a_long_sentence_is_shortened_in_the_text_but_cited_whole():
    text = "Survey\n\nThe keepers " + ", ".join(f"checked gate {i} at dawn" for i in range(30)) + " and slept.\n"
    p = passage(text, doc="survey.txt")
    c, = sentences(p)
    answer = compose("q", "q", [c], [p], 1.0, {"survey.txt": text}.get)
    assert answer.citations[0].quote == c.text and len(c.text) > MAX_ANSWER_CHARS
    assert answer.text == f"{shorten(c.text)} [1]" and answer.text.endswith(" … [1]")


# ---- shorten --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, limit, expected", [
    ("Short enough.", 20, "Short enough."),
    ("exactly twenty chars", 20, "exactly twenty chars"),
    ("one two three four five", 12, "one two …"),           # cut at the last whole word that fits
    ("alpha, beta; gamma delta", 14, "alpha, beta …"),       # no dangling comma or semicolon
    ("alpha: beta gamma", 9, "alpha …"),
])
def test_shorten(text, limit, expected):
    assert shorten(text, limit) == expected


def test_shorten_stays_within_the_answer_limit():
    text = " ".join(["word"] * 200)
    cut = shorten(text)
    assert cut.endswith(" …") and len(cut.removesuffix(" …")) <= MAX_ANSWER_CHARS and text.startswith(cut[:-2])


NOTED = ("Summit\n\n"
         "A statement by the host and the coordinator countries1 was released. Japan welcomed it.\n\n"
         "- 1 Cambodia (host), coordinators (Germany, Singapore and Russia)\n")


def test_a_footnote_mark_brings_its_retrieved_footnote_as_the_second_quote():
    body = passage(NOTED)
    note_text = NOTED.split("\n\n")[2].strip("\n")
    note = Passage("notes.txt", NOTED.index(note_text), NOTED.index(note_text) + len(note_text), note_text,
                   kind="footnote")
    statement, welcomed = sentences(body, [2.0, 1.0])
    footnote, = [dataclasses.replace(c, score=0.5) for c in candidates([note])]
    assert footnote.text.startswith("Cambodia")  # the mark is not quoted
    assert choose([statement, welcomed, footnote], set()) == [statement, footnote]
    other_doc = dataclasses.replace(footnote, passage=dataclasses.replace(note, doc="other.txt"))
    assert choose([statement, welcomed, other_doc], set()) == [statement, welcomed]  # another document's note 1
    earlier = dataclasses.replace(footnote, passage=dataclasses.replace(note, start=0, end=len(note_text)))
    assert choose([statement, welcomed, earlier], set()) == [statement, welcomed]  # a note 1 before it: another's
    plain = dataclasses.replace(statement, text=statement.text.replace("countries1", "countries"))
    assert choose([plain, welcomed, footnote], set()) == [plain, welcomed]  # no mark: the neighbour
