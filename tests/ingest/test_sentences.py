"""rag.ingest.sentences.split_sentences on the hard cases of the seeds: abbreviations, initials, footnote markers."""

from __future__ import annotations

import pytest

from conftest import SEED_2021, SEED_2025, SEEDS
from rag.ingest.load import read_text
from rag.ingest.sentences import split_sentences


def sentences(text: str, start: int = 0, end: int | None = None) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text, start, end)]


def check_spans(text: str, spans: list[tuple[int, int]], start: int = 0, end: int | None = None) -> None:
    """Spans are exact, trimmed, in order, disjoint, and between them lies only white space."""
    end = len(text) if end is None else end
    pos = start
    for s, e in spans:
        assert pos <= s < e <= end
        piece = text[s:e]
        assert piece == piece.strip() and piece
        assert text[pos:s].strip() == ""
        pos = e
    assert text[pos:end].strip() == ""


CASES = [
    pytest.param(
        "In July, during his visit to Washington, D.C., Prime Minister Kishida attended the NATO Summit for the "
        "third consecutive year. Throughout 2024, Prime Minister Kishida held summit meetings.",
        ["In July, during his visit to Washington, D.C., Prime Minister Kishida attended the NATO Summit for the "
         "third consecutive year.", "Throughout 2024, Prime Minister Kishida held summit meetings."],
        id="D.C.-then-capital"),
    pytest.param(
        "In August, Mr. Morikawa Toru took office as the first Japanese Executive Director of ASEF. He is a diplomat.",
        ["In August, Mr. Morikawa Toru took office as the first Japanese Executive Director of ASEF.",
         "He is a diplomat."],
        id="Mr."),
    pytest.param(
        "The U.S. Government and Japan agreed. They met again.",
        ["The U.S. Government and Japan agreed.", "They met again."],
        id="U.S."),
    pytest.param(
        "He lives at No. 5 Downing Street. It is old.",
        ["He lives at No. 5 Downing Street.", "It is old."],
        id="No. 5"),
    pytest.param(
        "Japan decided to contribute approx. 5.7 billion yen to the ASEF. The support began in March.",
        ["Japan decided to contribute approx. 5.7 billion yen to the ASEF.", "The support began in March."],
        id="approx."),
    pytest.param(
        "training of Ukrainian soldiers through the EU Military Assistance Mission in support of Ukraine "
        "(EUMAM Ukraine).(3) In addition, at the NATO Summit in July, NATO announced the decision.",
        ["training of Ukrainian soldiers through the EU Military Assistance Mission in support of Ukraine "
         "(EUMAM Ukraine).(3)", "In addition, at the NATO Summit in July, NATO announced the decision."],
        id="footnote-marker"),
    pytest.param(
        "The UK has provided support totaling 12.5 billion UK pounds, including 90 Brimstone missiles. "
        "France held a conference.",
        ["The UK has provided support totaling 12.5 billion UK pounds, including 90 Brimstone missiles.",
         "France held a conference."],
        id="12.5-billion"),
    pytest.param(
        "The meeting was postponed to June 2021. 27 EU leaders agreed.",
        ["The meeting was postponed to June 2021.", "27 EU leaders agreed."],
        id="sentence-starting-with-a-number"),
    pytest.param(
        "Ambassador Morikawa said as follows, \u201cASEF is called upon to fulfill its role.\u201d With this in mind, "
        "he is working.",
        ["Ambassador Morikawa said as follows, \u201cASEF is called upon to fulfill its role.\u201d",
         "With this in mind, he is working."],
        id="closing-quote"),
    pytest.param(
        "Is it over? Yes! It ended e.g. in May. Then more.",
        ["Is it over?", "Yes!", "It ended e.g. in May.", "Then more."],
        id="question-exclamation-eg"),
    pytest.param(
        "It will continue military assistance through 2030. France continues to help.",
        ["It will continue military assistance through 2030.", "France continues to help."],
        id="year-before-period"),
    pytest.param(
        "the foreign ministers of the regional coordinator countries1 was released. As an ASEM partner, Japan "
        "contributed.",
        ["the foreign ministers of the regional coordinator countries1 was released.",
         "As an ASEM partner, Japan contributed."],
        id="glued-footnote-digit-mid-sentence"),
    pytest.param("No end mark here", ["No end mark here"], id="no-end-mark"),
    pytest.param("  Leading space. Trailing space.   \n", ["Leading space.", "Trailing space."], id="trimmed"),
    pytest.param("lower. case does not start a sentence.", ["lower. case does not start a sentence."], id="lowercase"),
    pytest.param("", [], id="empty"),
    pytest.param("   \n  ", [], id="blank"),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_split_sentences(text, expected):
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == expected
    check_spans(text, spans)


def test_start_and_end_bound_the_search():
    text = "xxx. First one. Second one. yyy. Zzz."
    start, end = text.index("First"), text.index(" yyy")
    spans = split_sentences(text, start, end)
    assert spans == [(start, start + len("First one.")), (text.index("Second"), end)]
    check_spans(text, spans, start, end)


@pytest.mark.parametrize("name", [SEED_2021, SEED_2025])
def test_spans_on_whole_seed_files_are_exact_and_trimmed(name):
    text = read_text(SEEDS / name)
    spans = split_sentences(text)
    check_spans(text, spans)
    assert len(spans) > 25  # both files have dozens of sentences


def test_seed_sentences_that_must_not_be_split():
    text = read_text(SEEDS / SEED_2025)
    got = sentences(text)
    assert ("In July, during his visit to Washington, D.C., Prime Minister Kishida attended the NATO Summit for the "
            "third consecutive year and shared the recognition with various countries that the security of the "
            "Euro-Atlantic and Indo-Pacific is inseparable.") in got
    marker = [s for s in got if s.endswith("(EUMAM Ukraine).(3)")]
    assert len(marker) == 1 and marker[0].startswith("For example, the EU provides economic assistance")
    assert any(s.startswith("In addition, at the NATO Summit in July") for s in got)
    assert any("totaling 12.5 billion UK pounds, including 90 Brimstone missiles" in s and s.endswith("through 2030.")
               for s in got)

    text = read_text(SEEDS / SEED_2021)
    got = sentences(text)
    assert ("In August, Mr. Morikawa Toru took office as the first Japanese Executive Director of ASEF "
            "(see the Special Feature on page 134).") in got
